"""Per-evaluation classification metrics and their aggregation over folds (spec 4.5).

All metrics come from scikit-learn so that our numbers are computed the way the
release computed them (MCC's multi-class generalisation, support-weighted F1 and
one-vs-rest AUROC). The one deliberate difference: AUROC is undefined when the labels
hold a single class, and we return NaN there instead of raising, because a tiny
validation fold must not abort a ten-fold run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from ldarnet.evaluation.errors import EvaluationError

METRIC_NAMES = ("mcc", "accuracy", "f1", "auroc")


def _check(labels: np.ndarray, probs: np.ndarray) -> None:
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise EvaluationError(
            f"probs must be (examples, classes) with at least 2 classes, got shape "
            f"{probs.shape}; pass the softmax output of the classifier"
        )
    if labels.ndim != 1 or len(labels) != len(probs):
        raise EvaluationError(
            f"labels must be one integer per row of probs ({len(probs)} rows), got shape "
            f"{labels.shape}"
        )
    if len(labels) == 0:
        raise EvaluationError("cannot compute metrics of an empty split: it has no examples")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise EvaluationError(
            f"labels must lie in 0..{probs.shape[1] - 1} (one column of probs per class), "
            f"got values {labels.min()}..{labels.max()}"
        )


def _auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Binary: P(class 1). Multi-class: support-weighted one-vs-rest; NaN if one class."""
    present = np.unique(labels)
    if len(present) < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    if len(present) == probs.shape[1]:
        return float(roc_auc_score(labels, probs, multi_class="ovr", average="weighted",
                                   labels=np.arange(probs.shape[1])))
    # A class absent from the labels has weight 0 in the weighted average; scikit-learn
    # refuses that case outright, so average the present classes' one-vs-rest AUROCs.
    weights = np.array([(labels == c).mean() for c in present])
    scores = np.array([roc_auc_score(labels == c, probs[:, c]) for c in present])
    return float(np.sum(weights * scores) / weights.sum())


def classification_metrics(labels: Sequence[int] | np.ndarray,
                           probs: np.ndarray) -> dict[str, float]:
    """MCC, accuracy, weighted F1 and AUROC of class probabilities against true labels.

    Predictions are the arg-max class. Returns plain floats (JSON-ready); ``auroc`` is
    NaN when ``labels`` contain a single class.
    """
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    _check(labels, probs)
    preds = probs.argmax(axis=1)
    return {
        "mcc": float(matthews_corrcoef(labels, preds)),
        "accuracy": float(accuracy_score(labels, preds)),
        "f1": float(f1_score(labels, preds, average="weighted", zero_division=0)),
        "auroc": _auroc(labels, probs),
    }


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, sample std and 95 % CI half-width (Student t) of per-fold values.

    The README of the release reports mean ± t_{0.975,n-1}·s/√n over the 10 folds; the
    folds share one test set, so this interval measures training/split variance, not
    test-sampling error (spec 4.2). With one value the spread is undefined (NaN).
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    n = int(arr.size)
    if n == 0:
        raise EvaluationError("cannot summarize an empty list of values: pass one value per fold")
    mean = float(arr.mean())
    if n > 1:
        std = float(arr.std(ddof=1))
        ci95 = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    else:
        std = ci95 = math.nan
    return {"n": n, "mean": mean, "std": std, "ci95": ci95, "min": float(arr.min()),
            "max": float(arr.max())}
