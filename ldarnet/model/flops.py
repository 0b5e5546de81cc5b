"""Analytic FLOP count of an LDARNet forward pass.

Counts the matmul-class work (a multiply-add = 2 FLOPs) of every component for one
sequence of ``length`` tokens, given how many tokens each inner stage receives (for a
trained router ~length/N; exactly length/stride for a fixed grid). Element-wise
operations (norms, activations, gating, masks) are left out: they are < 2 % here and
memory-bound. This is the accounting behind "FLOPs-matched" in the ablation and the
achieved-FLOP/s figure of the benchmarks. A training step costs ~3x the forward.

The SSD scan is counted as the chunked algorithm performs it at ``chunk_size`` Q: per
token ``Q·(2·g·n + 2·h·p)`` for the within-chunk quadratic form (full Q×Q blocks, as
computed), plus ``4·h·p·n`` for chunk states and their read-out.
"""

from __future__ import annotations

from collections import defaultdict

from ldarnet.model.config import ModelConfig
from ldarnet.model.layout import parse_layout_string
from ldarnet.model.network.mlp import round_intermediate


def ssd_flops(length: int, heads: int, headdim: int, groups: int, d_state: int,
              chunk_size: int) -> int:
    """FLOPs of one chunked SSD scan over ``length`` tokens."""
    q = min(chunk_size, max(length, 1))
    padded = -(-length // q) * q
    intra = padded * q * (2 * groups * d_state + 2 * heads * headdim)
    states = padded * 4 * heads * headdim * d_state
    return intra + states


def attention_pairs(length: int, window: int) -> int:
    """Number of (query, key) pairs with |i - j| <= window (window -1: all pairs)."""
    if window < 0 or window >= length - 1:
        return length * length
    w = window
    # full rows have 2w+1 keys; the first and last w rows lose a triangle each
    return length * (2 * w + 1) - w * (w + 1)


def bimamba_flops(cfg: ModelConfig, d: int, length: int) -> int:
    """One BiMamba-2 mixer: shared projections applied once, two convs and scans."""
    ssm = cfg.ssm
    d_inner = ssm.expand * d
    heads = d_inner // ssm.headdim
    conv_dim = d_inner + 2 * ssm.ngroups * ssm.d_state
    d_in_proj = d_inner + conv_dim + heads
    proj = 2 * length * d * d_in_proj + 2 * length * d_inner * d
    per_direction = 2 * length * conv_dim * ssm.d_conv + ssd_flops(
        length, heads, ssm.headdim, ssm.ngroups, ssm.d_state, ssm.chunk_size
    )
    return proj + 2 * per_direction


def stack_flops(cfg: ModelConfig, layout: str, stage: int, length: int) -> int:
    """A residual stack of ``layout`` at ``stage`` over ``length`` tokens."""
    d = cfg.d_model[stage]
    total = 0
    for layer in parse_layout_string(layout):
        if layer.mixer == "mamba":
            total += bimamba_flops(cfg, d, length)
        else:
            _, _, window = cfg.attn_for_stage(stage)
            total += 2 * length * d * 3 * d + 2 * length * d * d  # Wqkv, out_proj
            total += 2 * 2 * attention_pairs(length, window) * d  # QK^T and AV
        if layer.mlp:
            hidden = round_intermediate(cfg.d_intermediate[stage])
            total += 2 * length * d * 2 * hidden + 2 * length * hidden * d
    return total


def forward_flops(
    cfg: ModelConfig, length: int, inner_lengths: list[int] | None = None
) -> dict[str, int]:
    """FLOPs per component for one sequence; ``inner_lengths[s]`` = tokens of stage s+1.

    By default each inner stage receives ``length / N`` tokens of its parent (the
    trained compression). Keys: ``stage<s>.<component>`` and ``total``.
    """
    out: dict[str, int] = defaultdict(int)
    d0 = cfg.d_model[0]
    out["lm_head"] = 2 * length * d0 * cfg.vocab_size
    layout, stage, n = cfg.arch_layout, 0, length
    while True:
        d = cfg.d_model[stage]
        key = f"stage{stage}."
        if len(layout) == 1:
            out[key + "main_network"] = stack_flops(cfg, layout[0], stage, n)
            break
        if inner_lengths is not None and stage < len(inner_lengths):
            m = inner_lengths[stage]
        else:
            m = max(1, round(n / cfg.target_ratio_for_stage(stage)))
        out[key + "encoder"] = stack_flops(cfg, layout[0], stage, n)
        out[key + "router"] = 2 * 2 * n * d * d + 4 * n * d  # q, k projections + cosines
        out[key + "residual_proj"] = 2 * n * d * d
        out[key + "dechunk"] = 2 * ssd_flops(m, 1, d, 1, 1, cfg.ssm.chunk_size)  # both EMAs
        out[key + "decoder"] = stack_flops(cfg, layout[2], stage, n)
        layout, stage, n = layout[1], stage + 1, m
    out["total"] = sum(out.values())
    return dict(out)


def training_step_flops(cfg: ModelConfig, length: int, batch: int = 1,
                        inner_lengths: list[int] | None = None) -> int:
    """Forward + backward ≈ 3 x forward, for ``batch`` sequences."""
    return 3 * batch * forward_flops(cfg, length, inner_lengths)["total"]
