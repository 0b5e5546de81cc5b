"""One writer per output directory: an exclusive lock held for a whole workflow step.

When the Snakemake that submitted a long job is killed, the job keeps running on the
cluster; a restarted Snakemake (``--rerun-incomplete``) does not know about it and
submits the step again. Two pretrainings would then write the same run directory. A
step that holds :func:`exclusive` on its directory makes the second one wait until the
first has ended (its log says for whom it waits); it then finds the first one's result
and keeps it, or resumes what the first one saved.

The lock is ``flock(2)`` on ``<dir>/.lock``: the kernel releases it when its holder
exits, however it exits (a SIGKILL or a node reboot included), so a stale lock cannot
block a rerun. The file also names the holder (host, pid, SLURM job) for the messages.
On a file system without ``flock`` support the step runs unlocked and says so.

``python -m ldarnet.foundation.runlock DIR -- COMMAND ...`` runs a command under the lock: used
around ``torchrun``, whose worker processes must not each take it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"
# errno values of file systems that do not implement flock (some Lustre/NFS mounts)
_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _holder() -> dict[str, str | int]:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "slurm_job": os.environ.get("SLURM_JOB_ID", "none"),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _describe(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        data = {}
    if not data:
        return "another process"
    return (f"pid {data.get('pid')} on {data.get('host')} (SLURM job {data.get('slurm_job')}, "
            f"since {data.get('since')})")


@contextlib.contextmanager
def exclusive(directory: str | Path, poll_s: float = 30.0,
              log: Callable[[str], None] = _log_stderr) -> Iterator[bool]:
    """Hold the directory's lock for the ``with`` block; yields whether it had to wait.

    Blocks while another process holds it, logging once whom it waits for.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    waited = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log(f"{directory} is being written by {_describe(fd)}; waiting until it "
                        "ends (this step then keeps its result or resumes its state)")
                waited = True
                time.sleep(poll_s)
            except OSError as err:
                if err.errno not in _UNSUPPORTED:
                    raise
                log(f"warning: {directory}: this file system does not support flock "
                    f"({os.strerror(err.errno)}); running without the one-writer lock")
                break
        if waited:
            log(f"{directory}: the other writer has ended; continuing")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(_holder()) + "\n").encode())
        yield waited
    finally:
        os.close(fd)


def run_locked(directory: str | Path, command: list[str], poll_s: float = 30.0) -> int:
    """Run ``command`` while holding the lock of ``directory``; its exit status.

    This process outlives SIGTERM and SIGINT, so that the lock is held until the command
    has saved its state and ended. Outside SLURM it passes them on to the command (a kill
    of this process reaches it); inside a SLURM job step every process gets them from
    SLURM already, and a second SIGTERM would cut torchrun's shutdown of its workers short.
    """
    with exclusive(directory, poll_s=poll_s):
        child = subprocess.Popen(command)
        under_slurm = bool(os.environ.get("SLURM_JOB_ID"))

        def forward(signum: int, frame: object) -> None:
            if not under_slurm:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        status = child.wait()
    return 128 - status if status < 0 else status


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m ldarnet.foundation.runlock DIR -- COMMAND [ARG ...]",
              file=sys.stderr)
        return 2
    return run_locked(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main())
