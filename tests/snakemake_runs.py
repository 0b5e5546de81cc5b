"""Running the real ``snakemake`` command in tests, as a user types it.

Profiles are a command-line feature of Snakemake (its Python API does not read them), so
every test that involves a profile runs the command in a subprocess. ``profile_home``
installs the project's profile the way ``make slurm-profile`` does (a link in
``$XDG_CONFIG_HOME/snakemake/slurm``), so ``--profile slurm`` resolves as documented.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
VENV_BIN = str(Path(sys.executable).parent)
SITE = {"LDARNET_SLURM_ACCOUNT": "proj42", "LDARNET_SLURM_PARTITION": "cpuq",
        "LDARNET_SLURM_GPU_PARTITION": "gpuq"}


def snakemake(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 180,
              clean_env: bool = False) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` in ``cwd``; ``env`` is added to (or, clean, replaces) os.environ."""
    base = {} if clean_env else dict(os.environ)
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})})


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    block = output.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def workflow_copy(tmp_path: Path, name: str = "repo") -> Path:
    """The workflow's files in a scratch directory, so that a real run leaves the repo clean."""
    work = tmp_path / name
    work.mkdir()
    for entry in ("Snakefile", "workflow", "config", "resources", "envs"):
        src = ROOT / entry
        if src.is_dir():
            shutil.copytree(src, work / entry, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, work / entry)
    return work


def profile_home(tmp_path: Path, work: Path) -> dict[str, str]:
    """Environment in which ``--profile slurm`` finds ``work``'s profile (make slurm-profile)."""
    home = tmp_path / "xdg"
    (home / "snakemake").mkdir(parents=True, exist_ok=True)
    link = home / "snakemake" / "slurm"
    if not link.exists():
        link.symlink_to(work / "workflow" / "profiles" / "slurm")
    return {"XDG_CONFIG_HOME": str(home)}


def stub_slurm(tmp_path: Path, state: str = "FAILED") -> tuple[Path, Path]:
    """sbatch/sacct/... stand-ins: sbatch records its command line, sacct reports ``state``.

    Only for checking what would be submitted; whether SLURM accepts it is what the
    real-cluster tests (tests/slurm/) check.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "sbatch.log"
    scripts = {
        "sbatch": f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\necho 4242\n',
        "sacct": f"#!/bin/sh\necho '4242|{state}'\n",
    }
    for name in ("sacctmgr", "sshare", "scontrol", "sinfo", "squeue"):
        scripts[name] = "#!/bin/sh\nexit 0\n"
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir, log
