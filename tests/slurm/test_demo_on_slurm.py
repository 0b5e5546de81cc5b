"""The demo's DAG through a real SLURM cluster, and the documented reruns as a non-root user.

1. The same config runs locally (as a non-root user) and through `--profile slurm` on
   the local cluster; every rule is submitted where it belongs (SLURM's own accounting is
   the witness: partition, account, GPUs, CPUs, memory, nodes) and the results are equal.
2. On the local run, with its protected weights: `make rerun-arm`, `make rerun-cv`,
   `make rerun-table` run exactly the jobs they promise, and a changed input is not
   answered from a cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from snakemake_runs import SNAKEMAKE, VENV_BIN, job_stats, workflow_copy
from tier import (
    ACCOUNT,
    cluster,  # noqa: F401  (fixture)
    ensure_test_user,
    give_to_test_user,
    rule_of,
    run_slurm,
    sacct,
    sha256,
    shared_tmp,  # noqa: F401  (fixture)
    slurm_env,
    user_command,
    write_mini_config,
)

# The rules that hold a (fake) GPU in the mini config; every other rule is a CPU job.
GPU_RULES = {"pretrain", "finetune_grid", "finetune_cv", "segment_genome", "motif_alignment",
             "splice_midpoint", "boundary_density"}
COMPARED = ("results/tables", "results/boundaries")


def _resources_per_rule(dry_run: str) -> dict[str, dict[str, str]]:
    """{rule: {resource: value}} of the first job of every rule in a dry run's output."""
    found: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n(?=rule \w+:)", dry_run):
        header = re.match(r"rule (\w+):", block)
        if not header or header.group(1) in found:
            continue
        line = re.search(r"^    resources: (.*)$", block, flags=re.M)
        pairs = (item.split("=", 1) for item in (line.group(1).split(", ") if line else []))
        found[header.group(1)] = {k: v for k, v in pairs}
    return found


def _minutes(limit: str) -> int:
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, clock = limit.rpartition("-")
    hours, minutes, _ = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + minutes


def _user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDARNET_SLURM", "SLURM_"))}
    env.update(PATH=f"{VENV_BIN}:{env['PATH']}", HOME=str(home), MPLCONFIGDIR=str(home / "mpl"))
    return env


