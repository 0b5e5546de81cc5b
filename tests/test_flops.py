"""Analytic FLOP counter: hand-checked components and the ablation's matching property."""

from __future__ import annotations

import dataclasses

from conftest import MODELS
from ldarnet.model.config import load_model_config
from ldarnet.model.flops import attention_pairs, forward_flops, ssd_flops, stack_flops


def test_attention_pairs_brute_force() -> None:
    for length in (1, 5, 40, 100):
        for window in (-1, 0, 1, 7, 39, 200):
            expected = sum(
                1 for i in range(length) for j in range(length)
                if window < 0 or abs(i - j) <= window
            )
            assert attention_pairs(length, window) == expected, (length, window)


def test_projection_flops_equal_twice_the_weights_per_token() -> None:
    cfg = load_model_config(MODELS / "ldarnet-110m.yaml")
    # SwiGLU layer at 768: 2 FLOPs per weight per token (5,898,240 weights)
    length = 1000
    mamba_only = stack_flops(cfg, "m1", 1, length)
    with_mlp = stack_flops(cfg, "M1", 1, length)
    assert with_mlp - mamba_only == 2 * 5_898_240 * length


def test_ssd_flops_formula() -> None:
    # Q = 4, length 10 -> padded to 12
    assert ssd_flops(10, heads=2, headdim=3, groups=1, d_state=5, chunk_size=4) == (
        12 * 4 * (2 * 1 * 5 + 2 * 2 * 3) + 12 * 4 * 2 * 3 * 5
    )


def test_learned_and_fixed_grid_match_at_equal_compression() -> None:
    cfg = load_model_config(MODELS / "ldarnet-110m.yaml")
    grid = dataclasses.replace(cfg, routing=dataclasses.replace(cfg.routing,
                                                                boundaries="fixed_grid"))
    learned = forward_flops(cfg, 4096, inner_lengths=[1024])
    assert forward_flops(grid, 4096, inner_lengths=[1024]) == learned
    # the backbone dominates and scales with the compressed length
    half = forward_flops(cfg, 4096, inner_lengths=[512])
    assert half["stage1.main_network"] < 0.55 * learned["stage1.main_network"]
    assert learned["total"] == sum(v for k, v in learned.items() if k != "total")
