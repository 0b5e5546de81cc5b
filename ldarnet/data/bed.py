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

Two ways to read, one policy: :func:`iter_bed` gives records line by line (inputs a user
writes: regions, splits); :func:`iter_bed_chunks` gives columns as numpy arrays, millions
of lines at a time, for the tracks ``segment`` writes (one line per base run: hundreds of
millions at paper scale). The chunked reader parses with pandas' C parser and checks the
policy vectorised; a chunk that does not pass is re-read line by line, so its error is
exactly the one :func:`iter_bed` gives.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldarnet.data.fasta import names_hint
from ldarnet.foundation.csv_table import open_table
from ldarnet.foundation.errors import InputError, MissingInputError, note

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


@dataclass(frozen=True)
class BedChunk:
    """Consecutive BED lines as columns: contigs, starts, ends and the further ``fields``."""

    contigs: np.ndarray  # object (str)
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    fields: list[np.ndarray]  # columns 4.. as float64 (numeric=True) or str (object)


CHUNK_BYTES = 32 << 20


def iter_bed_chunks(path: str | Path, columns: int = 3, what: str = "BED file",
                    numeric: bool = False, chunk_bytes: int = CHUNK_BYTES
                    ) -> Iterator[BedChunk]:
    """The records of a BED file as column chunks, checked by the same policy as iter_bed.

    Exactly ``columns`` columns are returned (further ones are ignored, as by
    :func:`iter_bed`); ``numeric=True`` converts the columns after ``end`` to float64
    (bedGraph values; one that is not a number is an error naming its line). A block of
    lines is parsed by pandas' C parser only after a regular expression (run in C) has
    confirmed that every line is a plain BED line with decimal coordinates; anything else
    (header lines, Windows line endings, a malformed line) is read with :func:`iter_bed`,
    which accepts what the policy accepts and names the line of anything it refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{what} {path} does not exist")
    done = 0  # records given by the fast path (whole blocks of plain lines)
    try:
        for block in _blocks(path, chunk_bytes):
            chunk = _parse_block(block, columns, numeric)
            if chunk is None:
                break
            yield chunk
            done += len(chunk.starts)
        else:
            return
    except (UnicodeDecodeError, EOFError, OSError, zlib.error):
        pass
    yield from _slow_chunks(path, columns, what, numeric, skip=done)


def _blocks(path: Path, size: int) -> Iterator[bytes]:
    """The file's bytes (decompressed) in blocks that end at a line end."""
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as fh:
        rest = b""
        while data := fh.read(size):
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut]
        if rest:
            yield rest  # no newline at the end: the strict pattern sends it to iter_bed


def _plain_lines(block: bytes, columns: int) -> bool:
    """Whether every line of ``block`` is ``contig<TAB>digits<TAB>digits[<TAB>...]`` + newline.

    Vectorised over the lines: newline and tab positions locate each line's start and
    end fields, which must be non-empty runs of ASCII digits.
    """
    if not block.endswith(b"\n") or b"\r" in block:
        return False
    buf = np.frombuffer(block, dtype=np.uint8)
    ends_of_lines = np.flatnonzero(buf == 10)
    line_starts = np.concatenate(([0], ends_of_lines[:-1] + 1))
    if (ends_of_lines == line_starts).any() or (buf[line_starts] == ord("#")).any():
        return False  # blank or comment lines: the line reader skips them
    tabs = np.flatnonzero(buf == 9)
    first = np.searchsorted(tabs, line_starts)
    if len(tabs) == 0 or (first + 1 >= len(tabs)).any():
        return False
    t1, t2 = tabs[first], tabs[first + 1]
    if (t1 == line_starts).any() or (t2 >= ends_of_lines).any():
        return False  # an empty contig, or fewer than 3 columns
    after = np.minimum(first + 2, len(tabs) - 1)
    has_more = (first + 2 < len(tabs)) & (tabs[after] < ends_of_lines)
    if columns > 3 and not has_more.all():
        return False
    t3 = np.where(has_more, tabs[after], ends_of_lines)
    digit = (buf >= ord("0")) & (buf <= ord("9"))
    for lo, hi in ((t1 + 1, t2), (t2 + 1, t3)):
        width = hi - lo
        if (width < 1).any():
            return False
        for k in range(int(width.max())):
            inside = k < width
            if not digit[(lo + k)[inside]].all():
                return False
    return True


def _parse_block(block: bytes, columns: int, numeric: bool) -> BedChunk | None:
    """The block's lines as arrays, or None when any line needs the line-by-line reader."""
    import pandas as pd

    if not _plain_lines(block, columns):
        return None
    dtypes = {0: "category", 1: "int64", 2: "int64"}
    dtypes.update({i: ("float64" if numeric else object) for i in range(3, columns)})
    try:
        frame = pd.read_csv(io.BytesIO(block), sep="\t", header=None, usecols=range(columns),
                            dtype=dtypes, na_filter=False, engine="c", quoting=3)
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None  # a value that is not a number, a ragged file, ...
    starts, ends = frame[1].to_numpy(np.int64), frame[2].to_numpy(np.int64)
    if (starts >= ends).any():
        return None
    names = [str(c) for c in frame[0].cat.categories]
    if any(c != c.strip() or c.startswith(SKIP_PREFIXES) for c in names):
        return None
    contigs = np.asarray(names, dtype=object)[frame[0].cat.codes.to_numpy()]
    fields = [frame[i].to_numpy(np.float64 if numeric else object) for i in range(3, columns)]
    return BedChunk(contigs, starts, ends, fields)


def _slow_chunks(path: Path, columns: int, what: str, numeric: bool, skip: int = 0,
                 rows: int = 1 << 20) -> Iterator[BedChunk]:
    """:func:`iter_bed` in column chunks after the first ``skip`` records (any problem
    raises its ``file:line`` error)."""
    batch: list[BedRecord] = []

    def field(record: BedRecord, i: int) -> float | str:
        if not numeric:
            return record.fields[i]
        try:
            return float(record.fields[i])
        except ValueError:
            raise BedError(f"{path}:{record.line}: column {i + 1} {record.fields[i]!r} is not "
                           "a number") from None

    def emit() -> BedChunk:
        return BedChunk(np.array([r.contig for r in batch], dtype=object),
                        np.array([r.start for r in batch], dtype=np.int64),
                        np.array([r.end for r in batch], dtype=np.int64),
                        [np.array([field(r, i) for r in batch],
                                  dtype=np.float64 if numeric else object)
                         for i in range(3, columns)])

    for index, record in enumerate(iter_bed(path, columns, what=what)):
        if index < skip:
            continue
        batch.append(record)
        if len(batch) == rows:
            yield emit()
            batch = []
    if batch:
        yield emit()
