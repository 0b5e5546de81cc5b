"""Where each workflow rule runs, and what a cluster job does around the rule's command.

This is the one place that says which rules hold GPUs and what every job asks the
scheduler for. The rules of ``workflow/rules/`` take their ``resources`` from
:func:`gpu_job` / :func:`cpu_job`; the SLURM profile only carries site settings (account,
default partition, qos) and lists no rule. So a rule that computes on a GPU cannot end up
on a CPU partition because a second list forgot it.

How the settings combine, from strongest to weakest (Snakemake's own order):

1. ``--set-resources`` on the command line, then ``set-resources`` of the profile(s) in use
   (a site profile may pin e.g. ``gpu_model`` or a partition for one rule);
2. the rule's resources, built here: GPU count, CPUs, memory, time, ``nodes=1``, the GPU
   partition from ``LDARNET_SLURM_GPU_PARTITION`` for GPU rules and, when it is set, the
   CPU partition from ``LDARNET_SLURM_PARTITION`` for the others;
3. ``default-resources`` of the profile (account, default partition, qos, memory, time);
4. Snakemake's defaults.

Everything here is plain Python so that the tests can check it without Snakemake.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ldarnet.pipeline.config_check import WorkflowConfigError

CPU_PARTITION_VARIABLE = "LDARNET_SLURM_PARTITION"
GPU_PARTITION_VARIABLE = "LDARNET_SLURM_GPU_PARTITION"
ACCOUNT_VARIABLE = "LDARNET_SLURM_ACCOUNT"
# Config sections whose gpus / cpus / mem_mb / runtime / retries size a rule's jobs.
GPU_STAGES = ("pretrain", "evaluation", "boundaries")
TEST_BANNER = (
    "[TEST ONLY] config testing.gpu_rules_on_cpu is true: jobs that hold GPUs compute on "
    "the CPU. This exists for the workflow's own tests on a cluster with fake GPUs; never "
    "use it for results."
)


@dataclass(frozen=True)
class StageCompute:
    """What one job of a stage asks for: GPUs, CPUs per GPU (or per job), memory, time."""

    stage: str
    gpus: int
    cpus: int  # per GPU when gpus > 0, per job otherwise
    mem_mb: int
    runtime: int  # minutes per attempt
    retries: int

    @property
    def threads(self) -> int:
        """Snakemake threads of the job: every CPU it holds."""
        return max(1, self.gpus) * self.cpus


def stage_compute(config: Mapping[str, Any], stage: str) -> StageCompute:
    """The compute of a GPU-capable stage, read from its config section."""
    if stage not in GPU_STAGES:
        raise KeyError(f"{stage!r} is not one of the GPU-capable stages {GPU_STAGES}")
    section = config[stage]
    cpus = section["cpus_per_gpu"] if "cpus_per_gpu" in section else section["cpus"]
    return StageCompute(stage=stage, gpus=int(section["gpus"]), cpus=int(cpus),
                        mem_mb=int(section["mem_mb"]), runtime=int(section["runtime"]),
                        retries=int(section.get("retries", 0)))


def gpus_on_cpu(config: Mapping[str, Any]) -> bool:
    """True only in the workflow's own cluster tests (config ``testing.gpu_rules_on_cpu``)."""
    return bool((config.get("testing") or {}).get("gpu_rules_on_cpu", False))


