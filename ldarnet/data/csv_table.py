"""Reading input CSV tables with their required columns checked up front."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path


def read_csv_rows(path: str | Path, required: Sequence[str], error: type[Exception],
                  delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV; ``error`` names the file when a required column is absent.

    ``delimiter="\t"`` reads the TSV tables (baselines, results) the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise error(f"{path}: missing column(s) {missing}; needs {tuple(required)}")
        yield from enumerate(reader, start=2)
