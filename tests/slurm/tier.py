"""The real-cluster tier: a local SLURM cluster, workflow copies and their configs.

Collected only by ``make test-slurm`` (``LDARNET_TEST_TIER=slurm``). Skipped, with the
reason, where the cluster cannot start (not root, packages missing). Test modules import
the fixtures from here (``from tier import cluster``).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from local_cluster import ACCOUNT, LocalCluster, missing_requirements
from snakemake_runs import SNAKEMAKE, VENV_BIN

TEST_USER = "ldarnet-test"


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    state = Path(tempfile.mkdtemp(prefix="ldarnet-slurm-"))
    started = LocalCluster(state).start()
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_tmp() -> Iterator[Path]:
    """A scratch directory every user can enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ldarnet-tier-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------ configs
def write_mini_config(work: Path, gpus: bool, **pretrain: object) -> str:
    """The demo's DAG (every rule), smaller: seconds per job instead of minutes.

    ``gpus``: the GPU rules ask for one (fake) GPU each and compute on the CPU (config
    testing.gpu_rules_on_cpu, which prints a warning in every such job's log).
    """
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    train = yaml.safe_load((ROOT / "config" / "pretrain" / "demo.yaml").read_text())
    train.update(steps=20, val_interval=10, val_windows=16, log_interval=5,
                 checkpoint_interval=10)
    (work / "config" / "pretrain" / "mini.yaml").write_text(yaml.safe_dump(train))
    n = 1 if gpus else 0
    config["scale"] = "custom"
    if gpus:
        config["testing"] = {"gpu_rules_on_cpu": True}
    config["pretrain"].update(config="config/pretrain/mini.yaml", gpus=n, cpus_per_gpu=1,
                              mem_mb=2000, runtime=10, retries=1,
                              stop_before_limit=0)
    config["pretrain"].update(pretrain)
    config["grid"] = {"learning_rates": [1.0e-3], "batch_sizes": [16]}
    config["folds"] = 2
    config["evaluation"].update(subsample={"train": 48, "test": 32, "seed": 0}, max_epochs=1,
                                patience=1, gpus=n, cpus=1, mem_mb=2000, runtime=10)
    config["boundaries"].update(permutations=200, gpus=n, cpus=1, mem_mb=2000, runtime=10)
    (work / "config" / "mini.yaml").write_text(yaml.safe_dump(config))
    return "config/mini.yaml"


def write_long_pretraining(work: Path, steps: int, **pretrain: object) -> str:
    """A pretraining of ``steps`` single-thread steps, checkpointed every 10 (fault tests)."""
    name = write_mini_config(work, gpus=True, **pretrain)
    train = yaml.safe_load((work / "config" / "pretrain" / "mini.yaml").read_text())
    train.update(steps=steps, val_interval=steps, val_windows=8, log_interval=1,
                 checkpoint_interval=10)
    (work / "config" / "pretrain" / "mini.yaml").write_text(yaml.safe_dump(train))
    return name


# ------------------------------------------------------------------------ running
def slurm_env(cluster: LocalCluster, work: Path, tmp: Path) -> dict[str, str]:
    """What a cluster user has: the site variables, the installed profile, SLURM's config."""
    home = tmp / "xdg"
    (home / "snakemake").mkdir(parents=True, exist_ok=True)
    link = home / "snakemake" / "slurm"
    if not link.exists():
        link.symlink_to(work / "workflow" / "profiles" / "slurm")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDARNET_SLURM", "SLURM_"))}
    env.update(cluster.env, XDG_CONFIG_HOME=str(home), PATH=f"{VENV_BIN}:{env['PATH']}",
               LDARNET_SLURM_ACCOUNT=ACCOUNT, LDARNET_SLURM_PARTITION="cpu",
               LDARNET_SLURM_GPU_PARTITION="gpu", MPLCONFIGDIR=str(tmp / "mpl"))
    return env


SLURM_FLAGS = ("--profile", "slurm", "--slurm-init-seconds-before-status-checks", "2",
               "--seconds-between-status-checks", "3", "--latency-wait", "10")


def run_slurm(work: Path, env: dict[str, str], *args: str, timeout: int = 1800
              ) -> subprocess.CompletedProcess:
    """``snakemake ARGS --profile slurm`` as a cluster user types it (targets first)."""
    return subprocess.run([SNAKEMAKE, *args, *SLURM_FLAGS], cwd=work, capture_output=True,
                          text=True, timeout=timeout, env=env)


