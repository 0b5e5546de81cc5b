"""When a pretraining inside a SLURM job must stop to save its state before the time limit.

Why not SLURM's ``--signal=USR1@lead``: the signal goes to every process of the job step,
and under ``--profile slurm`` the step's first process is the Snakemake that runs the rule
inside the job. Snakemake does not handle SIGUSR1, so it dies at once; the job is marked
FAILED even when the pretraining has just finished, and the submitting Snakemake then
deletes the fresh weights as the output of a failed job (seen on a real SLURM cluster,
tests/slurm). SLURM also sends the signal up to a minute earlier than asked (its event
resolution). A deadline read from the job itself has neither problem: every worker
checks it between optimizer steps, they agree on the step through the same all-reduce as
a signal, and the state is saved while the job still has ``lead`` seconds left.

The job's end comes from ``SLURM_JOB_END_TIME`` where Slurm exports it, else from
``squeue -j $SLURM_JOB_ID -o %e`` (what the test cluster, Slurm 22.05, answers); outside a
SLURM job there is no deadline.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable, Mapping

_SQUEUE_TIMEOUT_S = 30


def _squeue_end_time(job_id: str) -> str:
    """The job's EndTime as squeue prints it (local time, ``YYYY-MM-DDTHH:MM:SS``)."""
    proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%e"], capture_output=True,
                          text=True, timeout=_SQUEUE_TIMEOUT_S, check=True)
    return proc.stdout.strip()


def job_end_time(environ: Mapping[str, str] | None = None,
                 squeue: Callable[[str], str] = _squeue_end_time) -> float | None:
    """Epoch seconds at which SLURM ends this job, or None (no job, no limit, unknown)."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    exported = env.get("SLURM_JOB_END_TIME", "").strip()
    if exported.isdigit() and int(exported) > 0:
        return float(exported)
    try:
        text = squeue(job)
    except (OSError, subprocess.SubprocessError):
        return None
    try:  # squeue prints local time, as does this process (same node, same TZ)
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:  # "Unknown", "NONE", "N/A": a job without a time limit
        return None


def stop_deadline(lead_s: float, environ: Mapping[str, str] | None = None,
                  squeue: Callable[[str], str] = _squeue_end_time) -> tuple[float | None, str]:
    """``(deadline, message)``: stop ``lead_s`` seconds before the job's end (None: never).

    The message says what was found, for the job's log (a deadline that is silently
    missing would turn a time limit into lost training).
    """
    if lead_s <= 0:
        return None, ""
    env = os.environ if environ is None else environ
    if not env.get("SLURM_JOB_ID"):
        return None, ""
    end = job_end_time(env, squeue)
    if end is None:
        return None, (f"pretrain: SLURM job {env['SLURM_JOB_ID']} has no time limit that "
                      "could be read (SLURM_JOB_END_TIME, squeue); it will not stop early")
    deadline = end - lead_s
    when = dt.datetime.fromtimestamp(deadline).isoformat(timespec="seconds")
    return deadline, (f"pretrain: SLURM job {env['SLURM_JOB_ID']} ends at "
                      f"{dt.datetime.fromtimestamp(end).isoformat(timespec='seconds')}; the "
                      f"state is saved and the job stops at {when} ({lead_s:.0f} s before)")
