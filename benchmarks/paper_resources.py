"""Compute per stage of the paper-scale DAG, from the FLOP counter and the paper config.

Not a timing: an estimate that tells a user what `snakemake --profile slurm all` will cost
before they submit it. Every stage's FLOPs come from ldarnet/model/flops.py applied to the
110M model and to what config/config.yaml asks for (steps, grid, folds, seeds, tasks,
regions); GPU-hours divide them by a card's dense bf16 peak times a model-FLOPs
utilisation (MFU). The MFU is an assumption until benchmarks/gpu_speed.py has measured it
on the target card; short fine-tuning sequences reach a lower MFU than 4 kb pretraining
windows, so the fine-tuning rows are the least certain.

Task sizes: Genomic Benchmarks train/test rows and mean lengths are counted from the
benchmark's official interval files (commit 605d853); NT test rows are the release's
(config/baselines/nt.tsv) and NT train rows are taken as 9 x test (the benchmark's 90/10
split of most of its pools; enhancers are the exception, so they are under-estimated).
Epochs per fine-tuning run: 20 (the release's mean stopping epoch, 6-26 across tasks, plus
the patience of 5); the protocol allows up to 100.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from ldarnet.model.config import load_model_config
from ldarnet.model.flops import forward_flops, training_step_flops
from ldarnet.train.train_config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 20
NT_TRAIN_PER_TEST = 9
MFU = 0.40
GPU_PEAKS = {"A100": 312e12, "H100 SXM": 989e12}  # dense bf16 FLOP/s, vendor figures
PAPER_GPU_HOURS = 1008
# Genomic Benchmarks (train rows, test rows, mean length) counted from the interval files.
GB_SIZES = {
    "demo_coding_vs_intergenomic_seqs": (75000, 25000, 200),
    "demo_human_or_worm": (75000, 25000, 200),
    "drosophila_enhancers_stark": (5184, 1730, 2116),
    "dummy_mouse_enhancers_ensembl": (968, 242, 2337),
    "human_enhancers_cohn": (20843, 6948, 500),
    "human_enhancers_ensembl": (123872, 30970, 269),
    "human_ensembl_regulatory": (231348, 57713, 430),
    "human_nontata_promoters": (27097, 9034, 251),
    "human_ocr_ensembl": (139804, 34952, 326),
}


def _task_sizes(config: dict) -> dict[str, tuple[int, int, int]]:
    """(train rows, test rows, length) of every configured task."""
    with open(ROOT / "config" / "tasks.tsv", newline="") as fh:
        registry = {r["task"]: r for r in csv.DictReader(fh, delimiter="\t")}
    with open(ROOT / "config" / "baselines" / "nt.tsv", newline="") as fh:
        nt_test = {r["task"]: int(r["release_n_test"]) for r in csv.DictReader(fh, delimiter="\t")}
    sizes = {}
    for task in config["tasks"]:
        if task in GB_SIZES:
            sizes[task] = GB_SIZES[task]
        else:
            test = nt_test[task]
            sizes[task] = (NT_TRAIN_PER_TEST * test, test, int(registry[task]["length"]))
    return sizes


def _region_bases(path: Path) -> int:
    total = 0
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            _, start, end = line.split("\t")[:3]
            total += int(end) - int(start)
    return total


def run() -> dict:
    """The paper config's stages, with the release config's beside them (``release``)."""
    return {**stages_of("config.yaml"), "release": stages_of("release.yaml")}


def stages_of(config_name: str) -> dict:
    """Per-stage FLOPs of a workflow config (config/<config_name>).

    A model entry with ``checkpoint:`` (config/release.yaml) is imported, not pretrained:
    its architecture is the released 110M layout (config/models/ldarnet-110m.yaml, which
    tests/interop/test_interop_release.py maps to the release's config), and pretraining costs
    nothing but the download and a CPU import.
    """
    config = yaml.safe_load((ROOT / "config" / config_name).read_text())
    evaluated = config["evaluation"]["models"][0]
    entry = config["models"][evaluated]
    released = "checkpoint" in entry
    model = load_model_config(ROOT / ("config/models/ldarnet-110m.yaml" if released
                                      else entry["config"]))
    train = load_train_config(ROOT / config["pretrain"]["config"])
    trained = [m for m in config["pretrain"]["models"] if "checkpoint" not in config["models"][m]]
    pretrain = training_step_flops(model, train.seq_len, batch=train.effective_batch) \
        * train.total_steps * len(trained)
    arms = len(config["ablation"]["arms"])
    grid_points = len(config["grid"]["learning_rates"]) * len(config["grid"]["batch_sizes"])
    folds, seeds = config["folds"], len(config["seeds"])
    grid_folds = len(config["evaluation"]["grid_folds"])
    ablation_tasks = set(config["ablation"]["tasks"])

    def finetune(task_sizes: dict[str, tuple[int, int, int]], runs_per_task: float,
                 with_test: bool) -> float:
        total = 0.0
        for task, (n_train, n_test, length) in task_sizes.items():
            fwd = forward_flops(model, length)["total"]
            per_epoch = 0.9 * n_train * 3 * fwd + 0.1 * n_train * fwd  # train + validation
            per_run = EPOCHS * per_epoch + (n_test * fwd if with_test else 0)
            models = 1 + (arms if task in ablation_tasks else 0)
            total += models * runs_per_task * per_run
        return total

    sizes = _task_sizes(config)
    regions = _region_bases(ROOT / config["boundaries"]["regions"])
    window = config["genome"]["window"]
    stages = {
        ("pretraining: none (released weights, imported on a CPU)" if released
         else "pretraining (learned)"): pretrain,
        f"ablation arms ({arms}, FLOPs-matched)": arms * pretrain,
        f"fine-tuning grid ({grid_points} points x {grid_folds} fold)":
            finetune(sizes, grid_points * grid_folds, with_test=False),
        f"cross-validation ({folds} folds x {seeds} seeds)":
            finetune(sizes, folds * seeds, with_test=True),
        f"segmentation ({regions / 1e6:,.0f} Mb of regions)":
            regions / window * forward_flops(model, window)["total"],
    }
    return {"config": config_name, "stages": stages, "steps": train.total_steps,
            "tasks": len(sizes), "total": sum(stages.values()), "released": released}


def _hours(flops: float, peak: float) -> str:
    value = flops / (peak * MFU) / 3600
    if value == 0:
        return "0"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def markdown(r: dict) -> str:
    heads = " | ".join(f"{name} GPU-h" for name in GPU_PEAKS)
    rows = "\n".join(
        f"| {stage} | {flops:.2e} | " + " | ".join(_hours(flops, p) for p in GPU_PEAKS.values())
        + " |" for stage, flops in r["stages"].items())
    total = " | ".join(_hours(r["total"], p) for p in GPU_PEAKS.values())
    return (
        "## Reproducing the paper: compute per stage\n\n"
        f"The paper config (config/config.yaml: {r['steps']:,} pretraining steps, "
        f"{r['tasks']} tasks) through the FLOP counter; GPU-hours at an assumed "
        f"{100 * MFU:.0f} % MFU of the dense bf16 peak (A100 312, H100 989 TFLOP/s). "
        "Estimates, not measurements: see benchmarks/paper_resources.py for every "
        "assumption (task sizes, 20 epochs per run).\n\n"
        f"| stage | FLOPs | {heads} |\n|---|---:|" + "---:|" * len(GPU_PEAKS) + "\n"
        f"{rows}\n| **total** | {r['total']:.2e} | {total} |\n\n"
        f"The paper reports {PAPER_GPU_HOURS:,} GPU-hours for pretraining alone.\n"
        + (f"\n{markdown_release(r, r['release'])}" if "release" in r else "")
    )


def markdown_release(paper: dict, release: dict) -> str:
    """The release path (config/release.yaml) next to the from-scratch run, per stage."""
    names = list(paper["stages"])
    values = list(release["stages"].values())
    heads = " | ".join(f"{label} {gpu}" for gpu in GPU_PEAKS
                       for label in ("from scratch", "release"))

    def cells(a: float, b: float) -> str:
        return " | ".join(f"{_hours(a, peak)} | {_hours(b, peak)}" for peak in GPU_PEAKS.values())

    lines = [f"| {name.split(' (')[0] if i == 0 else name} | "
             f"{cells(paper['stages'][name], values[i])} |" for i, name in enumerate(names)]
    return (
        "### The release path, next to the from-scratch run\n\n"
        "config/release.yaml (claims C1, C2, C4 from the released weights) against "
        f"config/config.yaml, in GPU-hours at {100 * MFU:.0f} % MFU (the assumptions above). "
        "The release path downloads the 1.53 GB checkpoint and imports it on a CPU "
        "(minutes) instead of pretraining, and has no ablation arms (C3 compares "
        "pretraining runs), so it fine-tunes one model where the paper run fine-tunes "
        "three on the histone tasks.\n\n"
        f"| stage | {heads} |\n|---|" + "---:|" * (2 * len(GPU_PEAKS)) + "\n"
        + "\n".join(lines)
        + f"\n| **total** | {cells(paper['total'], release['total'])} |\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
