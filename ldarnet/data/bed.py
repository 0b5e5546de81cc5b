"""The one BED reader: regions to segment, genome splits, and the tracks ``segment`` writes.

Policy (docs/inputs.md), the same for every BED input:

* plain or gzip text (by magic bytes), UTF-8; blank lines and ``#``, ``track`` and
  ``browser`` lines are skipped;
* columns are separated by **tabs** (a line that only has spaces is refused with that
  hint: bedtools and the UCSC tools read tabs, and names may contain spaces);
* ``chrom start end`` come first, 0-based and half-open: ``start`` and ``end`` are
  non-negative decimal integers with ``start < end`` (an empty interval is refused,
  it almost always means 1-based coordinates or swapped columns);
* when the caller knows the sequence (``lengths``), the contig must exist and the
  interval must end within it;
* a Windows line ending (``\\r``) is removed, with a note on stderr.

Every problem is one :class:`BedError` naming ``file:line``. What a consumer adds on
top (overlaps, a split label in column 4) it checks itself, with the same ``file:line``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ldarnet.data.csv_table import open_table
from ldarnet.data.fasta import names_hint
from ldarnet.errors import InputError, MissingInputError, note

SKIP_PREFIXES = ("#", "track", "browser")


class BedError(InputError):
    """A BED line that breaks the policy above (the message names ``file:line``)."""


@dataclass(frozen=True)
class BedRecord:
    """One BED line: the interval, every column as written, and its line number."""

    contig: str
    start: int
    end: int
    fields: tuple[str, ...]
    line: int


def _integer(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def iter_bed(path: str | Path, min_columns: int = 3, lengths: dict[str, int] | None = None,
             what: str = "BED file", fasta: str | Path | None = None) -> Iterator[BedRecord]:
    """The records of a BED file, each checked by the module's policy, in file order.

    ``min_columns`` is the number of columns the consumer needs (its message names them);
    ``lengths`` (contig -> length) checks contigs and ends against the sequence, which
    ``fasta`` names in messages.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{what} {path} does not exist")
    source = fasta or "the FASTA"
    carriage_returns = 0
    try:
        with open_table(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                text = raw.rstrip("\n")
                if text.endswith("\r"):
                    text = text[:-1]
                    carriage_returns += 1
                if not text.strip() or text.startswith(SKIP_PREFIXES):
                    continue
                where = f"{path}:{lineno}"
                fields = tuple(text.split("\t"))
                if len(fields) < min_columns:
                    hint = (" (columns must be separated by tabs, not spaces)"
                            if len(text.split()) >= min_columns else "")
                    raise BedError(f"{where}: expected {min_columns} tab-separated columns "
                                   f"'chrom start end{' ...' if min_columns > 3 else ''}', "
                                   f"found {len(fields)}{hint}: {text!r}")
                contig = fields[0]
                start, end = _integer(fields[1]), _integer(fields[2])
                if not contig or contig != contig.strip():
                    raise BedError(f"{where}: contig name {contig!r} is empty or has spaces "
                                   "around it")
                if start is None or end is None:
                    raise BedError(f"{where}: start and end must be non-negative integers "
                                   f"(0-based, half-open), got {fields[1]!r} and {fields[2]!r}")
                if start >= end:
                    raise BedError(f"{where}: start {start} >= end {end}; an interval must be "
                                   "non-empty (BED is 0-based, half-open: end is exclusive)")
                if lengths is not None:
                    if contig not in lengths:
                        raise BedError(f"{where}: contig {contig!r} is not in {source}; known "
                                       f"contigs: {names_hint(list(lengths))}")
                    if end > lengths[contig]:
                        raise BedError(
                            f"{where}: interval {contig}:{start}-{end} ends beyond the contig "
                            f"({contig} has {lengths[contig]:,} bp: 0-{lengths[contig]}); is "
                            "the BED file for another assembly?")
                yield BedRecord(contig, start, end, fields, lineno)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise BedError(f"{path} is not a readable text BED file ({err}); expected lines "
                       "'chrom<TAB>start<TAB>end ...'") from None
    if carriage_returns:
        note(f"{path}: Windows line endings: {carriage_returns:,} carriage return(s) removed")


def read_bed(path: str | Path, min_columns: int = 3, lengths: dict[str, int] | None = None,
             what: str = "BED file", fasta: str | Path | None = None) -> list[BedRecord]:
    """All records of :func:`iter_bed`; a file without any interval is a :class:`BedError`."""
    records = list(iter_bed(path, min_columns, lengths, what, fasta))
    if not records:
        raise BedError(f"{what} {path} has no intervals (empty file?); expected lines "
                       "'chrom<TAB>start<TAB>end ...'")
    return records
