"""Turn a downloaded genome FASTA into an indexed, validated file, and read windows from it.

``prepare_genome`` is the one place where an arbitrary FASTA (plain, gzip or bgzip;
UCSC ``hg38.fa.gz`` is plain gzip, which pyfaidx cannot index) becomes the file every
later step reads: uncompressed, every line the same width, with a samtools-compatible
``.fai`` written by us from the layout we just wrote (no second pass over 3.1 GB).
It streams, so memory stays flat whatever the genome size, and refuses inputs that
would otherwise fail much later with an obscure message: an empty file, sequence before
the first header, a nameless header, a record name used twice, an empty record, a
truncated gzip download, or requested contigs that are missing.

Windows (CRLF) line endings are *normalised*, not rejected: a ``\\r`` is never sequence,
stripping it is lossless, and the number removed is reported in the summary
(``carriage_returns``) so that it stays visible.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyfaidx
from tqdm import tqdm

from ldarnet.data.atomic import remove, temp_path
from ldarnet.data.fasta import HEADER, FastaError, FastaStream, names_hint
from ldarnet.data.tokenizer import encode

LINE_WIDTH = 60
_LOWERCASE = bytes(range(ord("a"), ord("z") + 1))
_ACGT = b"ACGTacgt"
_COMPRESSED_SUFFIXES = (".gz", ".bgz", ".bz2", ".xz", ".zst")


class GenomeError(ValueError):
    """A genome FASTA (or its index) that cannot be used; the message says how to fix it."""


def record_bytes(length: int, width: int = LINE_WIDTH) -> int:
    """Bytes a record of ``length`` bases occupies when wrapped at ``width`` (with newlines)."""
    return length + -(-length // width)


class _WrappedWriter:
    """Writes one record's bases wrapped at a fixed line width (what a ``.fai`` requires).

    Whole lines are formed with numpy (reshape to ``(lines, width)``, add a newline
    column) instead of a Python loop over 50 million hg38 lines.
    """

    def __init__(self, fh: BinaryIO, width: int) -> None:
        self.fh = fh
        self.width = width
        self.column = 0

    def write(self, bases: bytes) -> None:
        view = memoryview(bases)
        if self.column:
            take = min(self.width - self.column, len(view))
            self.fh.write(view[:take])
            self.column += take
            view = view[take:]
            if self.column == self.width:
                self.fh.write(b"\n")
                self.column = 0
        full = len(view) // self.width
        if full:
            lines = np.empty((full, self.width + 1), dtype=np.uint8)
            lines[:, : self.width] = np.frombuffer(view[: full * self.width], dtype=np.uint8
                                                   ).reshape(full, self.width)
            lines[:, self.width] = ord("\n")
            self.fh.write(lines.data)
        rest = view[full * self.width :]
        if len(rest):
            self.fh.write(rest)
            self.column = len(rest)

    def finish(self) -> None:
        if self.column:
            self.fh.write(b"\n")
            self.column = 0


def _reorder(tmp: Path, records: list[dict], order: list[str], width: int,
             target: Path) -> tuple[Path, list[dict]]:
    """Copy the records of ``tmp`` into a new temporary file in ``order``.

    Records arrive in the source's order while streaming; ``--contigs chr1 chr2 ...``
    asks for the user's order, which a second (sequential-copy) pass provides.
    """
    by_name = {r["name"]: r for r in records}
    out_tmp = temp_path(target)
    placed = []
    try:
        with open(tmp, "rb") as src, open(out_tmp, "wb") as dst:
            for contig in order:
                rec = by_name[contig]
                dst.write(f">{contig}\n".encode())
                offset = dst.tell()
                src.seek(rec["offset"])
                remaining = record_bytes(rec["length"], width)
                while remaining:
                    block = src.read(min(remaining, 8 << 20))
                    dst.write(block)
                    remaining -= len(block)
                placed.append({**rec, "offset": offset})
    except BaseException:
        remove([out_tmp])
        raise
    tmp.unlink()
    return out_tmp, placed


def prepare_genome(
    src: str | Path,
    out: str | Path,
    contigs: list[str] | None = None,
    line_width: int = LINE_WIDTH,
) -> dict:
    """Write ``src`` as an uncompressed, fixed-width FASTA ``out`` plus ``out.fai``.

    ``contigs=None`` keeps every record in source order; otherwise exactly those records,
    in the given order. Returns a summary: kept records and their lengths, base
    composition (soft-masked / N / other non-ACGT), the source's MD5 and the number of
    carriage returns removed. Nothing is left at ``out`` (or ``out.fai``) on error.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileNotFoundError(f"genome FASTA {src} does not exist")
    if out.name.endswith(_COMPRESSED_SUFFIXES):
        raise GenomeError(f"output {out} must be an uncompressed FASTA (e.g. genome.fa): the "
                          "prepared genome is read by random access")
    if line_width < 1:
        raise GenomeError(f"line_width must be >= 1, got {line_width}")
    wanted: list[str] | None = None
    if contigs is not None:
        wanted = list(contigs)
        dupes = sorted({c for c in wanted if wanted.count(c) > 1})
        if not wanted or dupes:
            raise GenomeError(f"contigs must be a non-empty list without repeats (repeated: "
                              f"{', '.join(dupes) or 'none'})")
    keep_set = None if wanted is None else set(wanted)
    out.parent.mkdir(parents=True, exist_ok=True)
    fai = out.with_name(out.name + ".fai")
    temps: list[Path] = []
    try:
        tmp = temp_path(out)
        temps.append(tmp)
        stream = FastaStream(src)
        records: list[dict] = []  # kept records in written order
        seen: dict[str, int] = {}  # every record name -> header line
        current: dict | None = None
        counts = {"soft_masked_bases": 0, "n_bases": 0, "other_non_acgt_bases": 0}

        def close(rec: dict | None) -> None:
            if rec is None:
                return
            if rec["length"] == 0:
                raise GenomeError(f"{src}:{rec['line']}: record {rec['name']!r} has no "
                                  "sequence; the file is truncated or malformed")
            if rec["keep"]:
                writer.finish()
                records.append(rec)

        with open(tmp, "wb") as fh, tqdm(
            total=stream.size, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"prepare {src.name}", file=sys.stderr, leave=False,
        ) as bar:
            writer = _WrappedWriter(fh, line_width)
            for kind, value, line in stream:
                if kind == HEADER:
                    close(current)
                    assert isinstance(value, str)
                    if value in seen:
                        raise GenomeError(
                            f"{src}:{line}: duplicate record name {value!r} (first at line "
                            f"{seen[value]}); record names must be unique"
                        )
                    seen[value] = line
                    keep = keep_set is None or value in keep_set
                    if keep:
                        fh.write(f">{value}\n".encode())
                    current = {"name": value, "length": 0, "offset": fh.tell(),
                               "line": line, "keep": keep}
                else:
                    assert isinstance(value, bytes) and current is not None
                    current["length"] += len(value)
                    if current["keep"]:
                        writer.write(value)
                        lower = len(value) - len(value.translate(None, _LOWERCASE))
                        n_bases = value.count(b"N") + value.count(b"n")
                        other = len(value.translate(None, _ACGT)) - n_bases
                        counts["soft_masked_bases"] += lower
                        counts["n_bases"] += n_bases
                        counts["other_non_acgt_bases"] += other
                bar.update(stream.bytes_read - bar.n)
            close(current)
            bar.update(stream.size - bar.n)
        if not seen:
            raise GenomeError(f"{src}: no FASTA records found (empty file?); expected "
                              "'>NAME' header lines followed by sequence")
        if wanted is not None:
            missing = [c for c in wanted if c not in seen]
            if missing:
                raise GenomeError(
                    f"{src}: requested contigs not in the file: {', '.join(missing)}; "
                    f"available: {names_hint(list(seen))}"
                )
            if [r["name"] for r in records] != wanted:
                tmp, records = _reorder(tmp, records, wanted, line_width, out)
                temps.append(tmp)
        fai_tmp = temp_path(fai)
        temps.append(fai_tmp)
        with open(fai_tmp, "w") as fh:
            for rec in records:
                fh.write(f"{rec['name']}\t{rec['length']}\t{rec['offset']}\t{line_width}\t"
                         f"{line_width + 1}\n")
        os.replace(tmp, out)
        os.replace(fai_tmp, fai)
    except FastaError as err:
        remove(temps)
        raise GenomeError(str(err)) from err
    except BaseException:
        remove(temps)
        raise
    lengths = {r["name"]: r["length"] for r in records}
    return {
        "source": src.name,
        "source_md5": stream.md5,
        "output": out.name,
        "index": fai.name,
        "records_in_source": len(seen),
        "records": len(records),
        "lengths": lengths,
        "total_bases": sum(lengths.values()),
        **counts,
        "line_width": line_width,
        "carriage_returns": stream.carriage_returns,
        "crlf_normalised": stream.carriage_returns > 0,
    }


