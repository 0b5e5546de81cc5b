"""FASTA reading: whole files for small inputs, and a constant-memory stream for genomes.

Plain and gzip/bgzip files are both read (bgzip is a series of gzip members, which
Python's gzip module concatenates). :func:`read_fasta` is for files that fit comfortably
in memory (the demo slice, test fixtures); :class:`FastaStream` parses a whole genome
block by block for ``prepare-genome`` and the multispecies input; random access to a
prepared genome goes through pyfaidx with an index (:mod:`ldarnet.data.genome`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class FastaError(ValueError):
    """A file that is not FASTA."""


def read_fasta(path: str | Path) -> dict[str, str]:
    """Records of a FASTA file as ``{name: sequence}`` (name = header up to whitespace)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FASTA file {path} does not exist")
    with open(path, "rb") as fh:
        is_gzip = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    records: dict[str, list[str]] = {}
    current: list[str] | None = None
    with opener(path, "rt", encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
                if not name:
                    raise FastaError(f"{path}:{lineno}: FASTA header without a name")
                current = records.setdefault(name, [])
            elif current is None:
                raise FastaError(
                    f"{path}:{lineno}: sequence before the first '>' header; is this FASTA?"
                )
            else:
                current.append(line)
    if not records:
        raise FastaError(f"{path}: no FASTA records found")
    return {name: "".join(parts) for name, parts in records.items()}


# --------------------------------------------------------------------------------------
# Streaming reader for files that do not fit in memory (hg38 is 3.1 GB uncompressed)
# --------------------------------------------------------------------------------------

HEADER = "header"
SEQUENCE = "sequence"
BLOCK_BYTES = 8 << 20
# IUPAC letters (either case) plus the gap/stop symbols some FASTA writers emit; anything
# else (digits, control bytes, '>' inside a line) means the file is not sequence at all
_SEQUENCE_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_SEQUENCE_BYTES += b"-*."
_LINE_BYTES = b"\r\n \t"


class _HashingReader(io.RawIOBase):
    """A read-only file wrapper that MD5-hashes every byte read and counts them.

    Hashing while parsing gives the checksum of a multi-gigabyte source in the same
    single pass (a second read of hg38 would double the I/O of ``prepare-genome``).
    """

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__()
        self._fh = fh
        self.digest = hashlib.md5(usedforsecurity=False)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._fh.readinto(buffer)
        if n:
            self.digest.update(memoryview(buffer)[:n])
            self.bytes_read += n
        return n or 0


class FastaStream:
    """Iterate a FASTA file (plain, gzip or bgzip) as a stream of events, in constant memory.

    Yields ``(HEADER, name, line)`` for every ``>`` line and ``(SEQUENCE, bases, line)``
    for runs of sequence, where ``bases`` are the raw bytes with line breaks, carriage
    returns, spaces and tabs removed (case and IUPAC codes kept) and ``line`` is the
    1-based line where the event starts. Work is done on 8 MB blocks with bytes methods
    that run in C, so whole genomes stream at disk/decompression speed.

    Checked on the way (each a :class:`FastaError` naming the file and line): sequence
    before the first header, a header without a name, a ``>`` inside a line, a byte that
    is not a sequence letter, a truncated or corrupt gzip stream. After iteration,
    ``md5`` is the MD5 of the file's bytes as stored (compressed if it is compressed),
    ``carriage_returns`` counts the ``\\r`` removed (Windows line endings) and
    ``bytes_read`` the stored bytes consumed (for progress bars).
    """

    def __init__(self, path: str | Path, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"FASTA file {self.path} does not exist")
        self.block_bytes = block_bytes
        self.size = self.path.stat().st_size
        self.carriage_returns = 0
        self.bytes_read = 0
        self.md5: str | None = None
        with open(self.path, "rb") as fh:
            self.compressed = fh.read(2) == b"\x1f\x8b"

    def _error(self, line: int, what: str) -> FastaError:
        return FastaError(f"{self.path}:{line}: {what}")

    def _header_name(self, raw: bytes, line: int) -> str:
        self.carriage_returns += raw.count(b"\r")
        fields = raw.decode("latin-1").split()
        if not fields:
            raise self._error(line, "FASTA header '>' without a record name; every record "
                              "needs '>NAME' on its first line")
        return fields[0]

    def __iter__(self) -> Iterator[tuple[str, str | bytes, int]]:
        with open(self.path, "rb") as raw_fh:
            hashing = _HashingReader(raw_fh)
            stream: BinaryIO = (
                gzip.GzipFile(fileobj=hashing, mode="rb") if self.compressed
                else io.BufferedReader(hashing)
            )
            try:
                yield from self._events(stream, hashing)
                while hashing.read(1 << 20):  # hash any bytes after the last gzip member
                    pass
            except (EOFError, zlib.error, gzip.BadGzipFile) as err:
                raise FastaError(
                    f"{self.path}: the gzip stream is truncated or corrupt ({err}); the "
                    "download was probably interrupted: delete the file and download it "
                    "again (`ldarnet download` resumes and verifies the md5)"
                ) from err
            self.md5 = hashing.digest.hexdigest()

    def _events(
        self, stream: BinaryIO, hashing: _HashingReader
    ) -> Iterator[tuple[str, str | bytes, int]]:
        line = 1  # line number at ``pos`` in the current block
        at_line_start = True
        header: bytearray | None = None  # collecting a header line
        header_line = 0
        seen_header = False
        while block := stream.read(self.block_bytes):
            self.bytes_read = hashing.bytes_read
            pos, size = 0, len(block)
            while pos < size:
                if header is not None:
                    newline = block.find(b"\n", pos)
                    if newline < 0:
                        header += block[pos:]
                        pos = size
                        continue
                    header += block[pos:newline]
                    pos = newline + 1
                    line += 1
                    at_line_start = True
                    yield HEADER, self._header_name(bytes(header), header_line), header_line
                    header = None
                    continue
                gt = block.find(b">", pos)
                end = size if gt < 0 else gt
                if end > pos:
                    segment = block[pos:end]
                    bases = segment.translate(None, _LINE_BYTES)
                    if bases:
                        if not seen_header:
                            first = len(segment) - len(segment.lstrip())
                            raise self._error(
                                line + segment.count(b"\n", 0, first),
                                "sequence before the first '>' header; is this a FASTA file?",
                            )
                        bad = bases.translate(None, _SEQUENCE_BYTES)
                        if bad:
                            at = segment.find(bad[:1])
                            raise self._error(
                                line + segment.count(b"\n", 0, at),
                                f"unexpected character {bad[:1]!r} in the sequence; FASTA "
                                "sequence lines may only hold letters and '-', '*', '.'",
                            )
                        yield SEQUENCE, bases, line
                    self.carriage_returns += segment.count(b"\r")
                    line += segment.count(b"\n")
                    at_line_start = segment.endswith(b"\n")
                if gt >= 0:
                    if not at_line_start:
                        raise self._error(line, "'>' in the middle of a line; FASTA headers "
                                          "must start a line")
                    header = bytearray()
                    header_line = line
                    seen_header = True
                    pos = gt + 1
                else:
                    pos = size
        if header is not None:  # a header on the last line, without a newline
            yield HEADER, self._header_name(bytes(header), header_line), header_line
        self.bytes_read = hashing.bytes_read


def names_hint(names: list[str], limit: int = 12) -> str:
    """A readable, bounded list of record names for error messages (hg38 has 455)."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
