"""K-fold splits: the release's scikit-learn folds (spec 4.2), validation sets partition."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from ldarnet.evaluation.errors import EvaluationError
from ldarnet.evaluation.folds import kfold_splits


@pytest.mark.parametrize("n", [10, 11, 57, 1000])
def test_folds_equal_sklearn_kfold_with_seed_42(n: int) -> None:
    expected = list(KFold(n_splits=10, shuffle=True, random_state=42).split(range(n)))
    folds = kfold_splits(n)
    assert len(folds) == 10
    for (train, val), (exp_train, exp_val) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(train, exp_train)
        np.testing.assert_array_equal(val, exp_val)


@pytest.mark.parametrize(("n", "k"), [(10, 10), (23, 5), (100, 10)])
def test_validation_sets_partition_the_rows(n: int, k: int) -> None:
    folds = kfold_splits(n, n_splits=k, seed=7)
    vals = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(n))
    for train, val in folds:
        assert not set(train) & set(val)
        assert len(train) + len(val) == n


def test_seed_changes_the_folds() -> None:
    assert not np.array_equal(kfold_splits(50, seed=42)[0][1], kfold_splits(50, seed=1)[0][1])


def test_too_few_rows_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="cannot cut 9 rows into 10 folds"):
        kfold_splits(9)
    with pytest.raises(EvaluationError, match="n_splits"):
        kfold_splits(10, n_splits=1)