def _check_index(path: Path, fai: Path) -> None:
    """Refuse an index that does not describe ``path`` (e.g. a FASTA replaced afterwards).

    The end of the last record according to the ``.fai`` must be the end of the file;
    this costs one stat instead of pyfaidx silently re-indexing (or failing to, in a
    read-only directory) and serving wrong sequence in between.
    """
    end = 0
    try:
        for line in fai.read_text().splitlines():
            _, length, offset, bases, width = line.split("\t")[:5]
            lb, lw = int(bases), int(width)
            n_lines = -(-int(length) // lb) if lb else 0
            end = max(end, int(offset) + int(length) + n_lines * (lw - lb))
    except ValueError as err:
        raise GenomeError(f"{fai} is not a FASTA index ({err}); delete it and run "
                          "`ldarnet prepare-genome` again") from err
    if end != path.stat().st_size:
        raise GenomeError(f"{fai} does not match {path} (index ends at byte {end}, file has "
                          f"{path.stat().st_size}); rerun `ldarnet prepare-genome`")


def open_genome(path: str | Path) -> pyfaidx.Fasta:
    """Open a prepared genome for random access (pyfaidx, ``as_raw=True``, read-only).

    pyfaidx by default builds a missing index and *rebuilds* one older than the FASTA,
    writing next to the file: in a read-only or shared directory that is a surprise
    PermissionError, and a silently re-indexed file hides a changed genome. Here the
    ``.fai`` written by :func:`prepare_genome` must exist and match the file, and
    pyfaidx is told never to write (``build_index=False, rebuild=False``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"genome FASTA {path} does not exist")
    fai = path.with_name(path.name + ".fai")
    if not fai.is_file():
        raise GenomeError(f"{path} has no index {fai.name}; prepare it with "
                          f"`ldarnet prepare-genome --fasta SOURCE --out {path}`")
    if not path.name.endswith(_COMPRESSED_SUFFIXES):
        _check_index(path, fai)
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, build_index=False, rebuild=False,
                             strict_bounds=True, sequence_always_upper=False)
    except (pyfaidx.FastaIndexingError, pyfaidx.IndexNotFoundError, ValueError) as err:
        raise GenomeError(f"{path}: cannot open with its index: {err}") from err


def fetch_tokens(fasta: pyfaidx.Fasta, contig: str, start: int, end: int) -> np.ndarray:
    """Token ids (uint8) of ``contig[start:end]`` (0-based, half-open).

    Soft-masked lowercase bases become their uppercase tokens and IUPAC or any other
    character becomes N (the tokenizer's rules), so callers only ever test for ``N``.
    """
    if contig not in fasta:
        raise GenomeError(f"contig {contig!r} is not in {fasta.filename}; available: "
                          f"{names_hint(list(fasta.keys()))}")
    length = len(fasta[contig])
    if not 0 <= start <= end <= length:
        raise GenomeError(f"interval {contig}:{start}-{end} is outside the contig "
                          f"(0-{length})")
    if start == end:
        return np.empty(0, dtype=np.uint8)
    return encode(fasta[contig][start:end])
