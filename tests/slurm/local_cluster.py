"""A real single-node SLURM cluster for the workflow's tests: controller, node daemon,
accounting database (so that ``sacct`` answers, as the Snakemake SLURM plugin needs) and
two fake GPUs as generic resources.

Everything lives in one state directory: configuration files, a private MariaDB data
directory on its own port, spool, logs and pid files. Two things are machine-wide, because
SLURM's clients look for them there: munge's default socket (a munged that is already
running is used and left alone), and ``/etc/slurm/slurm.conf``, which srun inside a job
reads (the Snakemake jobstep plugin removes ``SLURM_CONF`` from the job's environment):
it is linked to the state directory's file while the cluster runs and removed at stop,
and the cluster refuses to start where the machine has a slurm.conf of its own. Every
daemon started here is stopped by the pid it wrote.

Partitions: ``cpu`` (default), ``gpu``, and ``urgent``, whose jobs pre-empt ``gpu`` jobs
(PreemptMode=CANCEL with no grace time: the pre-empted job is killed at once and ends in
state PREEMPTED), the case of sites that cancel rather than requeue pre-empted jobs.

    python tests/slurm/local_cluster.py start STATE_DIR   # prints: export SLURM_CONF=...
    python tests/slurm/local_cluster.py stop STATE_DIR
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT = "proj42"
CLUSTER = "ldtest"
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "mariadb-install-db",
            "sbatch", "sacct", "sacctmgr", "squeue", "scancel")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
DB_PASSWORD = "ldarnet-test"
GRACE_TIME_S = 0
KILL_WAIT_S = 15
MEMORY_MB = 20000


class ClusterError(RuntimeError):
    """The local cluster could not be started (the reason names the failing part)."""


def missing_requirements() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (its daemons run as root)"
    absent = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if absent:
        return (f"SLURM/munge/MariaDB not installed ({', '.join(absent)} missing): "
                f"apt-get install {' '.join(PACKAGES)}")
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return (f"this machine has a SLURM configuration of its own ({SYSTEM_CONF}); the test "
                "cluster would shadow it")
    return None


def _which(name: str) -> str:
    found = shutil.which(name) or str(Path("/usr/sbin") / name)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalCluster:
    """A started cluster: its state directory and the environment its clients need."""

    state: Path
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    started: list[tuple[str, Path]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.state / "etc" / "slurm.conf")}

    def _run(self, *args: str, check: bool = True, timeout: int = 60
             ) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    # ------------------------------------------------------------------------- start
    def start(self) -> LocalCluster:
        reason = missing_requirements()
        if reason:
            raise ClusterError(reason)
        for sub in ("etc", "db", "run", "log", "spool", "state", "munge", "dev"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._start_munge()
            self._start_database()
            self._write_configs()
            self._link_system_conf()
            self._start_daemon("slurmdbd", self.state / "run" / "slurmdbd.pid", [])
            self._wait(lambda: self._run("sacctmgr", "-n", "list", "cluster",
                                         check=False).returncode == 0, "slurmdbd")
            for args in (("add", "cluster", CLUSTER), ("add", "account", ACCOUNT),
                         ("add", "user", "root", f"account={ACCOUNT}")):
                self._run("sacctmgr", "-i", *args)
            self._start_daemon("slurmctld", self.state / "run" / "slurmctld.pid", [])
            self._start_daemon("slurmd", self.state / "run" / "slurmd.pid", [])
            self._wait(self._node_idle, "the node to become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        if MUNGE_SOCKET.exists() and subprocess.run(
                "munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
            return  # a munged of the machine: used, not ours to stop
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            raise ClusterError("/etc/munge/munge.key missing (reinstall the munge package)")
        pid = self.state / "munge" / "munged.pid"
        self._start_daemon("munged", pid, [
            "--force", f"--key-file={key}", f"--pid-file={pid}",
            f"--log-file={self.state / 'munge' / 'munged.log'}",
            f"--seed-file={self.state / 'munge' / 'seed'}"])

    def _start_database(self) -> None:
        db = self.state / "db"
        if not (db / "mysql").exists():
            self._run(_which("mariadb-install-db"), "--user=root", f"--datadir={db}",
                      "--auth-root-authentication-method=normal", "--skip-test-db",
                      timeout=120)
        self.db_port = _free_port()
        pid = self.state / "run" / "mariadb.pid"
        socket_path = self.state / "run" / "mysql.sock"
        subprocess.Popen(
            [_which("mariadbd"), "--no-defaults", "--user=root", f"--datadir={db}",
             f"--socket={socket_path}", f"--port={self.db_port}", "--bind-address=127.0.0.1",
             f"--pid-file={pid}", f"--log-error={self.state / 'log' / 'mariadb.err'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait(pid.exists, "MariaDB")
        self.started.append(("mariadbd", pid))
        sql = (f"CREATE DATABASE IF NOT EXISTS slurm_acct_db; "
               f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'; "
               f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        self._wait(lambda: subprocess.run(
            [_which("mariadb"), "--no-defaults", f"--socket={socket_path}", "-uroot", "-e", sql],
            capture_output=True).returncode == 0, "MariaDB to accept connections")

    def _write_configs(self) -> None:
        s, etc = self.state, self.state / "etc"
        ports = {"ctld": _free_port(), "slurmd": _free_port(), "dbd": _free_port()}
        dbd = etc / "slurmdbd.conf"
        dbd.write_text("\n".join([
            "AuthType=auth/munge", "DbdHost=localhost", f"DbdPort={ports['dbd']}",
            "SlurmUser=root", f"LogFile={s / 'log' / 'slurmdbd.log'}",
            f"PidFile={s / 'run' / 'slurmdbd.pid'}", "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1", f"StoragePort={self.db_port}", "StorageUser=slurm",
            f"StoragePass={DB_PASSWORD}", "StorageLoc=slurm_acct_db", ""]))
        dbd.chmod(0o600)
        gpus = []
        for k in range(2):
            dev = s / "dev" / f"fakegpu{k}"
            if not dev.exists():
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # a character device
            gpus.append(dev)
        (etc / "gres.conf").write_text(
            f"NodeName={self.host} Name=gpu File={s / 'dev'}/fakegpu[0-1]\n")
        (etc / "slurm.conf").write_text("\n".join([
            f"ClusterName={CLUSTER}", f"SlurmctldHost={self.host}",
            f"SlurmctldPort={ports['ctld']}", f"SlurmdPort={ports['slurmd']}",
            "SlurmUser=root", "AuthType=auth/munge",
            f"StateSaveLocation={s / 'state'}", f"SlurmdSpoolDir={s / 'spool'}",
            f"SlurmctldPidFile={s / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={s / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={s / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={s / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/builtin", "ReturnToService=2", f"KillWait={KILL_WAIT_S}",
            "PreemptType=preempt/partition_prio", "PreemptMode=CANCEL",
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStoreFlags=job_comment", "AccountingStorageTRES=gres/gpu",
            "AccountingStorageHost=localhost", f"AccountingStoragePort={ports['dbd']}",
            "JobAcctGatherType=jobacct_gather/linux", "GresTypes=gpu",
            f"NodeName={self.host} CPUs=2 RealMemory={MEMORY_MB} Gres=gpu:2 State=UNKNOWN",
            f"PartitionName=cpu Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=gpu Nodes={self.host} MaxTime=INFINITE State=UP PriorityTier=1 "
            f"GraceTime={GRACE_TIME_S}",
            f"PartitionName=urgent Nodes={self.host} MaxTime=INFINITE State=UP PriorityTier=10",
            ""]))

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() or SYSTEM_CONF.exists():
            SYSTEM_CONF.unlink()  # a stale link of an earlier test cluster (checked above)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.state / "etc" / "slurm.conf")

    def _unlink_system_conf(self) -> None:
        ours = self.state / "etc" / "slurm.conf"
        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == ours:
            SYSTEM_CONF.unlink()

    def _start_daemon(self, name: str, pid: Path, args: list[str]) -> None:
        proc = subprocess.run([_which(name), *args], capture_output=True, text=True,
                              env={**os.environ, **self.env}, timeout=60)
        if proc.returncode != 0:
            raise ClusterError(f"{name} did not start: {proc.stderr.strip()}")
        self._wait(pid.exists, f"{name} to write {pid}")
        self.started.append((name, pid))

    def _node_idle(self) -> bool:
        proc = self._run("sinfo", "-h", "-N", "-o", "%t", check=False)
        state = proc.stdout.strip().splitlines()
        if any(s.startswith(("drain", "down")) for s in state):
            self._run("scontrol", "update", f"nodename={self.host}", "state=resume",
                      check=False)
        return bool(state) and all(s == "idle" for s in state)

    @staticmethod
    def _wait(ready, what: str, timeout_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise ClusterError(f"timed out waiting for {what}")

    # -------------------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop every daemon this object started, newest first, each by its pid."""
        for name, pid_file in reversed(self.started):
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30
            while time.time() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            print(f"stopped {name} (pid {pid})", file=sys.stderr)
        self.started.clear()
        self._unlink_system_conf()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is not alive
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _pids_in(state: Path) -> list[tuple[str, Path]]:
    order = [("munged", state / "munge" / "munged.pid"),
             ("mariadbd", state / "run" / "mariadb.pid"),
             ("slurmdbd", state / "run" / "slurmdbd.pid"),
             ("slurmctld", state / "run" / "slurmctld.pid"),
             ("slurmd", state / "run" / "slurmd.pid")]
    return [(n, p) for n, p in order if p.exists()]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = LocalCluster(Path(argv[1]).resolve())
    if argv[0] == "start":
        cluster.start()
        print(f"export SLURM_CONF={cluster.env['SLURM_CONF']}")
    else:
        cluster.started = _pids_in(cluster.state)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
