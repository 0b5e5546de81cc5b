"""The one reader of CSV/TSV tables: task files, source tables, exon tables, result tables.

Policy (docs/inputs.md): plain or gzip text (by magic bytes, not by name), UTF-8 (a
byte-order mark is ignored), a header row naming the columns (surrounding spaces
ignored); the columns a reader needs must be present (others are ignored); blank lines
are skipped; a row with fewer fields than the header, undecodable bytes, a truncated
gzip stream or a malformed quoted field is one error naming ``file:line``.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from ldarnet.foundation.errors import MissingInputError


def open_table(path: str | Path) -> io.TextIOBase:
    """Open a plain or gzip-compressed text table (decided by its magic bytes, not its name)."""
    path = Path(path)
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.open(path, "rt", newline="", encoding="utf-8")  # type: ignore[return-value]
    return open(path, newline="", encoding="utf-8")  # type: ignore[return-value]


def read_csv_rows(path: str | Path, required: Sequence[str], error: type[Exception],
                  delimiter: str = ",", what: str = "table"
                  ) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a table; ``error`` names ``file:line`` for every problem.

    ``delimiter="\\t"`` reads the TSV tables (baselines, results) the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{what} {path} does not exist")
    try:
        with open_table(path) as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise error(f"{path}:1: empty file; expected a header row with "
                            f"{delimiter.join(required)}")
            names = [name.strip().lstrip("\ufeff").strip() for name in header]
            missing = [c for c in required if c not in names]
            if missing:
                raise error(f"{path}:1: missing column(s) {missing} (header {names}); needs "
                            f"{tuple(required)}")
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != len(names):
                    raise error(f"{path}:{reader.line_num}: {len(fields)} field(s), expected "
                                f"{len(names)} ({delimiter.join(names)}); quote fields that "
                                "hold the delimiter")
                yield reader.line_num, dict(zip(names, fields, strict=True))
    except (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise error(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file "
                    f"({err}); download or write it again") from None


def read_header(path: str | Path, delimiter: str = ",") -> list[str]:
    """The column names of a table (empty for an empty file), read as :func:`read_csv_rows` does."""
    try:
        with open_table(path) as fh:
            header = next(csv.reader(fh, delimiter=delimiter), [])
    except (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error):
        return []  # the full read reports it, with the line
    return [name.strip().lstrip("\ufeff").strip() for name in header]
