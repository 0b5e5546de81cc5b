"""Where every rule runs (ldarnet/pipeline/cluster.py) and what the SLURM plugin submits for it.

The submit lines here come from the real snakemake-executor-plugin-slurm building its
real sbatch commands for every rule of the paper config; only sbatch itself is a
stand-in that records them. Whether SLURM accepts and runs such jobs is what the
real-cluster tier (tests/slurm/, `make test-slurm`) checks.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

import ldarnet.pipeline.cluster as cluster_module
from conftest import ROOT
from ldarnet.pipeline.cluster import (
    PlannedJob,
    check_submission,
    check_test_mode,
    cpu_job,
    ended_unrecognised,
    gpu_job,
    outer_retries,
    resubmit_preempted_jobs,
    stage_compute,
    stage_device,
    torch_launcher,
)
from ldarnet.pipeline.config_check import WorkflowConfigError
from snakemake_runs import SITE, VENV_BIN, profile_home, snakemake, stub_slurm, workflow_copy

PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
# The rules that compute on GPUs at paper scale, with their GPU counts: the one list the
# tests hold, to check that the workflow's own declaration (ldarnet/pipeline/cluster.py + the
# config sections) gives every one of them a GPU partition and nothing else a GPU.
PAPER_GPU_RULES = {"pretrain": 4, "finetune_grid": 1, "finetune_cv": 1, "segment_genome": 1,
                   "motif_alignment": 1, "splice_midpoint": 1, "boundary_density": 1}
# The paper config with one grid point and one seed instead of 36 x 3: the same rules and
# resources, 5x fewer jobs (written into the workflow copy by _small_grid).
SMALL_GRID = ("--configfile", "config/config.yaml", "config/small_grid.yaml")


def _small_grid(work: Path) -> None:
    (work / "config" / "small_grid.yaml").write_text(
        "grid: {learning_rates: [1.0e-4], batch_sizes: [64]}\nseeds: [1]\n")
LOCAL_RULES = {"all", "download_genome", "download_annotation", "fetch_task",
               "check_sources", "fetch_checkpoint"}  # network: on the submit host


# ------------------------------------------------------------------------ unit level
def test_gpu_jobs_ask_for_gpus_cpus_one_node_and_the_gpu_partition() -> None:
    env = {"LDARNET_SLURM_GPU_PARTITION": "gpuq", "LDARNET_SLURM_PARTITION": "cpuq"}
    pretrain = gpu_job(PAPER, "pretrain", environ=env)
    assert pretrain == {"gpu": 4, "cpus_per_gpu": 8, "nodes": 1, "mem_mb": 128000,
                        "runtime": 2880, "slurm_partition": "gpuq"}
    assert "tasks" not in pretrain  # the plugin would start the command once per GPU
    assert stage_compute(PAPER, "pretrain").threads == 32
    assert gpu_job(PAPER, "evaluation", environ=env)["cpus_per_gpu"] == 8
    # without a GPU partition variable the key is absent (the run is refused before submission)
    assert "slurm_partition" not in gpu_job(PAPER, "boundaries", environ={})
    # a stage configured with gpus: 0 is a CPU job, on the CPU partition if one is named
    assert gpu_job(DEMO, "pretrain", environ=env) == {"mem_mb": 4000, "runtime": 60,
                                                      "slurm_partition": "cpuq"}
    assert cpu_job(1000, 10, environ={}) == {"mem_mb": 1000, "runtime": 10}


def test_multi_gpu_launcher_gives_each_worker_its_share_of_threads() -> None:
    launcher = torch_launcher(stage_compute(PAPER, "pretrain"), "python")
    assert launcher == ("env OMP_NUM_THREADS=8 python -m torch.distributed.run --standalone "
                        "--nproc-per-node 4 -m ldarnet")
    assert torch_launcher(stage_compute(DEMO, "pretrain"), "python") == "python -m ldarnet"


def test_retries_are_spent_only_by_the_submitting_process() -> None:
    assert outer_retries(6, is_main_process=True) == 6
    assert outer_retries(6, is_main_process=False) == 0


def test_device_follows_the_gpu_count_and_the_test_mode_is_refused_at_paper_scale() -> None:
    assert stage_device(PAPER, "pretrain") == "cuda"
    assert stage_device(DEMO, "pretrain") == "cpu"
    fake = {**PAPER, "testing": {"gpu_rules_on_cpu": True}}
    assert stage_device(fake, "pretrain") == "cpu"
    with pytest.raises(WorkflowConfigError, match=r"testing\.gpu_rules_on_cpu"):
        check_test_mode(fake)
    check_test_mode({**fake, "scale": "custom"})


def test_submission_check_names_unset_variables_and_gpu_jobs_without_partition() -> None:
    ok = [PlannedJob("pretrain", {"gpu": 4, "slurm_partition": "gpu", "slurm_account": "p"}),
          PlannedJob("tile_genome", {"mem_mb": 16000, "slurm_account": "p"})]
    check_submission(ok)
    with pytest.raises(WorkflowConfigError) as err:
        check_submission([
            PlannedJob("tile_genome", {"slurm_account": "$LDARNET_SLURM_ACCOUNT"}),
            PlannedJob("finetune_cv", {"gpu": 1, "slurm_account": "p"}),
        ])
    text = str(err.value)
    assert "LDARNET_SLURM_ACCOUNT is not set" in text and "rule tile_genome" in text
    assert "LDARNET_SLURM_GPU_PARTITION is not set: rule finetune_cv holds 1 GPU" in text


# ------------------------------------------------- every rule of the paper, submitted
def _dry_run_jobs(work: Path, env: dict) -> dict[str, tuple[list[str], list[str]]]:
    """One job per rule of the paper DAG: {rule: (inputs, outputs)} from a dry run."""
    proc = snakemake("all", "-n", "--forceall", "--profile", "slurm", *SMALL_GRID, cwd=work,
                     env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    jobs: dict[str, tuple[list[str], list[str]]] = {}
    for block in re.split(r"\n(?=rule \w+:)", proc.stdout):
        header = re.match(r"rule (\w+):", block)
        if not header or header.group(1) in jobs:
            continue
        fields = dict(re.findall(r"^    (input|output): (.*)$", block, flags=re.M))
        jobs[header.group(1)] = ([f for f in fields.get("input", "").split(", ") if f],
                                 [f for f in fields.get("output", "").split(", ") if f])
    return jobs


def test_every_rule_of_the_paper_is_submitted_where_it_belongs(tmp_path: Path) -> None:
    """The plugin's real sbatch line for one job of every rule of the paper config.

    Every file of the DAG is created (empty, one mtime) and one job per rule is forced;
    the slurm plugin builds and "submits" each of them to a recording sbatch, and the
    stand-in sacct reports them done (their outputs exist), so that the next ones follow.
    """
    work = workflow_copy(tmp_path)
    _small_grid(work)
    bin_dir, log = stub_slurm(tmp_path, state="COMPLETED")
    env = {"PATH": f"{bin_dir}:{VENV_BIN}:{os.environ['PATH']}", **SITE,
           **profile_home(tmp_path, work)}
    jobs = _dry_run_jobs(work, env)
    assert set(PAPER_GPU_RULES) <= set(jobs)
    files = {f for inputs, outputs in jobs.values() for f in inputs + outputs}
    # every file any job of the DAG reads or writes, so that nothing upstream is missing
    everything = snakemake("all", "-n", "--forceall", "--profile", "slurm", *SMALL_GRID, cwd=work,
                           env=env, timeout=300).stdout
    listed = re.findall(r"^    (?:input|output|benchmark): (.*)$", everything, flags=re.M)
    files |= {f for line in listed for f in line.split(", ")}
    stamp = time.time() - 3600
    for name in files:
        path = work / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        os.utime(path, (stamp, stamp))
    targets = [outputs[0] for rule, (_, outputs) in jobs.items() if rule not in LOCAL_RULES]
    snakemake(*targets, "--force", "--profile", "slurm",  # targets before --configfile
              "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "1",
              "--retries", "0", "--keep-going", "--jobs", "5000", *SMALL_GRID, cwd=work, env=env,
              timeout=600)
    lines = {re.search(r"--comment rule_(\w+?)(?:_wildcards_\S*)? ", line).group(1): line
             for line in log.read_text().splitlines()}
    assert set(lines) == set(jobs) - LOCAL_RULES, set(jobs) ^ set(lines)
    for rule, line in lines.items():
        args = shlex.split(line.split(" --wrap=")[0])
        assert "-A" in args and args[args.index("-A") + 1] == "proj42", rule
        if rule in PAPER_GPU_RULES:
            assert args[args.index("-p") + 1] == "gpuq", (rule, line)
            assert f"--gpus={PAPER_GPU_RULES[rule]}" in args, (rule, line)
            assert "--nodes=1" in args and "--cpus-per-gpu=8" in args, (rule, line)
            assert not any(a.startswith(("--ntasks", "--cpus-per-task")) for a in args), rule
        else:
            assert args[args.index("-p") + 1] == "cpuq", (rule, line)
            assert not any("gpu" in a for a in args), (rule, line)
            assert "--ntasks=1" in args and any(a.startswith("--cpus-per-task=") for a in args)
        assert "--mem" in args and "-t" in args, rule
    # no --signal: it would kill the Snakemake inside the job (ldarnet.train.time_limit);
    # the pretraining stops pretrain.stop_before_limit seconds before the limit itself
    assert "--signal" not in "".join(lines.values())


def test_gpu_rules_without_gpu_partition_are_refused_before_submission(tmp_path: Path) -> None:
    work = workflow_copy(tmp_path)
    (work / "config" / "gpu.yaml").write_text(yaml.safe_dump(
        {**DEMO, "pretrain": {**DEMO["pretrain"], "gpus": 1}}))
    bin_dir, log = stub_slurm(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDARNET_SLURM")}
    env.update(PATH=f"{bin_dir}:{VENV_BIN}:{env['PATH']}", LDARNET_SLURM_ACCOUNT="proj42",
               **profile_home(tmp_path, work))
    proc = subprocess.run(
        [str(Path(VENV_BIN) / "snakemake"), "results/pretrain/ldarnet/seed1/model.safetensors",
         "--profile", "slurm", "--configfile", "config/gpu.yaml"],
        cwd=work, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode != 0
    assert "LDARNET_SLURM_GPU_PARTITION is not set: rule pretrain holds 1 GPU" in proc.stderr
    assert not log.exists()


def test_a_site_profile_combines_with_the_rules(tmp_path: Path) -> None:
    """A user's own `slurm` profile: its account, qos and default partition apply, its
    set-resources override one rule, and the rules' own requests still apply."""
    work = workflow_copy(tmp_path)
    site = tmp_path / "xdg" / "snakemake" / "slurm"
    site.mkdir(parents=True)
    (site / "config.yaml").write_text(yaml.safe_dump({
        "executor": "slurm", "jobs": 10,
        "default-resources": {"slurm_account": "siteacct", "slurm_partition": "standard",
                              "qos": "normal", "mem_mb": 1000},
        "set-resources": {"tile_genome": {"qos": "long"}},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDARNET_SLURM")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), LDARNET_SLURM_GPU_PARTITION="gpuq")
    proc = subprocess.run(
        [str(Path(VENV_BIN) / "snakemake"), "all", "-n", "--forceall", "--profile", "slurm"],
        cwd=work, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    resources = {}
    for block in re.split(r"\n(?=rule \w+:)", proc.stdout):
        header = re.match(r"rule (\w+):", block)
        found = re.search(r"^    resources: (.*)$", block, flags=re.M)
        if header and found:
            resources.setdefault(header.group(1), found.group(1))
    assert "slurm_account=siteacct" in resources["tile_genome"]
    assert "qos=long" in resources["tile_genome"]  # the site's set-resources win
    assert "slurm_partition=standard" in resources["prepare_genome"]  # site default
    assert "qos=normal" in resources["prepare_genome"]
    assert "mem_mb=4000" in resources["prepare_genome"]  # the rule's own request wins
    cv = resources["finetune_cv"]  # the rule's GPU partition wins over the site default
    assert "slurm_partition=gpuq" in cv and "gpu=1" in cv and "qos=normal" in cv


# ------------------------------------------------------------- jobs the plugin waits on
def _queries(monkeypatch, sacct: str, squeue: str) -> list[list[str]]:
    asked: list[list[str]] = []

    def run_query(args: list[str]) -> str:
        asked.append(args)
        return sacct if args[0] == "sacct" else squeue

    monkeypatch.setattr(cluster_module, "_run_query", run_query)
    return asked


def test_cancelled_and_preempted_jobs_are_recognised_as_ended(monkeypatch) -> None:
    """sacct's "CANCELLED by <uid>" and PREEMPTED (not requeued) end the job; a requeued
    one (back in the queue) and a running one do not."""
    _queries(monkeypatch, sacct="11|CANCELLED by 0\n12|PREEMPTED\n13|RUNNING\n14|PREEMPTED\n",
             squeue="14\n")
    assert ended_unrecognised(["11", "12", "13", "14;cluster"]) == {
        "11": "CANCELLED by 0", "12": "PREEMPTED"}


def test_status_check_reports_what_the_plugin_would_wait_on_forever(monkeypatch) -> None:
    import asyncio

    _queries(monkeypatch, sacct="21|CANCELLED by 1000\n22|RUNNING\n", squeue="")

    class Job:
        def __init__(self, job_id: str) -> None:
            self.external_jobid = job_id

    class Plugin:  # the plugin's check: both jobs look "still running" to it
        errors: ClassVar[list[tuple[str, str]]] = []

        async def check_active_jobs(self, active_jobs):
            for job in active_jobs:
                yield job

        def report_job_error(self, job, msg: str) -> None:
            self.errors.append((job.external_jobid, msg))

    resubmit_preempted_jobs(Plugin)
    resubmit_preempted_jobs(Plugin)  # installed once however often the Snakefile runs

    async def check() -> list[str]:
        return [j.external_jobid async for j in Plugin().check_active_jobs(
            [Job("21"), Job("22")])]

    assert asyncio.run(check()) == ["22"]
    assert [job for job, _ in Plugin.errors] == ["21"]
    assert "CANCELLED by 1000" in Plugin.errors[0][1]
