"""Read the outputs of ``ldarnet segment`` back into per-base arrays of one contig.

Analyses work on arrays indexed by genome position; positions not covered by the
bedGraph are NaN (probability) and False (boundary), so that an analysis can skip
anchors whose window is not fully segmented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ldarnet.data.bed import BedChunk, iter_bed_chunks
from ldarnet.foundation.errors import InputError, MissingInputError


class TrackError(InputError):
    """A bedGraph/BED that cannot be read as a segmentation."""


def read_bedgraph(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base values of ``contig`` (float32, NaN where the file has no value)."""
    values = np.full(length, np.nan, dtype=np.float32)
    for chunk in _chunks(path, 4, numeric=True):
        keep = chunk.contigs == contig
        if not keep.any():
            continue
        starts, ends = chunk.starts[keep], chunk.ends[keep]
        _check_ends(path, contig, ends, length)
        numbers = chunk.fields[0][keep]
        values[_positions(starts, ends)] = np.repeat(numbers.astype(np.float32), ends - starts)
    return values


def read_boundaries(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base hard boundaries of ``contig`` from the BED of ``ldarnet segment``."""
    mask = np.zeros(length, dtype=bool)
    for chunk in _chunks(path, 3):
        keep = chunk.contigs == contig
        if keep.any():
            _check_ends(path, contig, chunk.ends[keep], length)
            mask[_positions(chunk.starts[keep], chunk.ends[keep])] = True
    return mask


def track_contigs(path: str | Path) -> set[str]:
    """Contigs that have at least one line in a bedGraph/BED."""
    return {str(c) for chunk in _chunks(path, 3) for c in set(chunk.contigs.tolist())}


def _chunks(path: str | Path, columns: int, numeric: bool = False) -> Iterator[BedChunk]:
    """The lines of a segmentation file, through the one BED reader (column chunks)."""
    if not Path(path).is_file():
        raise MissingInputError(f"segmentation file {path} does not exist (run ldarnet segment)")
    return iter_bed_chunks(path, columns, what="segmentation file", numeric=numeric)


def _positions(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Every base of the intervals, in line order (later lines win where they overlap)."""
    lengths = ends - starts
    first = np.cumsum(lengths) - lengths
    return np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _check_ends(path, contig: str, ends: np.ndarray, length: int) -> None:
    if len(ends) and int(ends.max()) > length:
        raise TrackError(f"{path}: a {contig} interval ends at {int(ends.max())}, beyond the "
                         f"contig (0-{length}): a segmentation of another genome?")

