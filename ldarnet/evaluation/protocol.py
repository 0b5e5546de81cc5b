"""The evaluation protocol as three steps a workflow can run as separate jobs.

1. ``run_grid_point``: one (learning rate, batch size) of the grid, fine-tuned on the
   configured grid fold(s) of the task's **train** split and scored on the held-out
   validation part only. It is handed no test data at all, so model selection cannot
   see the test labels (the workflow rule does not even list ``test.csv`` as an input).
2. ``select_configuration`` (ldarnet.evaluation.selection) on the grid's validation MCCs.
3. ``run_cv``: the selected configuration on every fold of ``KFold(k, shuffle, 42)`` for
   one seed; the official test split is the test set of every fold (spec 4.2). Each fold
   is written to its own JSON (``partial/foldK.json``) as soon as it finishes and skipped
   when the job restarts, so a pre-empted 10-fold job resumes where it stopped. A fold is
   reused only when its key (the checkpoint's sha256, the task files' sha256, the
   selected configuration and every fine-tuning setting) equals this job's; the partial
   folds are deleted once the job's result is written, so a rerun of a finished job
   fine-tunes again.

``summarize_task`` pools the CV runs of all seeds into the numbers the tables print.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ldarnet.evaluation.errors import EvaluationError
from ldarnet.evaluation.finetune import FinetuneConfig, finetune_fold
from ldarnet.evaluation.folds import kfold_splits
from ldarnet.evaluation.metrics import summarize
from ldarnet.foundation.atomic import write_json
from ldarnet.foundation.checksum import file_sha256
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.tasks.registry import TaskSpec
from ldarnet.tasks.task_data import read_split

METRICS = ("mcc", "accuracy", "f1", "auroc")
FOLD_SEED = 42  # KFold's random_state in the release (spec 4.2); the folds never vary


class ProtocolError(EvaluationError):
    """Inconsistent evaluation inputs (e.g. a fold result from another configuration)."""


def _settings(cfg: FinetuneConfig) -> dict[str, Any]:
    """The fine-tuning settings a result depends on (checked before a fold is reused)."""
    return {"lr": cfg.lr, "batch_size": cfg.batch_size, "seed": cfg.seed,
            "max_epochs": cfg.max_epochs, "patience": cfg.patience,
            "plateau_mode": cfg.plateau_mode, "decay_exemptions": cfg.decay_exemptions,
            "weight_decay": cfg.weight_decay}


def _check_folds(folds: Sequence[int], n_splits: int) -> None:
    bad = [k for k in folds if not 0 <= k < n_splits]
    if bad or not folds:
        raise ProtocolError(f"fold(s) {bad or list(folds)} not in 0..{n_splits - 1}; "
                            f"choose folds of the {n_splits}-fold split")


def run_grid_point(task_dir: str | Path, spec: TaskSpec,
                   load_backbone: Callable[[], LDARNet], cfg: FinetuneConfig,
                   folds: Sequence[int], n_splits: int, progress: bool = True,
                   log: Callable[[str], None] = print) -> dict:
    """Validation scores of one grid configuration (the test split is never opened)."""
    _check_folds(folds, n_splits)
    train = read_split(Path(task_dir) / "train.csv", spec)
    splits = kfold_splits(len(train), n_splits, seed=FOLD_SEED)
    runs = []
    for k in folds:
        fit_idx, val_idx = splits[k]
        log(f"{spec.name} lr={cfg.lr:g} bs={cfg.batch_size}: grid fold {k}")
        result = finetune_fold(load_backbone, train.subset(fit_idx), train.subset(val_idx),
                               spec.num_classes, cfg, test=None, progress=progress, log=log)
        runs.append({"fold": k, **result.to_dict()})
    val_mcc = [run["val"]["mcc"] for run in runs]
    return {"task": spec.name, **_settings(cfg), "folds": list(folds), "n_splits": n_splits,
            "val_mcc": sum(val_mcc) / len(val_mcc), "runs": runs}


PARTIAL_DIR = "partial"


def fold_path(out_dir: str | Path, fold: int) -> Path:
    """Where fold ``fold`` of an unfinished CV job is kept (and found again on restart)."""
    return Path(out_dir) / PARTIAL_DIR / f"fold{fold}.json"


def cv_key(checkpoint: str | Path, task_dir: str | Path, cfg: FinetuneConfig,
           n_splits: int) -> dict[str, Any]:
    """Everything a CV fold's result depends on: weights, task data, settings, folds."""
    task_dir = Path(task_dir)
    return {"checkpoint_sha256": file_sha256(checkpoint),
            "train_sha256": file_sha256(task_dir / "train.csv"),
            "test_sha256": file_sha256(task_dir / "test.csv"),
            "n_splits": n_splits, "fold_seed": FOLD_SEED, "settings": _settings(cfg)}


