"""Time to build the paper-scale DAG with the slurm profile (goal < 30 s on 2 cores).

Runs the real command a user types for a dry run, ``snakemake --profile slurm all -n``,
from the repository root (no cluster needed: dry runs never call sbatch), median of 3,
and counts the jobs of the DAG. The profile is the project's, found as after
``make slurm-profile`` (a link under a temporary ``XDG_CONFIG_HOME``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _dry_run(*args: str, env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, *args, "-n", "--quiet", "rules"], cwd=ROOT,
                          capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - start
    match = re.search(r"^total\s+(\d+)$", proc.stdout, re.MULTILINE)
    return seconds, int(match.group(1)) if match else 0


def run(repeats: int = 3) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "snakemake").mkdir()
        (Path(home) / "snakemake" / "slurm").symlink_to(ROOT / "workflow" / "profiles" / "slurm")
        env = {**os.environ, "XDG_CONFIG_HOME": home}
        for label, args in (("paper, slurm profile", ("--profile", "slurm", "all", "--forceall")),
                            ("demo, local", ("--configfile", "config/demo.yaml", "--cores", "2",
                                             "--forceall"))):
            runs = [_dry_run(*args, env=env) for _ in range(repeats)]
            results[label] = {"seconds": sorted(t for t, _ in runs)[len(runs) // 2],
                              "jobs": runs[0][1]}
    return results


def markdown(r: dict) -> str:
    rows = "\n".join(f"| {label} | {v['jobs']:,} | {v['seconds']:.1f} |" for label, v in r.items())
    return (
        "## Building the DAG (dry run)\n\n"
        "`snakemake --profile slurm all -n` from the repository root, median of 3 (includes "
        "Python start-up and config validation). Goal: < 30 s on 2 cores for the full paper "
        "DAG; the job count grows as stages are added.\n\n"
        "| DAG | jobs | seconds |\n|---|---:|---:|\n"
        f"{rows}\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
