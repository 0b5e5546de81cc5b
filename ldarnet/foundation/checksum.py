"""MD5 and SHA-256 of files, read in chunks: genome files do not fit in memory.

MD5 is what UCSC publishes for its downloads (``md5sum.txt``), so it is also what the
manifests record to tie every derived file to the exact genome it came from. SHA-256 is
what the HuggingFace hub publishes for its (Git LFS) files, and what task manifests
record. Both are used as checksums against corruption, not for security.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def file_digest(path: str | Path, algorithm: str, chunk: int = CHUNK_BYTES) -> str:
    """Hex digest of the file at ``path`` with a :mod:`hashlib` algorithm (``md5``, ``sha256``)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: str | Path, chunk: int = CHUNK_BYTES) -> str:
    """Hex MD5 digest of the file at ``path``."""
    return file_digest(path, "md5", chunk)


def file_sha256(path: str | Path, chunk: int = CHUNK_BYTES) -> str:
    """Hex SHA-256 digest of the file at ``path``."""
    return file_digest(path, "sha256", chunk)
