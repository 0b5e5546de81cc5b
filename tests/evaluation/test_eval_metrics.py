"""Classification metrics and fold aggregation (spec 4.5), against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ldarnet.evaluation.errors import EvaluationError
from ldarnet.evaluation.metrics import classification_metrics, summarize


def _binary_probs(p1: list[float]) -> np.ndarray:
    p1 = np.asarray(p1)
    return np.stack([1 - p1, p1], axis=1)


def test_binary_metrics_by_hand() -> None:
    # 4 positives, 6 negatives; predictions (p > 0.5): TP 3, FN 1, FP 1, TN 5.
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p1 = [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05, 0.15]
    m = classification_metrics(labels, _binary_probs(p1))
    assert m["mcc"] == pytest.approx((3 * 5 - 1 * 1) / math.sqrt(4 * 4 * 6 * 6))  # 14/24
    assert m["accuracy"] == pytest.approx(0.8)
    # F1: class 1 = 0.75 (P = R = 3/4), class 0 = 5/6; weighted by support 4 and 6.
    assert m["f1"] == pytest.approx((4 * 0.75 + 6 * 5 / 6) / 10)
    # AUROC = ordered positive/negative pairs: (6 + 6 + 5 + 4) / 24.
    assert m["auroc"] == pytest.approx(21 / 24)
    assert all(type(v) is float for v in m.values())


def test_three_class_metrics_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    probs = np.array([
        [0.6, 0.3, 0.1],  # true 0, pred 0
        [0.3, 0.5, 0.2],  # true 0, pred 1
        [0.2, 0.7, 0.1],  # true 1, pred 1
        [0.1, 0.6, 0.3],  # true 1, pred 1
        [0.1, 0.2, 0.7],  # true 2, pred 2
        [0.5, 0.1, 0.4],  # true 2, pred 0
    ])
    m = classification_metrics(labels, probs)
    # Gorodkin's multi-class MCC: (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)),
    # c = 4 correct, s = 6, true counts (2, 2, 2), predicted counts (2, 3, 1).
    assert m["mcc"] == pytest.approx((4 * 6 - (4 + 6 + 2)) / math.sqrt((36 - 14) * (36 - 12)))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)  # equal supports
    # one-vs-rest AUROCs 7/8, 1, 1, weighted by equal supports
    assert m["auroc"] == pytest.approx((7 / 8 + 1 + 1) / 3)


def test_single_class_labels_give_nan_auroc_not_an_error() -> None:
    m = classification_metrics([1, 1, 1], _binary_probs([0.9, 0.2, 0.7]))
    assert math.isnan(m["auroc"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    m3 = classification_metrics([2, 2], np.array([[0.2, 0.2, 0.6], [0.5, 0.3, 0.2]]))
    assert math.isnan(m3["auroc"])


def test_multiclass_auroc_with_an_absent_class_is_finite() -> None:
    labels = [0, 0, 1, 1]
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.4, 0.5, 0.1]])
    assert classification_metrics(labels, probs)["auroc"] == pytest.approx(1.0)


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(EvaluationError, match="one integer per row"):
        classification_metrics([0, 1], _binary_probs([0.1, 0.2, 0.3]))
    with pytest.raises(EvaluationError, match="labels must lie in"):
        classification_metrics([0, 2], _binary_probs([0.1, 0.2]))


def test_summarize_by_hand() -> None:
    s = summarize([0.8, 0.82, 0.84])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.82)
    assert s["std"] == pytest.approx(0.02)
    assert s["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))
    assert s["ci95"] == pytest.approx(0.0496827, abs=1e-6)
    assert (s["min"], s["max"]) == (pytest.approx(0.8), pytest.approx(0.84))


def test_summarize_one_value_has_nan_spread() -> None:
    s = summarize([0.5])
    assert s["n"] == 1 and s["mean"] == 0.5 and s["min"] == s["max"] == 0.5
    assert math.isnan(s["std"]) and math.isnan(s["ci95"])
    with pytest.raises(EvaluationError, match="empty"):
        summarize([])
