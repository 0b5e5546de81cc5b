"""K-fold cross-validation on a task's train split (spec 4.2).

NT tasks have no validation split, so the release cuts the train split with
``KFold(n_splits=10, shuffle=True, random_state=42)`` and uses fold k's held-out tenth
as validation. Delegating to scikit-learn (rather than re-implementing the shuffle)
is what makes our folds the *same rows* as the release's, so per-fold numbers can be
compared one to one.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold

from ldarnet.evaluation.errors import EvaluationError


def kfold_splits(n: int, n_splits: int = 10, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, validation indices) per fold, exactly as scikit-learn's shuffled KFold.

    Fold k's validation set is the k-th array of held-out rows; the validation sets of
    all folds partition ``range(n)``.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise EvaluationError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise EvaluationError(f"n must be a non-negative integer number of rows, got {n!r}")
    if n < n_splits:
        raise EvaluationError(
            f"cannot cut {n} rows into {n_splits} folds: every fold needs at least one "
            f"validation row; use n_splits <= {n} or a larger train split"
        )
    kfold = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(train.astype(np.int64), val.astype(np.int64))
            for train, val in kfold.split(np.arange(n))]
