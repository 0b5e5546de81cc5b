"""MD5 of files, read in chunks: genome files do not fit in memory.

MD5 is what UCSC publishes for its downloads (``md5sum.txt``), so it is also what the
manifests record to tie every derived file to the exact genome it came from. It is
used as a checksum against corruption, not for security.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def file_md5(path: str | Path, chunk: int = CHUNK_BYTES) -> str:
    """Hex MD5 digest of the file at ``path``."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
