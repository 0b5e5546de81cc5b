"""Configuration selection on validation MCC only (spec 4.7 [RISK])."""

from __future__ import annotations

import math

import pytest

from ldarnet.evaluation.errors import EvaluationError
from ldarnet.evaluation.selection import select_configuration


def test_maximal_validation_mcc_is_chosen() -> None:
    grid = [
        {"lr": 1e-4, "batch_size": 64, "val_mcc": 0.50, "val_f1": 0.7},
        {"lr": 2e-4, "batch_size": 32, "val_mcc": 0.61},
        {"lr": 5e-5, "batch_size": 64, "val_mcc": 0.55},
    ]
    chosen = select_configuration(grid)
    assert (chosen["lr"], chosen["batch_size"], chosen["val_mcc"]) == (2e-4, 32, 0.61)
    assert chosen["n_configurations"] == 3
    assert "validation MCC" in chosen["rule"]


def test_ties_go_to_smaller_lr_then_larger_batch() -> None:
    grid = [
        {"lr": 2e-4, "batch_size": 128, "val_mcc": 0.6},
        {"lr": 1e-4, "batch_size": 32, "val_mcc": 0.6},
        {"lr": 1e-4, "batch_size": 64, "val_mcc": 0.6},
        {"lr": 1e-5, "batch_size": 64, "val_mcc": 0.59},
    ]
    chosen = select_configuration(grid)
    assert (chosen["lr"], chosen["batch_size"]) == (1e-4, 64)


def test_nan_entries_are_skipped_but_nan_only_is_an_error() -> None:
    grid = [{"lr": 1e-4, "batch_size": 64, "val_mcc": math.nan},
            {"lr": 2e-4, "batch_size": 64, "val_mcc": 0.1}]
    assert select_configuration(grid)["lr"] == 2e-4
    with pytest.raises(EvaluationError, match="NaN"):
        select_configuration(grid[:1])


@pytest.mark.parametrize("key", ["test_mcc", "test", "Test_auroc"])
def test_entries_with_test_metrics_are_refused(key: str) -> None:
    grid = [{"lr": 1e-4, "batch_size": 64, "val_mcc": 0.5, key: 0.9}]
    with pytest.raises(EvaluationError, match="test metrics"):
        select_configuration(grid)


def test_empty_missing_and_duplicate_entries_are_errors() -> None:
    with pytest.raises(EvaluationError, match="empty"):
        select_configuration([])
    with pytest.raises(EvaluationError, match="lacks val_mcc"):
        select_configuration([{"lr": 1e-4, "batch_size": 64}])
    with pytest.raises(EvaluationError, match="repeats"):
        select_configuration([{"lr": 1e-4, "batch_size": 64, "val_mcc": 0.1},
                              {"lr": 1e-4, "batch_size": 64, "val_mcc": 0.2}])
