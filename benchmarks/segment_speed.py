"""Boundary segmentation throughput on the CPU (``ldarnet segment``, ``segment_tokens``).

Real DNA from the shipped hg38 slice (from chr2:100,000, past the telomeric N run) is
segmented with the default tiling (tile 4,096, margin 512, batch 8) by a randomly
initialised ``ldarnet-tiny`` (300 kb) and ``ldarnet-110m`` (20 kb, so that the run stays
around a minute): speed does not depend on the weights. One timed run after a warm-up
(a whole batch for the tiny model, one tile for the 110M model). Throughput counts
output bases per second: each 4,096-base call decides 3,072 of them, so 25 % of the
compute is context.

The stage-0 shortcut (embedding → encoder → router only, see ldarnet/analysis/segment.py)
is compared with the full forward on one batch of 8 tiles of the tiny model, since
that ratio is what the shortcut saves.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import median_seconds
from ldarnet.analysis.segment import segment_tokens, stage0_router
from ldarnet.data.fasta import read_fasta
from ldarnet.data.tokenizer import encode
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"
START = 100_000
TILE, MARGIN, BATCH = 4096, 512, 8
# (model, bases timed, bases of the warm-up run: a whole batch where that is cheap, since
# the first call of each batch shape is several times slower)
CASES = (("ldarnet-tiny", 300_000, 30_000), ("ldarnet-110m", 20_000, TILE))
HG38_BASES = 3_099_922_541  # total length of the UCSC hg38 assembly, for the projection


def _model(name: str) -> LDARNet:
    torch.manual_seed(0)
    return LDARNet(load_model_config(ROOT / "config" / "models" / f"{name}.yaml")).eval()


def _shortcut_ratio(model: LDARNet, ids: np.ndarray) -> dict:
    """Seconds of one batch of tiles: full forward vs the stage-0 router path."""
    step = TILE - 2 * MARGIN
    batch = torch.from_numpy(
        np.stack([ids[i * step : i * step + TILE] for i in range(BATCH)]).astype(np.int64))
    with torch.no_grad():
        full = median_seconds(lambda: model(batch), repeats=3)
        router = median_seconds(lambda: stage0_router(model, batch), repeats=3)
    return {"full_s": full, "router_s": router, "speedup": full / router}


def run(cases: tuple[tuple[str, int, int], ...] = CASES) -> dict:
    seq = read_fasta(SLICE)["chr2"]
    models = {}
    shortcut = None
    for name, bases, warmup in cases:
        model = _model(name)
        ids = encode(seq[START : START + bases])
        segment_tokens(model, ids[:warmup], TILE, MARGIN, BATCH, offset=START)
        began = time.perf_counter()
        segment_tokens(model, ids, TILE, MARGIN, BATCH, offset=START)
        seconds = time.perf_counter() - began
        models[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "bases": bases,
            "seconds": seconds,
            "bases_per_s": bases / seconds,
        }
        if name == "ldarnet-tiny":
            shortcut = _shortcut_ratio(model, ids)
    return {"tile": TILE, "margin": MARGIN, "batch_size": BATCH,
            "threads": torch.get_num_threads(), "models": models, "shortcut": shortcut}


def markdown(r: dict) -> str:
    rows = "\n".join(
        f"| `{name}` | {m['parameters']:,} | {m['bases']:,} | {m['seconds']:.1f} | "
        f"{m['bases_per_s']:,.0f} | {HG38_BASES / m['bases_per_s'] / 3600:,.0f} |"
        for name, m in r["models"].items()
    )
    text = (
        "## Boundary segmentation (`ldarnet segment`)\n\n"
        f"CPU, {r['threads']} thread(s), real hg38 DNA (shipped slice), tile {r['tile']:,}, "
        f"margin {r['margin']}, batch {r['batch_size']}, random init (speed does not depend "
        "on the weights); one run after a warm-up.\n\n"
        "| model | parameters | bases | time (s) | bases/s | hg38 on this CPU (h) |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        f"{rows}\n"
    )
    if r["shortcut"]:
        s = r["shortcut"]
        text += (
            f"\nOnly stage 0's encoder and router run: on one batch of {r['batch_size']} "
            f"tiles of `ldarnet-tiny` that takes {s['router_s']:.2f} s against "
            f"{s['full_s']:.2f} s for the full forward ({s['speedup']:.1f}x), with "
            "bit-identical p and b.\n"
        )
    return text


if __name__ == "__main__":
    print(markdown(run()))
