"""The one FASTA reader: every command and rule reads FASTA through this module.

One policy for every FASTA input (documented for users in docs/inputs.md):

* **Containers**: plain, gzip and bgzip (a series of gzip members), recognised by their
  magic bytes, not their names. A truncated or corrupt gzip stream is refused.
* **Records**: ``>NAME [description]``; the name is the header up to the first
  whitespace. Refused: sequence before the first header, a header without a name, a
  ``>`` inside a line, a record without sequence (a truncated file or a lost line), a
  file without records. A name used twice is refused wherever records are looked up by
  name (genomes, references, segmentation inputs, embeddings); sequence *collections*
  (task classes, multispecies windows) use names as labels only and accept repeats,
  with a note.
* **Letters**: the IUPAC nucleotide codes ``A C G T N R Y S W K M B D H V`` in either
  case. Case is preserved (lower case = soft-masked repeats); every consumer treats
  lower case like upper case and the tokenizer maps the ambiguity codes to N. Anything
  else (RNA ``U``, alignment gaps ``-`` and ``.``, ``*``, ``X``, digits, control bytes)
  is refused with its file and line, because no single reading of it is right.
* **Normalised, with a note on stderr**: Windows line endings (``\\r``) and spaces or
  tabs inside sequence lines are removed; neither can be a base.

Access: :class:`FastaStream` parses any size in constant memory (``prepare-genome``,
multispecies windows, embeddings); :func:`iter_records` / :func:`read_fasta` give whole
records; :func:`open_fasta` gives random access, through the ``.fai`` index when one is
beside the file and in memory otherwise, up to one size threshold
(:data:`IN_MEMORY_BYTES`) beyond which an index is required (``ldarnet prepare-genome``
writes one). :func:`open_genome` opens a prepared genome, whose index must exist and
match the file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ldarnet.foundation.errors import InputError, MissingInputError, note


class FastaError(InputError):
    """A FASTA input that breaks the policy above; the message names the file and line."""


HEADER = "header"
SEQUENCE = "sequence"
BLOCK_BYTES = 8 << 20
# A FASTA without a .fai beside it is read whole into memory up to this size (as stored,
# so compressed files count compressed); beyond it, an index is required.
IN_MEMORY_BYTES = 256 << 20
IUPAC_DNA = "ACGTNRYSWKMBDHV"
_SEQUENCE_BYTES = (IUPAC_DNA + IUPAC_DNA.lower()).encode()
_LINE_BYTES = b"\r\n \t"
_COMPRESSED_SUFFIXES = (".gz", ".bgz", ".bz2", ".xz", ".zst")
_HINTS = {
    b"U": "U is RNA: convert U to T",
    b"u": "u is RNA: convert u to t",
    b"-": "'-' is an alignment gap: remove gaps (or write N for unknown bases)",
    b".": "'.' is an alignment gap: remove gaps (or write N for unknown bases)",
    b"*": "'*' is not a base (a stop in protein FASTA?)",
    b"X": "X is not a nucleotide code: write N for masked or unknown bases",
    b"x": "x is not a nucleotide code: write n for masked or unknown bases",
}


def _hint(char: bytes) -> str:
    if char in _HINTS:
        return _HINTS[char]
    if char.isalpha():
        return "a letter outside the IUPAC nucleotide codes: is this a protein FASTA?"
    return "not a sequence letter: is this a FASTA file?"


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


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class FastaStream:
    """Iterate a FASTA file (plain, gzip or bgzip) as a stream of events, in constant memory.

    Yields ``(HEADER, name, line)`` for every ``>`` line and ``(SEQUENCE, bases, line)``
    for runs of sequence, where ``bases`` are the raw bytes with line breaks, carriage
    returns, spaces and tabs removed (case and IUPAC codes kept) and ``line`` is the
    1-based line where the event starts. Work is done on 8 MB blocks with bytes methods
    that run in C, so whole genomes stream at disk/decompression speed.

    Every breach of the module's policy is a :class:`FastaError` naming the file and
    line; ``unique_names=False`` accepts repeated names (sequence collections). After
    iteration, ``md5`` is the MD5 of the file's bytes as stored (compressed if it is
    compressed), ``carriage_returns`` counts the ``\\r`` removed (Windows line endings),
    ``blanks`` the spaces and tabs removed from sequence lines, ``repeated_names`` the
    headers whose name was seen before, ``records`` the records and ``bytes_read`` the
    stored bytes consumed (for progress bars); the normalisations are reported with
    :func:`ldarnet.foundation.errors.note`.
    """

    def __init__(self, path: str | Path, block_bytes: int = BLOCK_BYTES,
                 unique_names: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingInputError(f"FASTA file {self.path} does not exist")
        self.block_bytes = block_bytes
        self.unique_names = unique_names
        self.size = self.path.stat().st_size
        self.carriage_returns = 0
        self.blanks = 0
        self.repeated_names = 0
        self.records = 0
        self.bytes_read = 0
        self.md5: str | None = None
        self.compressed = _is_gzip(self.path)

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
                yield from self._records(self._events(stream, hashing))
                while hashing.read(1 << 20):  # hash any bytes after the last gzip member
                    pass
            except (EOFError, zlib.error, gzip.BadGzipFile) as err:
                raise FastaError(
                    f"{self.path}: the gzip stream is truncated or corrupt ({err}); the "
                    "download was probably interrupted: delete the file and download it "
                    "again (`ldarnet download` resumes and verifies the md5)"
                ) from err
            self.md5 = hashing.digest.hexdigest()
        self._notes()

    def _notes(self) -> None:
        if self.carriage_returns:
            note(f"{self.path}: Windows line endings: {self.carriage_returns:,} carriage "
                 "return(s) removed")
        if self.blanks:
            note(f"{self.path}: {self.blanks:,} space(s)/tab(s) inside sequence lines removed")
        if self.repeated_names:
            note(f"{self.path}: {self.repeated_names:,} record name(s) repeat an earlier one "
                 "(accepted: names are labels in a sequence collection)")

    def _records(self, events: Iterator[tuple[str, str | bytes, int]]
                 ) -> Iterator[tuple[str, str | bytes, int]]:
        """Record-level checks on the event stream: names used twice, empty records."""
        seen: dict[str, int] = {}
        name, line, length = "", 0, -1
        for event in events:
            kind, value, at = event
            if kind == HEADER:
                if length == 0:
                    raise self._error(line, f"record {name!r} has no sequence; the file is "
                                      "truncated or malformed")
                assert isinstance(value, str)
                if value in seen:
                    if self.unique_names:
                        raise self._error(at, f"duplicate record name {value!r} (first at line "
                                          f"{seen[value]}); record names must be unique")
                    self.repeated_names += 1
                else:
                    seen[value] = at
                name, line, length = value, at, 0
                self.records += 1
            else:
                length += len(value)
            yield event
        if length == 0:
            raise self._error(line, f"record {name!r} has no sequence; the file is truncated "
                              "or malformed")
        if not self.records:
            raise FastaError(f"{self.path}: no FASTA records found (empty file?); expected "
                             "'>NAME' header lines followed by sequence lines")

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
                            char = bad[:1]
                            at = segment.find(char)
                            raise self._error(
                                line + segment.count(b"\n", 0, at),
                                f"unexpected character {char!r} in the sequence ({_hint(char)}); "
                                f"FASTA sequence lines may hold the IUPAC nucleotide codes "
                                f"{IUPAC_DNA} in either case",
                            )
                        yield SEQUENCE, bases, line
                    self.carriage_returns += segment.count(b"\r")
                    self.blanks += segment.count(b" ") + segment.count(b"\t")
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


# --------------------------------------------------------------------------------------
# whole records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastaRecord:
    """One record: its name, its sequence (case preserved) and the line of its header."""

    name: str
    sequence: str
    line: int


def iter_records(path: str | Path, unique_names: bool = True) -> Iterator[FastaRecord]:
    """Every record of a FASTA file, in file order, checked by the module's policy.

    ``unique_names=False`` is for sequence collections, where a name is only a label.
    """
    name: str | None = None
    line = 0
    parts: list[bytes] = []
    for kind, value, at in FastaStream(path, unique_names=unique_names):
        if kind == HEADER:
            if name is not None:
                yield FastaRecord(name, b"".join(parts).decode("latin-1"), line)
            name, line, parts = str(value), at, []
        else:
            parts.append(bytes(value))  # type: ignore[arg-type]
    if name is not None:
        yield FastaRecord(name, b"".join(parts).decode("latin-1"), line)


def _check_in_memory_size(path: Path) -> None:
    size = path.stat().st_size
    if size > IN_MEMORY_BYTES:
        raise FastaError(
            f"FASTA {path} ({size / 2**20:,.0f} MiB) has no .fai index and is too large to "
            f"read whole (limit {IN_MEMORY_BYTES >> 20} MiB); index it with `ldarnet "
            f"prepare-genome --fasta {path} --out genome.fa` and pass genome.fa"
        )


def read_fasta(path: str | Path) -> dict[str, str]:
    """Records of a FASTA file as ``{name: sequence}``, read whole (up to the size limit)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"FASTA file {path} does not exist")
    _check_in_memory_size(path)
    return {record.name: record.sequence for record in iter_records(path)}


