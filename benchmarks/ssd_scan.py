"""Chunked SSD scan vs the sequential recurrence (goal: ≥ 40x at L = 4,096).

Shapes of one LDARNet-110M outer-stage direction: d_model 512 → 16 heads × 64,
d_state 128, one group, batch 1, L = 4,096, float32, forward pass. The chunk size is
swept and the fastest is reported (the maths is the same at every chunk size).
"""

from __future__ import annotations

import torch

from benchmarks.common import matmul_peak_flops, median_seconds
from ldarnet.model.flops import ssd_flops
from ldarnet.model.network.ssd import ssd_chunked, ssd_sequential

CHUNK_SIZES = (32, 64, 128, 256)


def run(length: int = 4096, heads: int = 16, headdim: int = 64, d_state: int = 128) -> dict:
    torch.manual_seed(0)
    x = torch.randn(1, length, heads, headdim)
    dt = torch.rand(1, length, heads) * 0.1 + 0.001
    A = -torch.rand(heads) * 15 - 1
    B = torch.randn(1, length, 1, d_state)
    C = torch.randn(1, length, 1, d_state)
    D = torch.ones(heads)
    with torch.no_grad():
        sequential = median_seconds(lambda: ssd_sequential(x, dt, A, B, C, D), repeats=3)
        chunked = {
            q: median_seconds(lambda q=q: ssd_chunked(x, dt, A, B, C, q, D), repeats=5)
            for q in CHUNK_SIZES
        }
        best = min(chunked, key=chunked.get)
        err = (ssd_chunked(x, dt, A, B, C, best, D) - ssd_sequential(x, dt, A, B, C, D)).abs()
    peak = matmul_peak_flops()
    flops = ssd_flops(length, heads, headdim, 1, d_state, best)
    # the recurrence's own work: state update and read-out, 2 multiply-adds per state entry
    recurrence_flops = 4 * length * heads * headdim * d_state
    return {
        "peak_flops_per_s": peak,
        "chunked_flops": flops,
        "floor_s": flops / peak,
        "recurrence_flops": recurrence_flops,
        "length": length,
        "sequential_s": sequential,
        "chunked_s": chunked,
        "best_chunk": best,
        "speedup": sequential / chunked[best],
        "max_abs_diff": float(err.max()),
    }


def markdown(r: dict) -> str:
    rows = "\n".join(
        f"| chunked, chunk {q} | {t * 1e3:.1f} | {r['sequential_s'] / t:.0f}x |"
        for q, t in r["chunked_s"].items()
    )
    return (
        "## SSD scan: chunked vs sequential recurrence\n\n"
        f"L = {r['length']:,}, 16 heads × 64, d_state 128, batch 1, float32, forward. "
        "Goal ≥ 40x.\n\n"
        "| implementation | time (ms) | speed-up |\n|---|---:|---:|\n"
        f"| sequential recurrence | {r['sequential_s'] * 1e3:.1f} | 1x |\n{rows}\n\n"
        f"**Best: chunk {r['best_chunk']}, {r['speedup']:.0f}x faster** "
        f"(max |difference| {r['max_abs_diff']:.1e}).\n\n"
        "Why not 40x here: both algorithms must form and read every state entry "
        f"(h·p·n = 131,072 per token), {r['recurrence_flops'] / 1e9:.2f} GFLOP for the "
        f"recurrence; the chunked form adds its within-chunk quadratic part, "
        f"{r['chunked_flops'] / 1e9:.2f} GFLOP in all at chunk {r['best_chunk']}. At the "
        f"float32 matmul peak measured in the same run ({r['peak_flops_per_s'] / 1e9:.0f} "
        f"GFLOP/s) that takes at least {r['floor_s'] * 1e3:.1f} ms, so no chunked scan can "
        f"beat the sequential loop by more than {r['sequential_s'] / r['floor_s']:.0f}x on "
        "this machine; the loop itself is memory-bound rather than slow. The chunked scan "
        f"runs at {r['chunked_flops'] / r['chunked_s'][r['best_chunk']] / 1e9:.0f} GFLOP/s; "
        "the rest of its time goes to memory-bound element-wise passes over the "
        "(L·heads·chunk) decay tensor.\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
