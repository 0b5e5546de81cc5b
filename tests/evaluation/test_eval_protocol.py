"""The evaluation protocol end to end: grid without test, selection, resumable CV, commands.

Runs on a real shipped task (iEnhancer-2L, 200 bp, subsampled) with a randomly initialised
tiny model for one epoch: the numbers are not meant to be good, only exactly reproducible.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.cli import main
from ldarnet.evaluation.finetune import FinetuneConfig
from ldarnet.evaluation.protocol import (
    cv_key,
    discard_partial_folds,
    fold_path,
    run_cv,
    run_grid_point,
    summarize_task,
)
from ldarnet.evaluation.selection import select_configuration
from ldarnet.foundation.atomic import write_json
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import save_model_file
from ldarnet.tasks.registry import load_registry
from ldarnet.tasks.remote_sources import task_source
from ldarnet.tasks.source_config import load_sources
from ldarnet.tasks.sources import build_task

REGISTRY = load_registry(ROOT / "config" / "tasks.tsv")
SPEC = REGISTRY["enhancers"]
CFG = load_model_config(MODELS / "ldarnet-tiny.yaml")


def _backbone() -> LDARNet:
    torch.manual_seed(0)
    return LDARNet(CFG)


def _settings(lr: float = 3e-3, seed: int = 1) -> FinetuneConfig:
    return FinetuneConfig(lr=lr, batch_size=16, max_epochs=1, patience=1, seed=seed,
                          eval_batch_size=64)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("task") / "enhancers"
    sources = load_sources(ROOT / "config" / "evaluation" / "sources-demo.yaml")
    source = {k: ({c: str(ROOT / p) for c, p in v.items()} if isinstance(v, dict) else v)
              for k, v in task_source(SPEC, sources, {}).items()}
    build_task(SPEC, source, out, subsample={"train": 48, "test": 24}, seed=0)
    return out


def _poison(task: Path, dest: Path) -> Path:
    """A copy of the task whose test labels are all flipped."""
    dest.mkdir()
    for name in ("train.csv", "task.json"):
        (dest / name).write_bytes((task / name).read_bytes())
    with open(task / "test.csv", newline="") as src, open(dest / "test.csv", "w",
                                                          newline="") as out:
        writer = csv.writer(out)
        for i, row in enumerate(csv.reader(src)):
            writer.writerow(row if i == 0 else [row[0], str(1 - int(row[1]))])
    return dest


def test_grid_never_reads_the_test_split(task_dir: Path, tmp_path: Path) -> None:
    clean = run_grid_point(task_dir, SPEC, _backbone, _settings(), folds=[0], n_splits=3,
                           progress=False, log=lambda _: None)
    poisoned = _poison(task_dir, tmp_path / "poisoned")
    dirty = run_grid_point(poisoned, SPEC, _backbone, _settings(), folds=[0], n_splits=3,
                           progress=False)
    (poisoned / "test.csv").unlink()  # not even present
    gone = run_grid_point(poisoned, SPEC, _backbone, _settings(), folds=[0], n_splits=3,
                          progress=False)
    for result in (dirty, gone):
        assert result["val_mcc"] == clean["val_mcc"]
        assert result["runs"][0]["history"] == clean["runs"][0]["history"]
    assert clean["runs"][0]["test"] is None
    assert clean["runs"][0]["val_examples"] == 16  # fold 0 of KFold(3) on 48 rows
    # the selection sees validation numbers only, so the choice cannot depend on test
    other = run_grid_point(task_dir, SPEC, _backbone, _settings(lr=1e-5), folds=[0],
                           n_splits=3, progress=False)
    grid = [{k: r[k] for k in ("lr", "batch_size", "val_mcc")} for r in (clean, other)]
    chosen = select_configuration(grid)
    # the highest validation MCC; on a tie, the smaller learning rate (the stated rule)
    best = min(grid, key=lambda g: (-g["val_mcc"], g["lr"]))
    assert (chosen["lr"], chosen["batch_size"]) == (best["lr"], best["batch_size"])


def _key(task_dir: Path, tmp_path: Path, weights: bytes = b"weights v1", **settings) -> dict:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(weights)
    return cv_key(checkpoint, task_dir, _settings(**settings), 2)


def test_cv_resumes_only_an_interrupted_run_of_the_same_inputs(task_dir: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "cv"
    key = _key(task_dir, tmp_path)
    first = run_cv(task_dir, SPEC, _backbone, _settings(), n_splits=2, out_dir=out, key=key,
                   progress=False, log=lambda _: None)
    assert [f["fold"] for f in first["folds"]] == [0, 1]
    assert first["test"]["mcc"]["n"] == 2 and first["key"] == key
    for fold in first["folds"]:
        assert fold["test"] is not None and -1.0 <= fold["test"]["mcc"] <= 1.0
    fold_path(out, 1).unlink()  # as if the job had been killed during fold 1
    messages: list[str] = []
    again = run_cv(task_dir, SPEC, _backbone, _settings(), n_splits=2, out_dir=out, key=key,
                   progress=False, log=messages.append)
    assert "interrupted attempt" in messages[0] and "fold 1: test MCC" in messages[-1]
    assert any(m.startswith("epoch 1:") for m in messages)  # per-epoch lines reach the log
    assert again["folds"] == first["folds"]  # the rerun fold is bit-identical
    # other weights (e.g. a re-pretrained arm): no fold is reused, both are fine-tuned again
    messages.clear()
    other = _key(task_dir, tmp_path, weights=b"weights v2")
    assert other["checkpoint_sha256"] != key["checkpoint_sha256"]
    run_cv(task_dir, SPEC, _backbone, _settings(), n_splits=2, out_dir=out, key=other,
           progress=False, log=messages.append)
    assert sum("checkpoint_sha256 differ" in m for m in messages) == 2
    assert not any("interrupted attempt" in m for m in messages)
    # another learning rate: likewise
    messages.clear()
    run_cv(task_dir, SPEC, _backbone, _settings(lr=1e-4), n_splits=2, out_dir=out,
           key=_key(task_dir, tmp_path, weights=b"weights v2", lr=1e-4), progress=False,
           log=messages.append)
    assert sum("settings differ" in m for m in messages) == 2
    # a finished job leaves no partial folds behind, so its rerun fine-tunes again
    discard_partial_folds(out)
    assert not fold_path(out, 0).parent.exists()


def test_summary_pools_seeds_and_folds() -> None:
    def cv(seed: int, values: list[float]) -> dict:
        folds = [{"fold": k, "test": {"mcc": v, "accuracy": 0.5, "f1": 0.5, "auroc": 0.5}}
                 for k, v in enumerate(values)]
        return {"seed": seed, "n_splits": len(values), "folds": folds,
                "test": {"mcc": {"mean": sum(values) / len(values)}}}

    manifest = {"task": "H3", "kind": "proxy", "note": "n",
                "splits": {"train": {"rows": 10}, "test": {"rows": 5}}}
    summary = summarize_task([cv(1, [0.1, 0.2]), cv(2, [0.3, 0.4])],
                             {"lr": 1e-4, "batch_size": 64, "val_mcc": 0.5}, manifest, "m")
    mcc = summary["test"]["mcc"]
    assert mcc["n"] == 4 and mcc["mean"] == pytest.approx(0.25)
    assert mcc["std"] == pytest.approx(0.1290994, rel=1e-6)  # sample std of 0.1..0.4
    assert mcc["ci95"] == pytest.approx(3.182446 * 0.1290994 / 2, rel=1e-5)
    assert summary["per_seed_mcc"] == {"1": pytest.approx(0.15), "2": pytest.approx(0.35)}
    assert summary["rows"] == {"train": 10, "test": 5} and summary["kind"] == "proxy"


def test_commands_from_task_to_table(task_dir: Path, tmp_path: Path) -> None:
    """The workflow's command chain on one task: grid → select → CV → summary → table."""
    run = tmp_path / "pretrain"
    run.mkdir()
    save_model_file(_backbone(), run / "model.safetensors")
    write_json(run / "config.json", {"model_config": CFG.to_dict()})
    common = ["--task-dir", str(task_dir), "--model", str(run / "model.safetensors"),
              "--n-splits", "2", "--max-epochs", "1", "--patience", "1", "--no-progress",
              "--device", "cpu", "--registry", str(ROOT / "config" / "tasks.tsv")]
    grid = []
    for lr in ("0.003", "1e-05"):
        out = tmp_path / f"grid_{lr}.json"
        assert main(["finetune-grid", "enhancers", *common, "--lr", lr, "--batch-size", "16",
                     "--out", str(out)]) == 0
        grid.append(str(out))
    selected = tmp_path / "selected.json"
    assert main(["select-config", "--grid", *grid, "--out", str(selected)]) == 0
    choice = json.loads(selected.read_text())
    assert len(choice["grid"]) == 2 and "validation" in choice["rule"]
    cv = tmp_path / "cv" / "seed1" / "result.json"
    assert main(["finetune-cv", "enhancers", *common, "--selected", str(selected),
                 "--seed", "1", "--out", str(cv)]) == 0
    # the finished job keeps its folds in result.json only: a rerun fine-tunes again
    folds = json.loads(cv.read_text())["folds"]
    assert [f["fold"] for f in folds] == [0, 1] and not (cv.parent / "partial").exists()
    summary = tmp_path / "summary.json"
    assert main(["eval-summary", "--cv", str(cv), "--selected", str(selected), "--task-dir",
                 str(task_dir), "--model-name", "tiny", "--out", str(summary)]) == 0
    table = tmp_path / "enhancers.tsv"
    assert main(["eval-table", "enhancers", "--summaries", str(summary), "--registry",
                 str(ROOT / "config" / "tasks.tsv"), "--out", str(table)]) == 0
    with open(table, newline="") as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    assert row["task"] == "enhancers" and row["data"] == "proxy" and row["runs"] == "2"
    assert -100.0 <= float(row["mcc_x100"]) <= 100.0
    assert float(row["release_mcc_x100"]) == 54.3
    assert "iEnhancer-2L" in table.with_suffix(".md").read_text()


def test_command_errors_are_one_line(task_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["prepare-task", "H99", "--out", str(tmp_path / "x")]) == 2
    assert "task 'H99' is not in the registry" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": 1e-4, "batch_size": 64, "val_mcc": 0.5, "folds": [0],
                               "test_mcc": 0.9}))
    assert main(["select-config", "--grid", str(bad), "--out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert "test" in err and err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "s.json").exists()
