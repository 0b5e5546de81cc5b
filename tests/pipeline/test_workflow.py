"""The Snakemake workflow: config schema, dry runs, the slurm profile's submit lines, lint.

Profiles are a command-line feature of Snakemake, so everything that involves them runs
the real ``snakemake`` command in a subprocess, exactly as a user types it.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT
from ldarnet.pipeline.config_check import WorkflowConfigError, check_config, lr_label
from snakemake_runs import (
    SITE,
    SNAKEMAKE,
    VENV_BIN,
    job_stats,
    profile_home,
    snakemake,
    stub_slurm,
    workflow_copy,
)

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
_snakemake = snakemake
_job_stats = job_stats


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


# --------------------------------------------------------------------------- schema
@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = _load(name)
    validate(config, str(SCHEMA))
    check_config(config, ROOT)  # raises on any problem
    assert config["scale"] == name.removesuffix(".yaml").replace("config", "paper")


def test_release_config_is_the_paper_config_on_released_weights() -> None:
    """config/release.yaml differs from the paper config only where the weights come from."""
    release, paper = _load("release.yaml"), _load("config.yaml")
    validate(release, str(SCHEMA))
    check_config(release, ROOT)
    entry = release["models"]["ldarnet_release"]
    assert entry["checkpoint"] == "darlednik/LDARNet-110M/model_ckpt_110m.pt"
    # no commit or checksum of that repository could be established: pinned by --pin
    assert (entry["revision"], entry["sha256"]) == ("main", None)
    for key in ("tasks", "grid", "folds", "seeds", "genome", "scale"):
        assert release[key] == paper[key], key
    same = {k: v for k, v in paper["evaluation"].items() if k != "models"}
    assert {k: v for k, v in release["evaluation"].items() if k != "models"} == same
    assert release["evaluation"]["models"] == release["boundaries"]["models"] == \
        release["pretrain"]["models"] == ["ldarnet_release"]
    assert release["ablation"]["arms"] == []
    assert {k: v for k, v in release["boundaries"].items() if k != "models"} == \
        {k: v for k, v in paper["boundaries"].items() if k != "models"}


def test_paper_config_describes_the_paper() -> None:
    config = _load("config.yaml")
    assert len(config["tasks"]) == 27
    grid = config["grid"]
    assert len(grid["learning_rates"]) * len(grid["batch_sizes"]) == 36
    assert config["folds"] == 10 and len(config["seeds"]) >= 3
    assert config["genome"]["window"] == 4096
    assert all(isinstance(lr, float) for lr in grid["learning_rates"])  # not "1e-5" strings
    # the grid holds every configuration the release chose (spec 4.6)
    assert {2.0e-5, 5.0e-5, 1.0e-4, 2.0e-4} <= set(grid["learning_rates"])
    assert 64 in grid["batch_sizes"]
    ev = config["evaluation"]
    assert ev["sources"] is None and ev["subsample"] is None  # the official data, whole
    assert (ev["max_epochs"], ev["patience"]) == (100, 5)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda c: c["genome"].update(wndow=10), "wndow"),
        (lambda c: c["grid"].update(learning_rates=["1e-5"]), "'1e-5' is not of type 'number'"),
        (lambda c: c.update(tasks=["H3", "H5"]), "'H5' is not one of"),
        (lambda c: c["genome"].update(window="4096"), "'4096' is not of type 'integer'"),
        (lambda c: c.update(folds=1), "1 is less than the minimum of 2"),
    ],
)
def test_schema_rejects_bad_configs(change, fragment: str) -> None:
    config = copy.deepcopy(_load("config.yaml"))
    change(config)
    with pytest.raises(Exception, match=re.escape(fragment)):
        validate(config, str(SCHEMA))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda c: c["models"]["ldarnet"].update(config="config/models/none.yaml"),
         "models.ldarnet.config: file config/models/none.yaml does not exist"),
        (lambda c: c["pretrain"].update(models=["fixedgrid"]),
         "pretrain.models: unknown model(s) ['fixedgrid']"),
        (lambda c: c["pretrain"].update(gpus=3),
         "not divisible by micro_batch (32) x world size (3)"),
        (lambda c: c["pretrain"].update(runtime=10, stop_before_limit=900),
         "pretrain.stop_before_limit: 900 s is not less than the job's time limit"),
        (lambda c: c["genome"].update(window=1024), "seq_len=4096 but genome.window=1024"),
        (lambda c: c["boundaries"].update(models=["fixedgrid"]),
         "boundaries.models: unknown model(s) ['fixedgrid']; pretrained models"),
        (lambda c: c["boundaries"].update(annotation_url=None), "boundaries.exons"),
        (lambda c: c["boundaries"].update(exons="resources/demo/gencode/exons_chr2_1-2333275.csv"),
         "boundaries.start_codons: gtf needs a GTF annotation"),
        (lambda c: c["genome"]["split"].update(test=["chr20"]), "both valid and test"),
        (lambda c: c["genome"]["split"].update(valid=["chrY"]), "not in genome.contigs"),
        (lambda c: c["genome"].update(url=None), "genome.url"),
        (lambda c: c["grid"].update(learning_rates=[1.0e-4, 0.0001]), "collide"),
        (lambda c: c["ablation"].update(arms=["nope"]), "ablation.arms: unknown model(s)"),
        (lambda c: c["ablation"].update(arms=["ldarnet"]), "ldarnet has learned boundaries"),
        (lambda c: c["ablation"].update(tasks=["promoter_x"]), "ablation.tasks"),
        (lambda c: c["evaluation"].update(models=["fixedgrid"]),
         "evaluation.models: unknown model(s) ['fixedgrid']"),
        (lambda c: c["evaluation"].update(pretrain_seed=7), "evaluation.pretrain_seed: 7"),
        (lambda c: c["evaluation"].update(grid_folds=[10]), "evaluation.grid_folds: [10]"),
        (lambda c: c["evaluation"].update(sources="config/none.yaml"),
         "evaluation.sources: file config/none.yaml does not exist"),
        (lambda c: c["evaluation"].update(remote="config/none.yaml"),
         "evaluation.remote: file config/none.yaml does not exist"),
        (lambda c: c["evaluation"].update(remote="config/evaluation/sources-demo.yaml"),
         "sources-demo.yaml: H3.host: None is not one of ('huggingface', 'zenodo')"),
        (lambda c: c["models"].update(rel={"checkpoint": "only-a-name", "revision": "main",
                                           "sha256": None}),
         "models.rel.checkpoint: 'only-a-name' is neither <owner>/<repo>/<file> nor a URL"),
        (lambda c: c["models"].update(ldarnet_fixed={"checkpoint": "a/b/c.pt", "revision": "main",
                                                     "sha256": None}),
         "ablation: ['ldarnet_fixed'] are released checkpoints"),
    ],
)
def test_semantic_checks_name_the_key(change, fragment: str) -> None:
    config = copy.deepcopy(_load("config.yaml"))
    change(config)
    with pytest.raises(WorkflowConfigError, match=re.escape(fragment)):
        check_config(config, ROOT)


def test_lr_label_is_one_format() -> None:
    assert [lr_label(x) for x in (1.0e-5, 2.0e-4, 1.0e-3, 0.0005)] == [
        "1e-05", "0.0002", "0.001", "0.0005"]


def test_bad_config_stops_before_any_job(tmp_path: Path) -> None:
    bad = _load("demo.yaml")
    bad["genome"]["windw"] = 10
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = _snakemake("-n", "--configfile", str(path))
    assert proc.returncode != 0
    assert "windw" in proc.stderr + proc.stdout
    assert "Job stats" not in proc.stdout


# ------------------------------------------------------------------------- dry runs
def test_paper_dag_with_the_slurm_profile_exact_command(tmp_path: Path) -> None:
    """`snakemake --profile slurm all` from the repository root (dry run), after
    `make slurm-profile` (which links $XDG_CONFIG_HOME/snakemake/slurm to the profile)."""
    proc = _snakemake("--profile", "slurm", "all", "-n", env=profile_home(tmp_path, ROOT))
    assert proc.returncode == 0, proc.stderr
    assert "Using profile slurm" in proc.stdout + proc.stderr
    stats = _job_stats(proc.stdout)
    # 27 tasks: their downloads (NT: train and test parquet; GB: one archive), 1 preparation
    # each, 36 grid points, 3 CV seeds, 6 tables; the ablation: 2 arms pretrained on a
    # FLOPs budget, fine-tuned on the 10 histone tasks; the pre-flight check of every download
    runs = 27 + 2 * 10
    assert stats == {"download_genome": 1, "prepare_genome": 1, "tile_genome": 1, "pretrain": 3,
                     "check_sources": 1,
                     "fetch_task": 18 * 2 + 9, "prepare_task": 27, "finetune_grid": runs * 36,
                     "select_config": runs, "finetune_cv": runs * 3, "eval_summary": runs,
                     "eval_table": 6, "ablation_budget": 2, "ablation_flops": 1,
                     "ablation_table": 1,
                     "download_annotation": 1, "segment_genome": 1, "splice_alignment": 1,
                     "motif_alignment": 1, "locus_figure": 1, "boundary_table": 1,
                     "boundary_density": 1, "all": 1,
                     # start codons (Kozak, GTF) and the splice-task midpoint view: +2
                     "start_codon_alignment": 1, "splice_midpoint": 1,
                     "paper_claims": 1, "total": 2027}
    assert "--valid-contigs chr20 --test-contigs chr21" in proc.stdout
    assert "--window 4096" in proc.stdout
    # 4 GPUs: one process per GPU through torchrun, each with its share of the threads,
    # under the run directory's one-writer lock, on the 110M model
    assert ("ldarnet.foundation.runlock results/pretrain/ldarnet/seed1 -- env OMP_NUM_THREADS=8 "
            in proc.stdout)
    assert "-m torch.distributed.run --standalone --nproc-per-node 4 -m ldarnet pretrain" in (
        proc.stdout)
    assert "config/models/ldarnet-110m.yaml" in proc.stdout


def test_paper_dag_runs_every_rule(tmp_path: Path) -> None:
    """`rule all` of the paper config and of the release config (which imports the released
    weights instead of pretraining) together reach every rule: no stage is orphaned."""
    rules = _snakemake("--list-rules")
    assert rules.returncode == 0, rules.stderr
    defined = {line.split()[0] for line in rules.stdout.splitlines() if line.strip()}
    proc = _snakemake("--profile", "slurm", "all", "-n", "--quiet", "rules",
                      env=profile_home(tmp_path, ROOT))
    assert proc.returncode == 0, proc.stderr
    scheduled = set(_job_stats(proc.stdout)) - {"total"}
    release = _snakemake("all", "--profile", "slurm", "-n", "--quiet", "rules",
                         "--configfile", "config/release.yaml", env=profile_home(tmp_path, ROOT))
    assert release.returncode == 0, release.stderr
    scheduled |= set(_job_stats(release.stdout)) - {"total"}
    assert len(defined) >= 25 and defined == scheduled, defined ^ scheduled


def test_demo_dag() -> None:
    # --forceall: the whole DAG even when a previous `make demo` left results behind
    proc = _snakemake("-n", "-p", "--forceall", "--cores", "2", "--configfile", "config/demo.yaml")
    assert proc.returncode == 0, proc.stderr
    stats = _job_stats(proc.stdout)
    # the demo uses the shipped slice: no download
    assert stats == {"prepare_genome": 1, "tile_genome": 1, "pretrain": 2, "segment_genome": 1,
                     "splice_alignment": 1, "motif_alignment": 1, "locus_figure": 1,
                     "boundary_table": 1, "boundary_density": 1,
                     # start codons (inferred from the longest ORF) and the midpoint view of
                     # splice_sites_donors: +2
                     "start_codon_alignment": 1, "splice_midpoint": 1,
                     # 5 tasks for the learned model + H3 for the fixed-grid arm
                     "prepare_task": 5, "finetune_grid": 6 * 2, "select_config": 6,
                     "finetune_cv": 6, "eval_summary": 6, "eval_table": 6,
                     "ablation_budget": 1, "ablation_flops": 1, "ablation_table": 1,
                     # the pre-flight check: nothing is remote in the demo, it passes offline
                     "check_sources": 1,
                     "paper_claims": 1, "all": 1, "total": 59}
    assert "--split-method bed" in proc.stdout
    assert "torch.distributed.run" not in proc.stdout and "--device cpu" in proc.stdout


def test_boundary_table_builds_start_codons_and_midpoint_view() -> None:
    """Demo: Kozak profiles on inferred start codons and the splice-task midpoint view."""
    proc = _snakemake("results/tables/boundaries.tsv", "-n", "-p", "--forceall", "--cores", "1",
                      "--configfile", "config/demo.yaml")
    assert proc.returncode == 0, proc.stderr
    stats = _job_stats(proc.stdout)
    assert stats["start_codon_alignment"] == 1 and stats["splice_midpoint"] == 1
    assert "ldarnet start-codon-alignment" in proc.stdout and "--source longest_orf" in proc.stdout
    assert ("ldarnet splice-midpoint --model results/pretrain/ldarnet/seed1/model.safetensors "
            "--sequences results/tasks/splice_sites_donors/test.csv") in proc.stdout
    assert "--start-codon-stats results/boundaries/ldarnet/seed1/start_codons/" in proc.stdout
    assert "--midpoint-stats results/boundaries/ldarnet/seed1/splice_midpoint/" in proc.stdout


def test_single_target_builds_only_its_part(tmp_path: Path) -> None:
    proc = _snakemake("--profile", "slurm", "results/genome/hg38/genome.fa", "-n", "--forceall",
                      env=profile_home(tmp_path, ROOT))
    assert proc.returncode == 0, proc.stderr
    assert _job_stats(proc.stdout) == {"download_genome": 1, "prepare_genome": 1, "total": 2}


def test_one_table_builds_only_its_tasks(tmp_path: Path) -> None:
    """`snakemake results/tables/histone.tsv`: the 10 histone tasks and what they need."""
    proc = _snakemake("--profile", "slurm", "results/tables/histone.tsv", "-n", "--forceall",
                      env={**SITE, **profile_home(tmp_path, ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert _job_stats(proc.stdout) == {
        "download_genome": 1, "prepare_genome": 1, "tile_genome": 1, "pretrain": 1,
        "check_sources": 1,  # pretraining waits for the pre-flight of every download
        "fetch_task": 20, "prepare_task": 10, "finetune_grid": 360, "select_config": 10,
        "finetune_cv": 30, "eval_summary": 10, "eval_table": 1, "total": 446}
    assert "H3K36me3" in proc.stdout and "promoter_all" not in proc.stdout
    # grid jobs never get the test split; CV jobs are one-GPU jobs on the GPU partition
    grid = proc.stdout.split("rule finetune_grid:", 1)[1].split("Shell command", 1)[0]
    assert "train.csv" in grid and "test.csv" not in grid
    cv = proc.stdout.split("rule finetune_cv:", 1)[1].split("Shell command", 1)[0]
    assert "slurm_partition=gpuq" in cv and "gpu=1" in cv and "cpus_per_gpu=8" in cv
    assert "--plateau-mode max --decay-exemptions standard" in proc.stdout


def test_lint_is_clean() -> None:
    proc = _snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "good condition" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- slurm submit lines
def _submit_line(work: Path, tmp_path: Path, target: str, configfile: str) -> str:
    """Run ``target`` with the slurm profile against stub sbatch/sacct; the sbatch line."""
    bin_dir, log = stub_slurm(tmp_path)
    env = {"PATH": f"{bin_dir}:{VENV_BIN}:{os.environ['PATH']}", **SITE,
           **profile_home(tmp_path, work)}
    _snakemake(
        # targets before options that take several values (--configfile would swallow it)
        target, "--profile", "slurm",
        "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "1", "--retries", "0",
        "--configfile", configfile,
        cwd=work, env=env, timeout=180,
    )
    return log.read_text()


def test_slurm_profile_submit_line(tmp_path: Path) -> None:
    work = workflow_copy(tmp_path)
    line = _submit_line(work, tmp_path, "results/genome/hg38-demo/genome.fa", "config/demo.yaml")
    assert "-A proj42" in line and "-p cpuq" in line
    assert "--mem 4000" in line and "-t 120" in line
    assert "--cpus-per-task=1" in line
    assert "--comment rule_prepare_genome" in line
    assert "--gpus" not in line


def test_slurm_profile_gpu_submit_line(tmp_path: Path) -> None:
    """A GPU rule: GPUs, CPUs per GPU, one node, memory, time, GPU partition and account."""
    work = workflow_copy(tmp_path)
    config = _load("demo.yaml")
    config["pretrain"].update(gpus=2, cpus_per_gpu=6, mem_mb=64000, runtime=720,
                              config="config/pretrain/gpu.yaml")
    (work / "config" / "gpu.yaml").write_text(yaml.safe_dump(config))
    train = _load("pretrain/demo.yaml")
    train.update(effective_batch=16)  # divisible by micro_batch x 2 GPUs
    (work / "config" / "pretrain" / "gpu.yaml").write_text(yaml.safe_dump(train))
    # the genome stage for real (seconds), so that only the GPU job is left to submit
    local = _snakemake("results/genome/hg38-demo/windows/manifest.json", "--cores", "1",
                       "--configfile", "config/gpu.yaml", cwd=work,
                       env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert local.returncode == 0, local.stderr
    line = _submit_line(work, tmp_path, "results/pretrain/ldarnet/seed1/model.safetensors",
                        "config/gpu.yaml")
    assert "--comment rule_pretrain" in line
    assert "--gpus=2" in line and "--cpus-per-gpu=6" in line and "--nodes=1" in line
    assert "--mem 64000" in line and "-t 720" in line
    assert "-p gpuq" in line and "-A proj42" in line
    assert "--signal" not in line  # SIGUSR1 would kill the Snakemake inside the job
    assert "--ntasks" not in line  # no tasks on GPU rules (the plugin's --ntasks-per-gpu trap)


def test_slurm_run_with_unset_site_variables_is_refused(tmp_path: Path) -> None:
    """Refused before anything is submitted, naming the variable (not sent as '$NAME')."""
    work = workflow_copy(tmp_path)
    bin_dir, log = stub_slurm(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDARNET_SLURM")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", **profile_home(tmp_path, work))
    proc = subprocess.run(
        [SNAKEMAKE, "results/genome/hg38-demo/genome.fa", "--profile", "slurm",
         "--configfile", "config/demo.yaml"],
        cwd=work, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode != 0
    assert "LDARNET_SLURM_ACCOUNT is not set" in proc.stderr
    assert not log.exists()