def stage_device(config: Mapping[str, Any], stage: str) -> str:
    """``--device`` of a stage's commands: ``cuda`` when its jobs hold GPUs.

    The one exception is the cluster test mode, which runs GPU jobs on the CPU and says
    so in every job log (:func:`shell_command`) and at the start of the run.
    """
    if stage_compute(config, stage).gpus == 0 or gpus_on_cpu(config):
        return "cpu"
    return "cuda"


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def gpu_job(config: Mapping[str, Any], stage: str,
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resources of a rule whose jobs compute on the stage's GPUs (CPU job if gpus is 0).

    A GPU job is pinned to one node (its processes talk through ``torchrun --standalone``)
    and asks for CPUs per GPU, never ``tasks`` (the SLURM plugin would turn that into
    ``--ntasks-per-gpu`` and start the command once per GPU). No ``--signal``: SLURM
    would signal the job's own Snakemake too, which dies of SIGUSR1; the pretraining stops
    before the limit by itself (``ldarnet.train.time_limit``).
    """
    env = _environ(environ)
    compute = stage_compute(config, stage)
    if compute.gpus == 0:
        return cpu_job(compute.mem_mb, compute.runtime, environ=env)
    resources: dict[str, Any] = {
        "gpu": compute.gpus,
        "cpus_per_gpu": compute.cpus,
        "nodes": 1,
        "mem_mb": compute.mem_mb,
        "runtime": compute.runtime,
    }
    if env.get(GPU_PARTITION_VARIABLE):
        resources["slurm_partition"] = env[GPU_PARTITION_VARIABLE]
    return resources


def cpu_job(mem_mb: int, runtime: int, environ: Mapping[str, str] | None = None
            ) -> dict[str, Any]:
    """Resources of a CPU rule: memory and time; the CPU partition when the site names one."""
    env = _environ(environ)
    resources: dict[str, Any] = {"mem_mb": int(mem_mb), "runtime": int(runtime)}
    if env.get(CPU_PARTITION_VARIABLE):
        resources["slurm_partition"] = env[CPU_PARTITION_VARIABLE]
    return resources


def torch_launcher(compute: StageCompute, python: str = "python") -> str:
    """The command prefix of a stage's ldarnet command: one process, or one per GPU.

    Several GPUs: ``torch.distributed.run`` (torchrun) with one worker per GPU on the
    job's one node. Snakemake exports ``OMP_NUM_THREADS`` = the job's threads (all its
    CPUs); each worker gets its own share instead, or the ``n`` workers would each start
    that many threads on the same cores.
    """
    if compute.gpus > 1:
        return (f"env OMP_NUM_THREADS={compute.cpus} {python} -m torch.distributed.run "
                f"--standalone --nproc-per-node {compute.gpus} -m ldarnet")
    return f"{python} -m ldarnet"


def outer_retries(retries: int, is_main_process: bool) -> int:
    """A rule's ``retries`` in the process that submits jobs, 0 inside a job.

    Snakemake applies a rule's ``retries`` in every process that runs the rule: the main
    process resubmits a failed cluster job, and the Snakemake inside the job would retry
    the command again in the same allocation, so the attempts multiply. Counting them
    once, where the jobs are submitted, gives each attempt a fresh allocation and a
    fresh time limit (which a resumed pretraining needs).
    """
    return int(retries) if is_main_process else 0


def shell_command(command: str, script: str, banner: str | None = None) -> str:
    """A rule's shell command run as one logged attempt (``workflow/scripts/attempt.sh``).

    Snakemake deletes a job's log before each attempt, so the output of a pre-empted
    attempt (its "state saved" line) would be lost; the script also appends each
    attempt's output to ``{log}.attempts`` after a header naming the attempt's time,
    SLURM job and host, and it outlives the signals SLURM sends to the job step (see the
    script). ``banner`` (the cluster test mode) is written at the top of the log.
    """
    prefix = f"LDARNET_TEST_BANNER={shlex.quote(banner)} " if banner else ""
    return f"{prefix}bash {shlex.quote(script)} {{log}} -- {command}"


_UNSET_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class PlannedJob:
    """One job as the scheduler will see it: its rule and its evaluated resources."""

    rule: str
    resources: Mapping[str, Any]


def check_submission(jobs: Iterable[PlannedJob]) -> None:
    """Refuse a SLURM run that would submit an unusable job, before the first submission.

    Two faults are caught: a profile value that names an environment variable which is
    not set (Snakemake passes ``$NAME`` on to sbatch as text), and a GPU job without a
    GPU partition (it would go to the default partition, which on most sites has no
    GPUs and rejects it). The message names the variable to set.
    """
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for job in jobs:
        for name, value in job.resources.items():
            if not isinstance(value, str):
                continue
            for variable in _UNSET_VARIABLE.findall(value):
                if (variable, name) not in seen:
                    seen.add((variable, name))
                    hint = " (sbatch -A)" if variable == ACCOUNT_VARIABLE else ""
                    problems.append(f"{variable} is not set: resource {name}={value!r}{hint} "
                                    f"of rule {job.rule} and others")
        if int(job.resources.get("gpu", 0) or 0) > 0 and not job.resources.get("slurm_partition"):
            key = (GPU_PARTITION_VARIABLE, "gpu")
            if key not in seen:
                seen.add(key)
                problems.append(
                    f"{GPU_PARTITION_VARIABLE} is not set: rule {job.rule} holds "
                    f"{job.resources['gpu']} GPU(s) and would go to the default partition; "
                    f"export {GPU_PARTITION_VARIABLE}=<your GPU partition> (or set "
                    f"slurm_partition for the GPU rules in your profile's set-resources)"
                )
    if problems:
        raise WorkflowConfigError(
            "SLURM run refused before any submission:\n  " + "\n  ".join(problems)
            + "\nSee docs/cluster.md (site variables)."
        )


def check_test_mode(config: Mapping[str, Any]) -> None:
    """The CPU stand-in for GPUs is refused at paper scale (a test switch, not an option)."""
    if gpus_on_cpu(config) and config.get("scale") == "paper":
        raise WorkflowConfigError(
            "config testing.gpu_rules_on_cpu: true is for the workflow's tests on a cluster "
            "with fake GPUs; the paper config must compute on its GPUs. Remove the key."
        )


# ---------------------------------------------------------------- pre-empted SLURM jobs
# States in which a job may still run (squeue --states); anything else has ended.
_ACTIVE_STATES = ("PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED,REQUEUE_HOLD,"
                  "REQUEUE_FED,RESIZING,SIGNALING,STAGE_OUT")


def _run_query(args: list[str]) -> str | None:
    """Output of a SLURM query command, or None when it cannot answer."""
    import subprocess

    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


# Final states that snakemake-executor-plugin-slurm 2.8.0 does not recognise as final:
# PREEMPTED (it waits for a requeue) and "CANCELLED by <uid>" (sacct's spelling of a
# cancellation; the plugin compares the whole string with "CANCELLED").
_WAITED_ON_FOREVER = ("PREEMPTED", "CANCELLED")


def ended_unrecognised(job_ids: Iterable[str]) -> dict[str, str]:
    """{job: sacct state} of the jobs among ``job_ids`` that ended in a state the SLURM
    plugin keeps waiting on, and that SLURM will not run again.

    ``sacct`` reports the newest record of each job; a job that SLURM requeues goes back
    to PENDING, so PREEMPTED there means the pre-emption cancelled it (PreemptMode=CANCEL,
    or REQUEUE without a requeueable job). ``squeue`` confirms that the controller no
    longer runs or queues it. When either command cannot answer, nothing is reported.
    """
    ids = sorted({str(i).split(";")[0] for i in job_ids})
    if not ids:
        return {}
    accounting = _run_query(["sacct", "-X", "-n", "-P", "-o", "JobIdRaw,State",
                             "-j", ",".join(ids)])
    if accounting is None:
        return {}
    ended: dict[str, str] = {}
    for line in accounting.splitlines():
        fields = line.strip().split("|")
        if (len(fields) >= 2 and fields[0] in ids
                and fields[1].split()[0:1] in ([state] for state in _WAITED_ON_FOREVER)):
            ended[fields[0]] = fields[1].strip()
    if not ended:
        return {}
    queue = _run_query(["squeue", "-h", "-o", "%i", "-t", _ACTIVE_STATES,
                        "-j", ",".join(sorted(ended))])
    if queue is None:
        # squeue refuses job ids it no longer knows: then none of them is active
        queue = ""
    active = {line.strip() for line in queue.splitlines() if line.strip()}
    return {job: state for job, state in ended.items() if job not in active}


def resubmit_preempted_jobs(executor_class: type) -> None:
    """Report SLURM jobs that were pre-empted or cancelled as failed, so that Snakemake
    resubmits them.

    snakemake-executor-plugin-slurm (2.8.0, pinned in pyproject.toml) keeps waiting on a
    job whose state is PREEMPTED, expecting SLURM to requeue it (on sites whose
    pre-emption cancels jobs the run would wait forever), and on one that ``scancel``
    ended, because sacct says "CANCELLED by <uid>" and the plugin looks for "CANCELLED"
    (both seen on a real SLURM 22.05 cluster, tests/slurm). This wraps the plugin's status
    check: jobs it still counts as running are checked with :func:`ended_unrecognised`
    and those that ended are reported as failed, which spends one of the rule's retries
    and resubmits the job (a pretraining then resumes from the state it saved on
    SIGTERM). Requeued jobs are left to SLURM.
    """
    original = executor_class.check_active_jobs
    if getattr(original, "_ldarnet_preemption", False):
        return

    async def check_active_jobs(self, active_jobs):  # type: ignore[no-untyped-def]
        running = [job async for job in original(self, active_jobs)]
        ended = ended_unrecognised(job.external_jobid for job in running) if running else {}
        for job in running:
            state = ended.get(str(job.external_jobid).split(";")[0])
            if state:
                self.report_job_error(
                    job, msg=f"SLURM job {job.external_jobid} ended {state}; resubmitting it "
                             "(a pretraining resumes from its saved state)")
            else:
                yield job

    check_active_jobs._ldarnet_preemption = True  # type: ignore[attr-defined]
    executor_class.check_active_jobs = check_active_jobs
