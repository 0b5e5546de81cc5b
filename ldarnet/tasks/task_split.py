"""One split of a labelled sequence-classification task, held in memory.

Every loader (NT, Genomic Benchmarks, proxies, GENCODE-derived tasks) ends in this one
shape, so the fine-tuning code never needs to know where a task came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskSplit:
    """Sequences (upper-case DNA strings) and their integer class labels, row-aligned."""

    sequences: list[str]
    labels: np.ndarray  # int64, shape (n,)

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.labels):
            raise ValueError(
                f"{len(self.sequences)} sequences but {len(self.labels)} labels; a split "
                "needs one label per sequence"
            )

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TaskSplit:
        """The rows at ``indices`` (in that order): how folds cut a train split."""
        idx = np.asarray(indices, dtype=np.int64)
        return TaskSplit([self.sequences[i] for i in idx], self.labels[idx].astype(np.int64))