def _reusable_fold(path: Path, key: Mapping[str, Any], log: Callable[[str], None]
                   ) -> dict | None:
    """A fold result of an unfinished run of exactly these inputs, or None."""
    if not path.is_file():
        return None
    try:
        done = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged file is recomputed (writes are atomic, so this is rare)
    old = done.get("key") or {}
    different = sorted(k for k in key if old.get(k) != key[k])
    if different:
        log(f"{path}: computed from other inputs ({', '.join(different)} differ); "
            "fine-tuned again")
        return None
    return done


def run_cv(task_dir: str | Path, spec: TaskSpec, load_backbone: Callable[[], LDARNet],
           cfg: FinetuneConfig, n_splits: int, out_dir: str | Path,
           key: Mapping[str, Any], progress: bool = True,
           log: Callable[[str], None] = print) -> dict:
    """All folds of one seed; folds of an interrupted run with the same ``key`` are kept.

    The caller writes the result and then calls :func:`discard_partial_folds`.
    """
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    fold_path(out_dir, 0).parent.mkdir(parents=True, exist_ok=True)
    train = read_split(task_dir / "train.csv", spec)
    test = read_split(task_dir / "test.csv", spec)
    splits = kfold_splits(len(train), n_splits, seed=FOLD_SEED)
    settings = _settings(cfg)
    runs = []
    for k, (fit_idx, val_idx) in enumerate(splits):
        path = fold_path(out_dir, k)
        done = _reusable_fold(path, key, log)
        if done is not None:
            log(f"{spec.name} fold {k}: finished by an interrupted attempt of this job "
                f"({path}); kept")
            runs.append(done)
            continue
        log(f"{spec.name} seed {cfg.seed}: fold {k} of {n_splits}")
        result = finetune_fold(load_backbone, train.subset(fit_idx), train.subset(val_idx),
                               spec.num_classes, cfg, test=test, progress=progress, log=log)
        run = {"fold": k, "key": dict(key), **result.to_dict()}
        write_json(path, run)
        log(f"{spec.name} fold {k}: test MCC {run['test']['mcc']:.4f} "
            f"(best epoch {run['best_epoch']}, stopped at {run['stop_epoch']})")
        runs.append(run)
    return {"task": spec.name, **settings, "n_splits": n_splits, "key": dict(key),
            "test": {m: summarize([r["test"][m] for r in runs]) for m in METRICS},
            "folds": [{"fold": r["fold"], "test": r["test"], "val": r["val"],
                       "best_epoch": r["best_epoch"], "stop_epoch": r["stop_epoch"]}
                      for r in runs]}


def discard_partial_folds(out_dir: str | Path) -> None:
    """Delete the per-fold results once the job's result is written (no stale reuse)."""
    shutil.rmtree(Path(out_dir) / PARTIAL_DIR, ignore_errors=True)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if not (isinstance(v, float) and math.isnan(v))]


def summarize_task(cv_results: Sequence[Mapping], selected: Mapping, manifest: Mapping,
                   model: str) -> dict:
    """One task's result: every (seed, fold) run pooled, plus the choice and the data kind.

    The interval is a t-interval over all (seed, fold) runs: with one seed it is exactly
    the release's 10-fold interval (spec 4.5); with more seeds it also covers the
    fine-tuning seed's variance. The per-seed means are kept so a reader can see both.
    """
    if not cv_results:
        raise ProtocolError(f"no cross-validation results for {manifest.get('task')}")
    pooled = {m: [f["test"][m] for r in cv_results for f in r["folds"]] for m in METRICS}
    return {
        "task": manifest["task"], "model": model, "kind": manifest.get("kind", "official"),
        "note": manifest.get("note", ""),
        "rows": {split: info["rows"] for split, info in manifest["splits"].items()},
        "selected": {"lr": selected["lr"], "batch_size": selected["batch_size"],
                     "val_mcc": selected["val_mcc"], "rule": selected.get("rule", "")},
        "seeds": [r["seed"] for r in cv_results],
        "n_splits": cv_results[0]["n_splits"],
        # NaN runs (AUROC of a single-class test split) are left out; all-NaN stays NaN
        "test": {m: summarize(_finite(v) or [float("nan")]) for m, v in pooled.items()},
        "per_seed_mcc": {str(r["seed"]): r["test"]["mcc"]["mean"] for r in cv_results},
        "fold_mcc": pooled["mcc"],
        # (seed, fold) of every run: what a paired comparison of two models matches on
        "runs": [{"seed": r["seed"], "fold": f["fold"], "mcc": f["test"]["mcc"]}
                 for r in cv_results for f in r["folds"]],
    }
