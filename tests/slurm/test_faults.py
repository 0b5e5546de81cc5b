"""Faults on a real SLURM scheduler: pretraining survives them bit for bit.

- a job that nears its time limit (the pretraining saves and exits 75 on its own,
  ``pretrain.stop_before_limit`` seconds before it), is cancelled, and is pre-empted
  (PreemptMode=CANCEL: the job ends PREEMPTED, which the SLURM plugin alone would wait
  on forever) is resubmitted each time and resumes; the final weights equal an
  uninterrupted run's;
- a job that fails every time runs exactly retries + 1 times, one SLURM job and one
  `srun` each;
- Snakemake killed while its job runs, then restarted: the second job waits for the
  first (one writer per run directory) and keeps its result.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from snakemake_runs import SNAKEMAKE, VENV_BIN, workflow_copy
from tier import (
    ACCOUNT,
    cluster,  # noqa: F401  (fixture)
    logged_step,
    queued,
    quiesce,
    rule_of,
    run_slurm,
    sacct,
    scheduler_state,
    sha256,
    shared_tmp,  # noqa: F401  (fixture)
    slurm_env,
    start_slurm,
    wait_for,
    write_long_pretraining,
)

# Single-thread steps of ldarnet-tiny on 8 x 1,024 bases: long enough to outlast a
# one-minute time limit, a cancellation and a pre-emption.
STEPS = int(os.environ.get("LDARNET_TIER_STEPS", "160"))
WEIGHTS = "results/pretrain/ldarnet/seed1/model.safetensors"
RUN_DIR = "results/pretrain/ldarnet/seed1"
ATTEMPTS = "results/logs/pretrain/ldarnet/seed1.log.attempts"


def _genome(work: Path, config: str) -> None:
    """The genome stage locally (seconds): the tests are about the pretraining job."""
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.run([SNAKEMAKE, "results/genome/hg38-demo/windows/manifest.json",
                           "--configfile", config, "--cores", "2"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def reference(shared_tmp: Path) -> str:  # noqa: F811
    """sha256 of the weights of the uninterrupted run (local, one thread)."""
    work = workflow_copy(shared_tmp, "reference")
    config = write_long_pretraining(work, STEPS)
    _genome(work, config)
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.run([SNAKEMAKE, WEIGHTS, "--configfile", config, "--cores", "1"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sha256(work / WEIGHTS)


@pytest.fixture(autouse=True)
def _clean_scheduler(cluster):  # noqa: F811
    """Whatever a test leaves queued (a failure half-way) is cancelled before the next."""
    yield
    quiesce(cluster)


def _diagnosis(cluster, work: Path, log: Path | None = None):  # noqa: F811
    """What the scheduler and the run looked like (for a wait that timed out)."""
    def text() -> str:
        jobs = "\n".join(str(j) for j in _jobs(cluster, work))
        tail = log.read_text()[-3000:] if log and log.exists() else ""
        train = work / RUN_DIR / "train_log.csv"
        steps = train.read_text()[-500:] if train.exists() else "(no train_log.csv)"
        attempts = work / ATTEMPTS
        history = attempts.read_text()[-3000:] if attempts.exists() else "(no attempts log)"
        return (f"{scheduler_state(cluster)}\npretrain jobs:\n{jobs}\n--- train_log.csv\n"
                f"{steps}\n--- attempts\n{history}\n--- snakemake\n{tail}")
    return text


def _jobs(cluster, work: Path) -> list[dict[str, str]]:  # noqa: F811
    return [j for j in sacct(cluster, work) if rule_of(j) == "pretrain"]


def _running(cluster, work: Path) -> dict[str, str] | None:  # noqa: F811
    """The pretraining job of ``work`` that runs now (asked of the controller)."""
    running = [j for j in queued(cluster, work)
               if rule_of(j) == "pretrain" and j["State"] == "RUNNING"]
    return running[-1] if running else None


def _submitted(cluster, work: Path) -> int:  # noqa: F811
    """How many pretraining jobs of ``work`` SLURM has seen: ended (sacct) or queued."""
    ids = {j["JobIDRaw"] for j in _jobs(cluster, work)}
    ids |= {j["JobIDRaw"] for j in queued(cluster, work) if rule_of(j) == "pretrain"}
    return len(ids)


def _slurm(cluster, *args: str) -> None:  # noqa: F811
    subprocess.run(list(args), check=True, capture_output=True,
                   env={**os.environ, **cluster.env})


def test_timeout_cancel_and_preemption_resume_bit_for_bit(
        cluster, shared_tmp: Path, reference: str) -> None:  # noqa: F811
    work = workflow_copy(shared_tmp, "interrupted")
    # one minute per attempt, stop 30 s before the limit, enough retries
    config = write_long_pretraining(work, STEPS, runtime=1, stop_before_limit=30, retries=10)
    _genome(work, config)
    env = slurm_env(cluster, work, shared_tmp / "interrupted-home")
    run = start_slurm(work, env, WEIGHTS, "--configfile", config,
                      log=shared_tmp / "interrupted.out")
    run_dir = work / RUN_DIR
    why = _diagnosis(cluster, work, shared_tmp / "interrupted.out")
    try:
        # attempt 1 nears its time limit: stops on its own, state saved
        wait_for(lambda: _submitted(cluster, work) >= 2, "the resubmission after the time limit",
                 diagnose=why)
        first = wait_for(lambda: _jobs(cluster, work), "the accounting of attempt 1")[0]
        assert first["State"] in ("TIMEOUT", "FAILED"), first
        # attempt 2: cancelled once it has made progress of its own
        resumed_at = logged_step(run_dir)
        job = wait_for(lambda: logged_step(run_dir) >= resumed_at + 5
                       and _running(cluster, work), "attempt 2 to train", diagnose=why)
        _slurm(cluster, "scancel", job["JobIDRaw"])
        wait_for(lambda: _submitted(cluster, work) >= 3, "the resubmission after scancel",
                 diagnose=why)
        # attempt 3: pre-empted by a job of the urgent partition that needs the whole node
        resumed_at = logged_step(run_dir)
        job = wait_for(lambda: logged_step(run_dir) >= resumed_at + 5
                       and _running(cluster, work), "attempt 3 to train", diagnose=why)
        _slurm(cluster, "sbatch", "-A", ACCOUNT, "-p", "urgent", "-c", "2", "--gpus=2",
               "--mem", "1000", "-t", "1", "-o", str(shared_tmp / "urgent-%j.out"),
               "--wrap", "sleep 5")
        wait_for(lambda: _submitted(cluster, work) >= 4, "the resubmission after pre-emption",
                 diagnose=why)
        assert run.wait(timeout=3600) == 0, (shared_tmp / "interrupted.out").read_text()[-5000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    states = [j["State"] for j in _jobs(cluster, work)]
    assert "CANCELLED" in " ".join(states) and "PREEMPTED" in states, states
    assert states[-1] == "COMPLETED", states
    assert sha256(work / WEIGHTS) == reference  # resumed bit for bit
    history = (work / ATTEMPTS).read_text()
    assert history.count("=== attempt started") == len(states)
    assert "state saved at step" in history  # the pre-empted attempts' last words survive
    assert "stopping before the SLURM time limit; state saved" in history
    assert not (run_dir / "state").exists()  # a finished run keeps no state to resume


def test_a_job_that_always_fails_runs_retries_plus_one_times(
        cluster, shared_tmp: Path) -> None:  # noqa: F811
    work = workflow_copy(shared_tmp, "failing")
    config = write_long_pretraining(work, 20, retries=2)
    _genome(work, config)
    shards = work / "results/genome/hg38-demo/windows/train.npy"
    stamp = shards.stat()
    shards.write_bytes(b"not a token shard")  # every attempt stops with a clear error
    os.utime(shards, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # not rebuilt by Snakemake
    env = slurm_env(cluster, work, shared_tmp / "failing-home")
    proc = run_slurm(work, env, WEIGHTS, "--configfile", config, timeout=1800)
    assert proc.returncode != 0
    jobs = _jobs(cluster, work)
    assert len(jobs) == 3 and all(j["State"] == "FAILED" for j in jobs), jobs
    history = (work / ATTEMPTS).read_text()
    assert "is not a .npy array file" in history and "allow_pickle" not in history
    assert history.count("=== attempt started") == 3
    assert history.count("=== attempt ended with exit status 2") == 3
    for job in jobs:  # one srun step per SLURM job: no retries inside the allocation
        steps = subprocess.run(["sacct", "-n", "-P", "-o", "JobID", "-j", job["JobIDRaw"]],
                               capture_output=True, text=True, check=True,
                               env={**os.environ, **cluster.env}).stdout.split()
        numbered = [s for s in steps if "." in s and s.split(".")[-1].isdigit()]
        assert numbered == [f"{job['JobIDRaw']}.0"], steps


def test_killed_snakemake_restarted_never_runs_two_writers(
        cluster, shared_tmp: Path, reference: str) -> None:  # noqa: F811
    work = workflow_copy(shared_tmp, "restarted")
    config = write_long_pretraining(work, STEPS)
    _genome(work, config)
    env = slurm_env(cluster, work, shared_tmp / "restarted-home")
    first = start_slurm(work, env, WEIGHTS, "--configfile", config,
                        log=shared_tmp / "first.out")
    run_dir = work / RUN_DIR
    why = _diagnosis(cluster, work, shared_tmp / "first.out")
    wait_for(lambda: logged_step(run_dir) >= 5 and _running(cluster, work), "the first job",
             diagnose=why)
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake dies; its SLURM job goes on
    first.wait()
    unlock = subprocess.run([SNAKEMAKE, WEIGHTS, "--configfile", config, "--unlock"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert unlock.returncode == 0, unlock.stderr
    second = run_slurm(work, env, WEIGHTS, "--configfile", config, timeout=3600)
    assert second.returncode == 0, second.stderr[-5000:]
    jobs = _jobs(cluster, work)
    assert len(jobs) == 2 and all(j["State"] == "COMPLETED" for j in jobs), jobs
    history = (work / ATTEMPTS).read_text()
    assert "is being written by" in history and "waiting until it ends" in history
    assert "already holds the finished weights of this run" in history
    steps = [int(r.split(",")[0]) for r in
             (run_dir / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, STEPS + 1))  # trained once, by one writer
    assert sha256(work / WEIGHTS) == reference