@pytest.fixture(scope="module")
def local_run(shared_tmp: Path) -> Path:  # noqa: F811
    """The mini demo run locally by a non-root user (its outputs protected as usual)."""
    ensure_test_user()
    work = workflow_copy(shared_tmp, "local")
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    write_mini_config(work, gpus=True)
    home = shared_tmp / "home"
    home.mkdir()
    give_to_test_user(work)
    give_to_test_user(home)
    proc = subprocess.run(user_command([SNAKEMAKE, "all", "--configfile", "config/mini.yaml",
                                        "--cores", "2"]),
                          cwd=work, env=_user_env(home), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return work


def _outputs(work: Path) -> dict[str, str]:
    files = {}
    for folder in COMPARED:
        for path in sorted((work / folder).rglob("*")):
            if path.is_file() and path.suffix in (".tsv", ".md", ".bed", ".bedGraph"):
                files[str(path.relative_to(work))] = sha256(path)
    for path in sorted((work / "results" / "pretrain").glob("*/seed*/model.safetensors")):
        files[str(path.relative_to(work))] = sha256(path)
    return files


def test_demo_dag_on_slurm_equals_the_local_run(cluster, local_run: Path,  # noqa: F811
                                                shared_tmp: Path) -> None:  # noqa: F811
    work = workflow_copy(shared_tmp, "slurm")
    config = write_mini_config(work, gpus=True)
    env = slurm_env(cluster, work, shared_tmp / "slurm-home")
    # what each rule asks for, as Snakemake evaluates it for this run
    dry = run_slurm(work, env, "all", "--configfile", config, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    asked = _resources_per_rule(dry.stdout)
    proc = run_slurm(work, env, "all", "--configfile", config)
    assert proc.returncode == 0, proc.stderr[-8000:]

    jobs = sacct(cluster, work)
    submitted = {rule_of(j) for j in jobs}
    assert submitted == set(asked) - {"all", "check_sources"}, sorted(submitted)
    assert submitted >= GPU_RULES
    for job in jobs:  # SLURM's accounting: what each job was granted
        rule = rule_of(job)
        where = (rule, job)
        assert job["State"] == "COMPLETED" and job["Account"] == ACCOUNT, where
        assert job["NNodes"] == "1" and job["ReqCPUS"] == "1", where
        assert job["ReqMem"] == f"{asked[rule]['mem_mb']}M", where
        assert _minutes(job["Timelimit"]) == int(asked[rule]["runtime"]), where
        if rule in GPU_RULES:
            assert job["Partition"] == "gpu" and "gres/gpu=1" in job["AllocTRES"], where
        else:
            assert job["Partition"] == "cpu" and "gres/gpu" not in job["AllocTRES"], where
    # GPU jobs say loudly that they computed on the CPU (test mode only)
    log = (work / "results" / "logs" / "pretrain" / "ldarnet" / "seed1.log").read_text()
    assert log.startswith("[TEST ONLY] config testing.gpu_rules_on_cpu is true")
    # the same numbers as the local run, file for file
    mine, reference = _outputs(work), _outputs(local_run)
    assert len(reference) > 30 and mine == reference


# ---------------------------------------------------------------------- reruns
def _make(work: Path, shared: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        user_command(["make", "--no-print-directory", *args,
                      "SNAKEMAKE_ARGS=--configfile config/mini.yaml --cores 2"]),
        cwd=work, env=_user_env(shared / "home"), capture_output=True, text=True,
        timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _ran(proc: subprocess.CompletedProcess) -> dict[str, int]:
    stats = job_stats(proc.stdout + proc.stderr)
    stats.pop("total", None)
    return stats


def test_rerun_one_ablation_arm(local_run: Path, shared_tmp: Path) -> None:  # noqa: F811
    arm = local_run / "results/pretrain/ldarnet_fixed/seed1/model.safetensors"
    reference = local_run / "results/pretrain/ldarnet/seed1/model.safetensors"
    assert not os.access(arm, os.W_OK) or os.geteuid() == 0  # protected
    before = {"arm": arm.stat().st_mtime_ns, "reference": reference.stat().st_mtime_ns,
              "reference_sha": sha256(reference)}
    # a rule-wide forced rerun is still refused by the protection
    refused = subprocess.run(
        user_command([SNAKEMAKE, "results/tables/ablation.tsv", "--configfile",
                      "config/mini.yaml", "--cores", "2", "--forcerun", "pretrain"]),
        cwd=local_run, env=_user_env(shared_tmp / "home"), capture_output=True, text=True,
        timeout=600)
    assert refused.returncode != 0 and "Write-protected" in refused.stdout + refused.stderr
    proc = _make(local_run, shared_tmp, "rerun-arm", "ARM=ldarnet_fixed")
    assert _ran(proc) == {"pretrain": 1, "ablation_flops": 1, "finetune_grid": 1,
                          "select_config": 1, "finetune_cv": 1, "eval_summary": 1,
                          "ablation_table": 1}
    assert "rule pretrain:" in proc.stdout + proc.stderr
    assert "wildcards: model=ldarnet_fixed, seed=1" in proc.stdout + proc.stderr
    assert arm.stat().st_mtime_ns != before["arm"]  # retrained ...
    assert reference.stat().st_mtime_ns == before["reference"]  # ... the reference untouched
    assert sha256(reference) == before["reference_sha"]
    cv_log = (local_run / "results/logs/finetune_cv/ldarnet_fixed/H3/seed1.log").read_text()
    assert "fold 0 of 2" in cv_log and "kept" not in cv_log  # fine-tuned again, not reused


def test_changed_arm_weights_are_not_answered_from_a_cache(local_run: Path,
                                                          shared_tmp: Path) -> None:  # noqa: F811
    arm = local_run / "results/pretrain/ldarnet_fixed/seed1/model.safetensors"
    result = local_run / "results/eval/ldarnet_fixed/H3/cv/seed1/result.json"
    old_weights, old_result = sha256(arm), result.read_text()
    config = local_run / "config/models/ldarnet-tiny-fixed.yaml"
    config.write_text(config.read_text() + "  grid_stride: 3\n")
    # the changed arm makes its protected weights out of date: Snakemake says so and stops
    refused = subprocess.run(
        user_command([SNAKEMAKE, "results/tables/ablation.tsv", "--configfile",
                      "config/mini.yaml", "--cores", "2"]),
        cwd=local_run, env=_user_env(shared_tmp / "home"), capture_output=True, text=True,
        timeout=600)
    assert refused.returncode != 0, refused.stdout[-3000:]
    assert "Write-protected" in refused.stdout + refused.stderr
    assert sha256(arm) == old_weights
    # the documented way on: retrain that arm; its CV is recomputed for the new weights
    proc = _make(local_run, shared_tmp, "rerun-arm", "ARM=ldarnet_fixed")
    assert _ran(proc)["pretrain"] == 1 and _ran(proc)["finetune_cv"] == 1
    assert sha256(arm) != old_weights
    assert result.read_text() != old_result
    assert f'"checkpoint_sha256": "{sha256(arm)}"' in result.read_text()


def test_rerun_one_tasks_cross_validation(local_run: Path, shared_tmp: Path) -> None:  # noqa: F811
    result = local_run / "results/eval/ldarnet/H3/cv/seed1/result.json"
    before = result.stat().st_mtime_ns
    proc = _make(local_run, shared_tmp, "rerun-cv", "TASK=H3")
    assert _ran(proc) == {"finetune_cv": 1, "eval_summary": 1, "eval_table": 1}
    assert "results/tables/histone.tsv" in proc.stdout + proc.stderr
    assert result.stat().st_mtime_ns != before
    log = (local_run / "results/logs/finetune_cv/ldarnet/H3/seed1.log").read_text()
    assert re.search(r"fold 1 of 2", log) and "kept" not in log


def test_rerun_one_tables_rendering(local_run: Path, shared_tmp: Path) -> None:  # noqa: F811
    table = local_run / "results/tables/promoters.tsv"
    before, content = table.stat().st_mtime_ns, table.read_text()
    proc = _make(local_run, shared_tmp, "rerun-table", "TABLE=promoters")
    assert _ran(proc) == {"eval_table": 1}
    assert table.stat().st_mtime_ns != before and table.read_text() == content
