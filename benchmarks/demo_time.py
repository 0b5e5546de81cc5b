"""Wall time of the whole demo DAG on this machine, from empty results to the HTML report.

What `make demo` runs after the install: every rule of config/demo.yaml with
``--cores 2`` (genome, pretraining of the learned and fixed-grid arms, grid + CV on the
demo tasks, the boundary analyses, every table and figure), then ``--report``. It runs in
a scratch directory that links config/ and resources/, so results/ of the repository are
neither reused nor touched. Goal: ≤ 10 minutes on 2 cores. Per-rule times come from the
``benchmark:`` files each job writes (seconds of wall time of the job itself).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
GOAL_S = 600


def _snakemake(work: Path, *args: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
                    "--configfile", "config/demo.yaml", *args],
                   check=True, capture_output=True, text=True, env=env)


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="ldarnet-bench-demo-") as scratch:
        work = Path(scratch)
        for name in ("config", "resources"):
            (work / name).symlink_to(ROOT / name)
        start = time.perf_counter()
        _snakemake(work, "--cores", "2")
        dag_s = time.perf_counter() - start
        _snakemake(work, "--report", "results/report.html")
        total_s = time.perf_counter() - start
        per_rule: dict[str, list[float]] = defaultdict(list)
        for path in (work / "results" / "benchmarks").rglob("*.tsv"):
            rule = path.relative_to(work / "results" / "benchmarks").parts[0]
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            per_rule[rule].append(float(rows[-1]["s"]))
    return {"dag_s": dag_s, "total_s": total_s, "jobs": sum(len(v) for v in per_rule.values()),
            "per_rule": {k: (len(v), sum(v)) for k, v in per_rule.items()}}


def markdown(r: dict) -> str:
    ranked = sorted(r["per_rule"].items(), key=lambda kv: -kv[1][1])
    rows = "\n".join(f"| {rule} | {n} | {seconds:.0f} |" for rule, (n, seconds) in ranked)
    verdict = "within" if r["total_s"] <= GOAL_S else "over"
    return (
        "## The demo DAG (`make demo`)\n\n"
        "Every rule of config/demo.yaml from empty results, `--cores 2`, then the HTML report "
        "(what `make demo` runs after the install; benchmarks/demo_time.py).\n\n"
        f"- whole DAG: **{r['dag_s'] / 60:.1f} min** ({r['jobs']} jobs); with the report: "
        f"**{r['total_s'] / 60:.1f} min**, {verdict} the 10-minute goal.\n\n"
        "Job time per rule (seconds of the jobs themselves; jobs run two at a time, so "
        "the sum exceeds the wall time):\n\n"
        "| rule | jobs | job seconds |\n|---|---:|---:|\n"
        f"{rows}\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
