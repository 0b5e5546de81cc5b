"""All-or-nothing output files, and temporaries that never outlive their owner for long.

A workflow step that dies half-way must not leave a file that looks finished (Snakemake
would consider a truncated shard up to date). Every output is therefore written under a
hidden temporary name in the *same directory* (so that ``os.replace`` is an atomic
rename on one file system) and renamed only when complete; on any error the temporaries
are deleted.

A step can also die without running its error path: a SLURM time limit sends SIGTERM,
an out-of-memory kill or a crash sends SIGKILL. So every temporary (file or directory)
**carries its owner** in its name, ``.<target>.ldarnet-<host>-<pid>.<random>.tmp``, and:

* on SIGTERM the process removes every temporary it still owns before it exits (the
  handler is installed when the first temporary is made, unless the program installed
  its own, like pretraining's save-and-exit handler);
* the **next run of the same step** (the next temporary for the same target) removes
  the temporaries of that target whose owner is gone: on this host, a process id that
  no longer runs (or that was reused by a process started after the file was last
  written); on another host, any (Snakemake never runs one output's job twice at once).

Hence a killed step never leaves more than one step's worth of scratch behind, and
that is removed when the step runs again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ldarnet.foundation.errors import OutputError, note

_LIVE: set[Path] = set()  # temporaries this process made and has not renamed or removed
_HANDLER_LOCK = threading.Lock()
_handler_installed = False
_OWNED = re.compile(r"\.ldarnet-(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.[^.]+\.(tmp|old)$")
# what tempfile.mkstemp / mkdtemp made before temporaries carried an owner
_ANONYMOUS = re.compile(r"\.[a-z0-9_]{8}\.(tmp|old)$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def owner_tag() -> str:
    """``ldarnet-<host>-<pid>``: who made a temporary (the pid of *this* process, after forks)."""
    return f"ldarnet-{_host()}-{os.getpid()}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ owners and leftovers
def _owner_alive(host: str, pid: int, path: Path) -> bool:
    """Whether the process that made ``path`` may still be writing it."""
    if host != _host():
        return False  # another node's job for this output is over: Snakemake runs one at a time
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    started = _process_start(pid)
    try:  # a reused pid: the live process started after the file was last written
        return started is None or started <= path.lstat().st_mtime + 1.0
    except OSError:
        return True


def _process_start(pid: int) -> float | None:
    """Start time (seconds since the epoch) of a process, from Linux's /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                    .splitlines() if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(target: str | Path) -> list[Path]:
    """Remove the leftover temporaries of ``target`` whose owner is gone; returns them."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return []
    prefix = f".{target.name}."
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            name = entry.name
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) - 1:]
            path = parent / name
            owned = _OWNED.fullmatch(rest)
            if owned is not None:
                if _owner_alive(owned["host"], int(owned["pid"]), path):
                    continue
            elif not _ANONYMOUS.fullmatch(rest):
                continue
            _remove_path(path)
            removed.append(path)
    if removed:
        note(f"removed {len(removed)} leftover temporar{'y' if len(removed) == 1 else 'ies'} "
             f"of {target} from an interrupted run")
    return removed


# ------------------------------------------------------------------ SIGTERM clean-up
def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess
    remove(list(_LIVE))
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # die of the signal, as the default handler would


def _install_handler() -> None:
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    with _HANDLER_LOCK:
        if _handler_installed:
            return
        _handler_installed = True
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)


def _register(path: Path) -> Path:
    _LIVE.add(path)
    _install_handler()
    return path


# ------------------------------------------------------------------ temporaries
def temp_path(target: str | Path) -> Path:
    """A new, empty temporary file beside ``target``, owned by this process.

    Leftovers of ``target`` from dead runs are removed first. ``mkstemp`` creates files
    readable by the owner only (0600); the rename would carry that over and leave a genome
    nobody else on a shared cluster can read, so the mode is reset to what a plain
    ``open(..., "w")`` would have given (0666 minus umask).
    """
    target = Path(target)
    sweep(target)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent,
                                    prefix=f".{target.name}.{owner_tag()}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err}; check that "
                          f"{target.parent} exists and is writable") from None
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return _register(Path(name))


def temp_dir(target: str | Path, suffix: str = ".tmp") -> Path:
    """A new, empty temporary directory beside ``target``, owned by this process."""
    target = Path(target)
    sweep(target)
    try:
        name = tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.{owner_tag()}.",
                                suffix=suffix)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err}; check that "
                          f"{target.parent} exists and is writable") from None
    os.chmod(name, 0o777 & ~_umask())
    return _register(Path(name))


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private directory in the system's temporary space, owned and always removed.

    Named ``<prefix>.ldarnet-<host>-<pid>.<random>.tmp`` under ``tempfile.gettempdir()``;
    leftovers of dead owners with the same prefix are removed when the next one is made.
    """
    path = temp_dir(Path(tempfile.gettempdir()) / prefix)
    try:
        yield path
    finally:
        remove([path])


def remove(paths: Iterable[Path]) -> None:
    """Delete temporaries (ignoring those already gone); used on the error path."""
    for path in paths:
        path = Path(path)
        with contextlib.suppress(OSError):
            _remove_path(path)
        _LIVE.discard(path)


def replace(tmp: Path, target: str | Path) -> None:
    """Rename a finished temporary onto ``target`` (atomic on one file system)."""
    os.replace(tmp, target)
    _LIVE.discard(Path(tmp))


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.write_text(text)
        replace(tmp, path)
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
        replace(tmp, path)
    except BaseException:
        remove([tmp])
        raise
