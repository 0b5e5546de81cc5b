"""Run every benchmark and write docs/performance.md (``make bench``)."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    dag_build,
    model_speed,
    pretrain_speed,
    segment_speed,
    ssd_scan,
    tiling,
)
from benchmarks.common import machine_line  # noqa: E402


def main() -> None:
    os.chdir(ROOT)
    sections = [
        ssd_scan.markdown(ssd_scan.run()),
        model_speed.markdown(model_speed.run()),
        tiling.markdown(tiling.run()),
        pretrain_speed.markdown(pretrain_speed.run()),
        segment_speed.markdown(segment_speed.run()),
        dag_build.markdown(dag_build.run()),
    ]
    header = (
        "# Performance\n\n"
        "Written by `make bench` (benchmarks/run_all.py); every ratio is measured side by "
        "side in one run on the same machine. Do not edit by hand.\n\n"
        f"Measured {datetime.date.today().isoformat()} on: {machine_line()}.\n\n"
    )
    path = ROOT / "docs" / "performance.md"
    text = header + "\n".join(sections)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(text)


if __name__ == "__main__":
    main()