def start_slurm(work: Path, env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    """The same in the background (its own session, so that a test can kill it)."""
    with open(log, "w") as out:
        return subprocess.Popen([SNAKEMAKE, *args, *SLURM_FLAGS], cwd=work, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def sacct(cluster: LocalCluster, work: Path) -> list[dict[str, str]]:
    """Every job SLURM ran from ``work`` (its working directory), oldest first."""
    fields = ["JobIDRaw", "Comment", "Partition", "Account", "AllocTRES", "NNodes",
              "ReqCPUS", "ReqMem", "Timelimit", "State", "WorkDir"]
    proc = subprocess.run(["sacct", "-X", "-P", "-n", "-S", "now-6hours", "-o",
                           ",".join(fields)], capture_output=True, text=True, check=True,
                          env={**os.environ, **cluster.env})
    rows = [dict(zip(fields, line.split("|"), strict=False))
            for line in proc.stdout.splitlines() if line.strip()]
    return [r for r in rows if r["WorkDir"].rstrip("/") == str(work).rstrip("/")]


def queued(cluster: LocalCluster, work: Path) -> list[dict[str, str]]:
    """The jobs from ``work`` that SLURM has now (pending or running), as ``squeue`` says.

    SLURM's accounting (sacct) may list a job only once it has ended; what runs now is
    asked of the controller.
    """
    proc = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T|%Z"], capture_output=True,
                          text=True, check=True, env={**os.environ, **cluster.env})
    rows = [dict(zip(("JobIDRaw", "Comment", "State", "WorkDir"), line.split("|"),
                     strict=False)) for line in proc.stdout.splitlines() if line.strip()]
    return [r for r in rows if r["WorkDir"].rstrip("/") == str(work).rstrip("/")]


def rule_of(job: dict[str, str]) -> str:
    comment = job["Comment"].removeprefix("rule_")
    return comment.split("_wildcards_")[0]


def wait_for(condition, what: str, timeout_s: float = 900, poll_s: float = 1.0,
             diagnose: Callable[[], str] | None = None):
    """Poll ``condition`` until it returns something true; fail with ``what``.

    ``diagnose`` (the scheduler's and the run's state) is added to the failure message:
    a timeout in a scheduler test is otherwise impossible to explain after the fact.
    """
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    detail = f"\n{diagnose()}" if diagnose else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")


def scheduler_state(cluster: LocalCluster) -> str:
    """squeue and sinfo as text (for failure messages)."""
    env = {**os.environ, **cluster.env}
    out = []
    for command in (["squeue", "-o", "%i %P %j %T %r %M %l"], ["sinfo", "-N", "-o", "%N %T %E"]):
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        out.append(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}")
    return "\n".join(out)


def quiesce(cluster: LocalCluster, timeout_s: float = 120) -> None:
    """Cancel every job left on the cluster and return a drained node to service.

    Run after each fault test, so that a test that fails half-way (its Snakemake killed,
    its job still running or pending) cannot hold the node for the next one.
    """
    env = {**os.environ, **cluster.env}

    def queue() -> list[str]:
        return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                              env=env).stdout.split()

    jobs = queue()
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, env=env)
    deadline = time.time() + timeout_s
    while queue() and time.time() < deadline:
        time.sleep(1)
    state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                           env=env).stdout
    if "drain" in state or "down" in state:
        subprocess.run(["scontrol", "update", f"NodeName={cluster.host}", "State=RESUME"],
                       capture_output=True, env=env)


def logged_step(run_dir: Path) -> int:
    log = run_dir / "train_log.csv"
    if not log.exists():
        return 0
    rows = [r for r in log.read_text().splitlines()[1:] if r[:1].isdigit()]
    return int(rows[-1].split(",")[0]) if rows else 0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ a non-root user
def _user_can_run_python() -> bool:
    return subprocess.run(["runuser", "-u", TEST_USER, "--", VENV_BIN + "/python", "-c", ""],
                          capture_output=True).returncode == 0


def user_command(args: list[str]) -> list[str]:
    """``args`` with the file permissions a non-root user has.

    This user if it is not root; else TEST_USER when the project's Python is reachable by
    other users; else (a Python under a private home, as on the CI machine) root without
    the capabilities that override file permissions (setpriv drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH), so that write-protected outputs are refused exactly as for a
    non-root owner of the files.
    """
    if os.geteuid() != 0:
        return args
    if _user_can_run_python():
        return ["runuser", "-u", TEST_USER, "--", *args]
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *args]


def ensure_test_user() -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd missing: cannot create a non-root user")
        subprocess.run(["useradd", "--system", "--no-create-home", TEST_USER], check=True)


def give_to_test_user(path: Path) -> None:
    """Make the non-root user of :func:`user_command` the owner of ``path`` and below."""
    if os.geteuid() == 0 and _user_can_run_python():
        subprocess.run(["chown", "-R", "-h", TEST_USER, str(path)], check=True)
