"""All-or-nothing output directories: build in a hidden sibling, then rename into place.

``import-checkpoint`` and ``export-hf`` write several files that only make sense
together (weights, config, model card). A run that dies half-way must not leave a
directory that ``load_pretrained`` would accept, so everything is written into a
temporary directory beside the target (same file system, so the final ``os.replace``
is an atomic rename) and the temporary is deleted on any error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ldarnet.foundation.atomic import remove, temp_dir
from ldarnet.interop.errors import InteropError


def check_target(target: Path, force: bool) -> None:
    """Refuse to overwrite an existing, non-empty ``target`` unless ``force`` (fail early)."""
    if target.exists() and not target.is_dir():
        raise InteropError(f"output {target} exists and is a file; the output is a directory: "
                           "choose another path or delete the file")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InteropError(f"output directory {target} exists and is not empty; choose another "
                           "path, delete it, or pass --force to replace it")
    if not target.parent.is_dir():
        raise InteropError(f"parent directory {target.parent} of the output does not exist; "
                           "create it first")


@contextmanager
def atomic_directory(target: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes ``target`` when the block succeeds.

    With ``force`` an existing ``target`` is replaced (moved aside, then deleted only
    after the new directory is in place).
    """
    target = Path(target)
    check_target(target, force)
    tmp = temp_dir(target)
    try:
        yield tmp
        old = None
        if target.exists():
            if any(target.iterdir()):
                old = temp_dir(target, suffix=".old")
                os.replace(target, old / "previous")
            else:
                target.rmdir()
        os.replace(tmp, target)
        if old is not None:
            remove([old])
    except BaseException:
        remove([tmp])
        raise

