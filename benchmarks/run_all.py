"""Run the benchmarks and write docs/performance.md (``make bench``).

``python benchmarks/run_all.py dag_build`` reruns only the named benchmarks and keeps the
other sections of docs/performance.md as they were measured (each section names its own
run; ratios are only ever compared within one section).

``gpu_speed`` needs a CUDA GPU: on a machine without one it is not run, and its section is
kept as last measured on a GPU (or left out if it never was), so ``make bench`` on a CPU
machine neither fails nor overwrites GPU numbers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import (  # noqa: E402
    ablation_speed,
    dag_build,
    demo_time,
    gpu_speed,
    model_speed,
    paper_resources,
    pretrain_speed,
    segment_speed,
    ssd_scan,
    tiling,
)
from benchmarks.common import machine_line  # noqa: E402

BENCHMARKS = {"ssd_scan": ssd_scan, "model_speed": model_speed, "tiling": tiling,
              "pretrain_speed": pretrain_speed, "segment_speed": segment_speed,
              "ablation_speed": ablation_speed, "dag_build": dag_build, "demo_time": demo_time,
              "gpu_speed": gpu_speed, "paper_resources": paper_resources}
# Benchmarks that can only run on a CUDA GPU.
NEEDS_CUDA = {"gpu_speed"}


# The first heading each benchmark writes: a module's section runs to the next one's.
FIRST_HEADING = {"ssd_scan": "## SSD scan", "model_speed": "## Training step",
                 "tiling": "## Genome stage", "pretrain_speed": "## Pretraining on CPU",
                 "segment_speed": "## Boundary segmentation",
                 "ablation_speed": "## Ablation arms", "dag_build": "## Building the DAG",
                 "demo_time": "## The demo DAG",
                 "gpu_speed": "## GPU training",
                 "paper_resources": "## Reproducing the paper"}


def _existing_sections(path: Path) -> dict[str, str]:
    """The current text of docs/performance.md for each benchmark."""
    if not path.is_file():
        return {}
    text = path.read_text()
    starts = sorted((text.find(head), name) for name, head in FIRST_HEADING.items()
                    if text.find(head) >= 0)
    bounds = [pos for pos, _ in starts] + [len(text)]
    return {name: text[pos:bounds[i + 1]] for i, (pos, name) in enumerate(starts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", choices=list(BENCHMARKS), metavar="NAME",
                        help="benchmarks to rerun (default: all)")
    names = parser.parse_args().only or list(BENCHMARKS)
    os.chdir(ROOT)
    path = ROOT / "docs" / "performance.md"
    kept = _existing_sections(path)
    sections = []
    has_cuda = torch.cuda.is_available()
    for name, module in BENCHMARKS.items():
        runnable = has_cuda or name not in NEEDS_CUDA
        if runnable and (name in names or name not in kept):
            sections.append(module.markdown(module.run()))
        elif name in kept:
            if name in names and not runnable:
                print(f"{name}: needs CUDA, not run here; keeping its last measured section")
            sections.append(kept[name].rstrip("\n") + "\n")
        elif name in names:
            print(f"{name}: needs CUDA, not run here (no section yet)")
    header = (
        "# Performance\n\n"
        "Written by `make bench` (benchmarks/run_all.py); every ratio is measured side by "
        "side in one run on the same machine. Do not edit by hand.\n\n"
        f"Measured {datetime.date.today().isoformat()} on: {machine_line()}.\n\n"
    )
    text = header + "\n".join(sections)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(text)


if __name__ == "__main__":
    main()
