"""Analytic FLOP counter: hand-checked components and the ablation's matching property."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import MODELS
from ldarnet.model.config import load_model_config
from ldarnet.model.flops import attention_pairs, forward_flops, ssd_flops, stack_flops
from ldarnet.model.layout import parse_layout_string
from ldarnet.model.network.ldarnet import LDARNet


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


@pytest.mark.parametrize("name", ["ldarnet-tiny.yaml", "ldarnet-2m.yaml"])
def test_agrees_with_pytorch_flop_counter(name: str) -> None:
    """Exact agreement with torch's FlopCounterMode on everything it counts.

    The PyTorch counter sees matmuls (mm, bmm, addmm) only: here it misses the attention
    scores (SDPA on CPU is not registered), the depthwise conv (computed as element-wise
    multiply-adds) and the router's cosines, so those analytic terms are set aside.
    """
    cfg = load_model_config(MODELS / name)
    cfg = dataclasses.replace(cfg, routing=dataclasses.replace(cfg.routing,
                                                               boundaries="fixed_grid"))
    length = 512
    model = LDARNet(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randint(0, 4, (1, length)))
    analytic = forward_flops(cfg, length, inner_lengths=[length // 4])["total"]
    ssm, (d0, d1) = cfg.ssm, cfg.d_model

    def conv(d: int, n: int) -> int:  # two directions per BiMamba-2 layer
        return 2 * 2 * n * (ssm.expand * d + 2 * ssm.ngroups * ssm.d_state) * ssm.d_conv

    outer = parse_layout_string(cfg.arch_layout[0]) + parse_layout_string(cfg.arch_layout[2])
    inner = parse_layout_string(cfg.arch_layout[1][0])
    unseen = sum(conv(d0, length) for layer in outer if layer.mixer == "mamba")
    unseen += sum(conv(d1, length // 4) for layer in inner if layer.mixer == "mamba")
    unseen += sum(4 * attention_pairs(length, cfg.attn.window_size[0]) * d0
                  for layer in outer if layer.mixer == "attention")
    unseen += 4 * length * d0  # router cosines
    assert counter.get_total_flops() == analytic - unseen
