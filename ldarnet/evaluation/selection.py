"""Choose one (learning rate, batch size) per task from a grid, on validation MCC only.

The paper searched 36 configurations but the release does not say how one was chosen,
nor on which metric (spec 4.7 [RISK]): choosing on test MCC would bias every reported
number upwards. Here the choice sees validation MCC (mean over the grid folds) and
nothing else; an entry that carries any test metric is refused outright, so a test
number cannot leak into selection even by accident.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ldarnet.evaluation.errors import EvaluationError

RULE = ("maximal mean validation MCC; ties broken by the smaller learning rate, then the "
        "larger batch size")
REQUIRED = ("lr", "batch_size", "val_mcc")


def _number(entry: Mapping, key: str, index: int) -> float:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvaluationError(f"grid entry {index}: {key} must be a number, got {value!r}")
    return float(value)


def select_configuration(grid: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The chosen grid entry plus ``rule`` (text) and ``n_configurations``.

    Ties on validation MCC go to the smaller learning rate, then the larger batch size:
    both mean fewer, gentler updates per epoch, i.e. the more conservative and more
    stable of configurations that the validation data cannot tell apart. Entries with a
    NaN ``val_mcc`` (e.g. a diverged run) are skipped.
    """
    if len(grid) == 0:
        raise EvaluationError("the configuration grid is empty: pass at least one entry with "
                         "lr, batch_size and val_mcc")
    seen: set[tuple[float, float]] = set()
    candidates = []
    for index, entry in enumerate(grid):
        if not isinstance(entry, Mapping):
            raise EvaluationError(
                f"grid entry {index} must be a mapping, got {type(entry).__name__}"
            )
        leaked = sorted(str(k) for k in entry if str(k).lower().startswith("test"))
        if leaked:
            raise EvaluationError(
                f"grid entry {index} carries test metrics ({', '.join(leaked)}); selection "
                "must see validation metrics only: drop the test keys before selecting"
            )
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise EvaluationError(f"grid entry {index} lacks {', '.join(missing)}; every entry "
                             f"needs {', '.join(REQUIRED)}")
        lr, batch, mcc = (_number(entry, k, index) for k in REQUIRED)
        if (lr, batch) in seen:
            raise EvaluationError(f"grid entry {index} repeats lr={entry['lr']}, "
                             f"batch_size={entry['batch_size']}; each configuration must "
                             "appear once (average its folds into one val_mcc)")
        seen.add((lr, batch))
        if not math.isnan(mcc):
            candidates.append((-mcc, lr, -batch, index))
    if not candidates:
        raise EvaluationError(f"all {len(grid)} grid entries have a NaN val_mcc; no configuration "
                         "can be chosen: check the fine-tuning runs of this task")
    index = min(candidates)[3]
    return {**dict(grid[index]), "rule": RULE, "n_configurations": len(grid)}
