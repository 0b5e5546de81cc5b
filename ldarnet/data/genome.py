"""Turn a downloaded genome FASTA into an indexed, validated file, and read windows from it.

``prepare_genome`` is the one place where an arbitrary FASTA (plain, gzip or bgzip;
UCSC ``hg38.fa.gz`` is plain gzip, which pyfaidx cannot index) becomes the file every
later step reads: uncompressed, every line the same width, with a samtools-compatible
``.fai`` written by us from the layout we just wrote (no second pass over 3.1 GB).
It streams, so memory stays flat whatever the genome size, and refuses inputs that
would otherwise fail much later with an obscure message: everything the FASTA policy of
:mod:`ldarnet.data.fasta` refuses (an empty file, sequence before the first header, a
nameless header, a record name used twice, an empty record, a truncated gzip download,
a character that is not a nucleotide code), and requested contigs that are missing.

Windows (CRLF) line endings are *normalised*, not rejected: a ``\\r`` is never sequence,
stripping it is lossless, and the number removed is reported in the summary
(``carriage_returns``) so that it stays visible.

Random access to the prepared genome is :func:`ldarnet.data.fasta.open_genome`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from ldarnet.data.fasta import HEADER, Fasta, FastaError, FastaStream, names_hint, open_genome
from ldarnet.data.tokenizer import encode
from ldarnet.foundation.atomic import remove, temp_path
from ldarnet.foundation.errors import InputError, MissingInputError

LINE_WIDTH = 60
_LOWERCASE = bytes(range(ord("a"), ord("z") + 1))
_ACGT = b"ACGTacgt"
_COMPRESSED_SUFFIXES = (".gz", ".bgz", ".bz2", ".xz", ".zst")
__all__ = ["GenomeError", "fetch_tokens", "open_genome", "prepare_genome", "record_bytes"]


class GenomeError(InputError):
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
        raise MissingInputError(f"genome FASTA {src} does not exist")
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
            if rec is not None and rec["keep"]:
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


def fetch_tokens(fasta: Fasta, contig: str, start: int, end: int) -> np.ndarray:
    """Token ids (uint8) of ``contig[start:end]`` (0-based, half-open).

    Soft-masked lowercase bases become their uppercase tokens and IUPAC or any other
    character becomes N (the tokenizer's rules), so callers only ever test for ``N``.
    An unknown contig or an interval off its end is a :class:`FastaError`.
    """
    return encode(fasta.fetch(contig, start, end))
