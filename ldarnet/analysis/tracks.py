"""Read the outputs of ``ldarnet segment`` back into per-base arrays of one contig.

Analyses work on arrays indexed by genome position; positions not covered by the
bedGraph are NaN (probability) and False (boundary), so that an analysis can skip
anchors whose window is not fully segmented.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TrackError(ValueError):
    """A bedGraph/BED that cannot be read as a segmentation."""


def read_bedgraph(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base values of ``contig`` (float32, NaN where the file has no value)."""
    values = np.full(length, np.nan, dtype=np.float32)
    for line_no, fields in _lines(path):
        if fields[0] != contig:
            continue
        if len(fields) < 4:
            raise TrackError(f"{path}:{line_no}: bedGraph lines have 4 columns")
        start, end = _interval(path, line_no, fields, length)
        try:
            values[start:end] = float(fields[3])
        except ValueError:
            raise TrackError(f"{path}:{line_no}: value {fields[3]!r} is not a number") from None
    return values


def read_boundaries(path: str | Path, contig: str, length: int) -> np.ndarray:
    """Per-base hard boundaries of ``contig`` from the BED of ``ldarnet segment``."""
    mask = np.zeros(length, dtype=bool)
    for line_no, fields in _lines(path):
        if fields[0] == contig:
            start, end = _interval(path, line_no, fields, length)
            mask[start:end] = True
    return mask


def track_contigs(path: str | Path) -> set[str]:
    """Contigs that have at least one line in a bedGraph/BED."""
    return {fields[0] for _, fields in _lines(path)}


def _lines(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"segmentation file {path} does not exist (run ldarnet segment)")
    with open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip() and not line.startswith(("#", "track", "browser")):
                yield line_no, line.rstrip("\n").split("\t")


def _interval(path, line_no: int, fields: list[str], length: int) -> tuple[int, int]:
    try:
        start, end = int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        raise TrackError(f"{path}:{line_no}: start and end must be integers") from None
    if not 0 <= start < end <= length:
        raise TrackError(f"{path}:{line_no}: interval {start}-{end} outside 0-{length}")
    return start, end