# --------------------------------------------------------------------------------------
# random access
# --------------------------------------------------------------------------------------


class Fasta:
    """Random access to the records of a FASTA file: names, lengths and sub-sequences.

    Backed by the ``.fai`` index (pyfaidx, read-only) or by the records in memory; both
    give the same strings (case preserved). Build it with :func:`open_fasta` or
    :func:`open_genome`.
    """

    def __init__(self, path: Path, lengths: dict[str, int], records: dict[str, str] | None,
                 indexed: Any = None) -> None:
        self.path = path
        self.lengths = lengths
        self._records = records
        self._indexed = indexed

    @property
    def is_indexed(self) -> bool:
        """True when sequences come from the file through its ``.fai`` index."""
        return self._indexed is not None

    def names(self) -> list[str]:
        """Record names in file (index) order."""
        return list(self.lengths)

    def __contains__(self, name: object) -> bool:
        return name in self.lengths

    def length(self, name: str) -> int:
        """Length of record ``name`` in bases."""
        self._check_name(name)
        return self.lengths[name]

    def _check_name(self, name: str) -> None:
        if name not in self.lengths:
            raise FastaError(f"contig {name!r} is not in {self.path}; available: "
                             f"{names_hint(self.names())}")

    def fetch(self, name: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` (0-based, half-open) of record ``name``, case preserved."""
        self._check_name(name)
        length = self.lengths[name]
        if not 0 <= start <= end <= length:
            raise FastaError(f"interval {name}:{start}-{end} is outside the contig "
                             f"(0-{length}) of {self.path}")
        if start == end:
            return ""
        if self._records is not None:
            return self._records[name][start:end]
        return str(self._indexed[name][start:end])

    def close(self) -> None:
        """Release the file handle of an indexed FASTA (in-memory records stay)."""
        if self._indexed is not None:
            self._indexed.close()


def _check_index(path: Path, fai: Path) -> dict[str, int]:
    """Record lengths of a ``.fai``; refuse one that does not describe ``path``.

    The end of the last record according to the ``.fai`` must be the end of the file;
    this costs one stat instead of pyfaidx silently re-indexing (or failing to, in a
    read-only directory) and serving wrong sequence in between.
    """
    end = 0
    lengths: dict[str, int] = {}
    try:
        for line in fai.read_text().splitlines():
            name, length, offset, bases, width = line.split("\t")[:5]
            lb, lw = int(bases), int(width)
            n_lines = -(-int(length) // lb) if lb else 0
            end = max(end, int(offset) + int(length) + n_lines * (lw - lb))
            lengths[name] = int(length)
    except (ValueError, UnicodeDecodeError) as err:
        raise FastaError(f"{fai} is not a FASTA index ({err}); delete it and run "
                         "`ldarnet prepare-genome` again") from None
    if not path.name.endswith(_COMPRESSED_SUFFIXES) and end != path.stat().st_size:
        raise FastaError(f"{fai} does not match {path} (index ends at byte {end}, file has "
                         f"{path.stat().st_size}); rerun `ldarnet prepare-genome`")
    if not lengths:
        raise FastaError(f"{fai} is empty; delete it and run `ldarnet prepare-genome` again")
    return lengths


def _open_indexed(path: Path, fai: Path) -> Fasta:
    """pyfaidx on an existing, matching index; pyfaidx is never allowed to write one.

    pyfaidx by default builds a missing index and *rebuilds* one older than the FASTA,
    writing next to the file: in a read-only or shared directory that is a surprise
    PermissionError, and a silently re-indexed file hides a changed genome.
    """
    import pyfaidx

    lengths = _check_index(path, fai)
    try:
        indexed = pyfaidx.Fasta(str(path), as_raw=True, build_index=False, rebuild=False,
                                strict_bounds=True, sequence_always_upper=False)
    except (pyfaidx.FastaIndexingError, pyfaidx.IndexNotFoundError,
            pyfaidx.UnsupportedCompressionFormat, ValueError, OSError) as err:
        raise FastaError(f"{path}: cannot open with its index {fai.name}: {err}; give an "
                         "uncompressed or bgzip FASTA whose index matches it (`ldarnet "
                         "prepare-genome` writes both)") from None
    return Fasta(path, lengths, None, indexed)


def open_fasta(path: str | Path) -> Fasta:
    """Random access to any FASTA input: indexed when a ``.fai`` is beside it, else in memory.

    A file without an index is read whole with the module's checks, up to
    :data:`IN_MEMORY_BYTES`; a larger one is refused with the command that indexes it.
    No index is ever written next to the user's file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"FASTA file {path} does not exist")
    fai = path.with_name(path.name + ".fai")
    if fai.is_file():
        return _open_indexed(path, fai)
    records = read_fasta(path)
    return Fasta(path, {name: len(seq) for name, seq in records.items()}, records)


def open_genome(path: str | Path) -> Fasta:
    """A genome written by ``ldarnet prepare-genome``: its ``.fai`` must exist and match it."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"genome FASTA {path} does not exist")
    fai = path.with_name(path.name + ".fai")
    if not fai.is_file():
        raise FastaError(f"{path} has no index {fai.name}; prepare it with "
                         f"`ldarnet prepare-genome --fasta SOURCE --out {path}`")
    return _open_indexed(path, fai)


def names_hint(names: list[str], limit: int = 12) -> str:
    """A readable, bounded list of record names for error messages (hg38 has 455)."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")

