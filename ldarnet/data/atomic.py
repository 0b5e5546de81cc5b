"""All-or-nothing output files: write to a temporary name next to the target, then rename.

A workflow step that dies half-way must not leave a file that looks finished (Snakemake
would consider a truncated shard up to date). Every output of the data stage is
therefore written under a hidden temporary name in the *same directory* (so that
``os.replace`` is an atomic rename on one file system) and renamed only when complete;
on any error the temporaries are deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_path(target: str | Path) -> Path:
    """A new, empty temporary file beside ``target`` with ordinary permissions.

    ``mkstemp`` creates files readable by the owner only (0600); the rename would carry
    that over and leave a genome nobody else on a shared cluster can read, so the mode
    is reset to what a plain ``open(..., "w")`` would have given (0666 minus umask).
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def remove(paths: Iterable[Path]) -> None:
    """Delete temporaries (ignoring those already gone); used on the error path."""
    for path in paths:
        Path(path).unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        remove([tmp])
        raise


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        remove([tmp])
        raise
