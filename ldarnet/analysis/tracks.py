"""Read the outputs of ``ldarnet segment`` back into per-base arrays of one contig.

Analyses work on arrays indexed by genome position; positions not covered by the
bedGraph are NaN (probability) and False (boundary), so that an analysis can skip
anchors whose window is not fully segmented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ldarnet.data.bed import BedRecord, iter_bed
from ldarnet.errors import InputError, MissingInputError


class TrackError(InputError):
    """A bedGraph/BED that cannot be read as a segmentation."""


def read_bedgraph(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base values of ``contig`` (float32, NaN where the file has no value)."""
    values = np.full(length, np.nan, dtype=np.float32)
    for record in _records(path, 4):
        if record.contig != contig:
            continue
        _check_end(path, record, length)
        try:
            values[record.start : record.end] = float(record.fields[3])
        except ValueError:
            raise TrackError(f"{path}:{record.line}: value {record.fields[3]!r} is not a "
                             "number") from None
    return values


def read_boundaries(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base hard boundaries of ``contig`` from the BED of ``ldarnet segment``."""
    mask = np.zeros(length, dtype=bool)
    for record in _records(path, 3):
        if record.contig == contig:
            _check_end(path, record, length)
            mask[record.start : record.end] = True
    return mask


def track_contigs(path: str | Path) -> set[str]:
    """Contigs that have at least one line in a bedGraph/BED."""
    return {record.contig for record in _records(path, 3)}


def _records(path: str | Path, columns: int) -> Iterator[BedRecord]:
    """The lines of a segmentation file, through the one BED reader."""
    if not Path(path).is_file():
        raise MissingInputError(f"segmentation file {path} does not exist (run ldarnet segment)")
    return iter_bed(path, columns, what="segmentation file")


def _check_end(path, record: BedRecord, length: int) -> None:
    if record.end > length:
        raise TrackError(f"{path}:{record.line}: interval {record.start}-{record.end} outside "
                         f"0-{length} (segmentation of another genome?)")
