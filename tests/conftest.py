"""Shared fixtures: small configs and deterministic seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ldarnet.model.config import ModelConfig, config_from_dict, load_model_config

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "config" / "models"

# The real-cluster tier (tests/slurm/) starts SLURM daemons and runs the workflow for
# minutes: only `make test-slurm` collects it (LDARNET_TEST_TIER=slurm).
collect_ignore_glob = [] if os.environ.get("LDARNET_TEST_TIER") == "slurm" else ["slurm/*"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    return load_model_config(MODELS / "ldarnet-tiny.yaml")


def small_cfg(**overrides) -> ModelConfig:
    """A very small config (fast in float64) with optional field overrides."""
    data = {
        "name": "test",
        "arch_layout": ["m1t1", ["M1"], "m1"],
        "d_model": [16, 24],
        "d_intermediate": [0, 32],
        "ssm": {"d_state": 4, "headdim": 8, "chunk_size": 8},
        "attn": {"num_heads": [2, 2], "rotary_emb_dim": [8, 8], "window_size": [5, -1]},
    }
    data.update(overrides)
    return config_from_dict(data)
