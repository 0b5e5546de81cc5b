"""Whole-file FASTA reading for small inputs (the demo slice, test fixtures).

Plain and gzip/bgzip files are both read (bgzip is a series of gzip members, which
Python's gzip module concatenates). Large genomes go through pyfaidx with an index
instead; this reader is for files that fit comfortably in memory.
"""

from __future__ import annotations

import gzip
from pathlib import Path


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
