"""The pretraining's own stop before a SLURM time limit (ldarnet.train.time_limit).

The real thing (a job that reaches its limit on a SLURM cluster, and resumes bit for bit)
is tests/slurm/test_faults.py; here: where the job's end comes from, and that the loop
saves and exits 75 once the deadline has passed.
"""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from ldarnet.train.time_limit import job_end_time, stop_deadline


def _never(job: str) -> str:
    raise AssertionError("squeue must not be asked")


def test_no_deadline_outside_a_slurm_job_or_without_a_lead() -> None:
    assert stop_deadline(900, environ={}, squeue=_never) == (None, "")
    assert stop_deadline(0, environ={"SLURM_JOB_ID": "7"}, squeue=_never) == (None, "")


def test_end_time_exported_by_slurm_is_used_first() -> None:
    env = {"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "1800000000"}
    assert job_end_time(env, squeue=_never) == 1_800_000_000.0
    deadline, message = stop_deadline(900, environ=env, squeue=_never)
    assert deadline == 1_800_000_000.0 - 900
    assert "SLURM job 7" in message and "900 s before" in message


def test_end_time_from_squeue_in_local_time() -> None:
    end = dt.datetime(2026, 11, 27, 20, 7, 11)
    asked = []

    def squeue(job: str) -> str:
        asked.append(job)
        return end.isoformat()

    assert job_end_time({"SLURM_JOB_ID": "42"}, squeue=squeue) == end.timestamp()
    assert asked == ["42"]


@pytest.mark.parametrize("answer", ["Unknown", "NONE", "N/A", ""])
def test_a_job_without_a_readable_limit_never_stops_early_and_says_so(answer: str) -> None:
    deadline, message = stop_deadline(60, environ={"SLURM_JOB_ID": "9"},
                                      squeue=lambda job: answer)
    assert deadline is None and "will not stop early" in message


def test_squeue_missing_or_failing_is_no_deadline() -> None:
    def missing(job: str) -> str:
        raise FileNotFoundError("squeue")

    def failing(job: str) -> str:
        raise subprocess.CalledProcessError(1, ["squeue"])

    for squeue in (missing, failing):
        assert job_end_time({"SLURM_JOB_ID": "9"}, squeue=squeue) is None
