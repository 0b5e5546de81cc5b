"""Parameter accounting of a model config, without allocating its weights.

The model is built on PyTorch's ``meta`` device, so counting the 110M model costs no
memory and no time; tied parameters (BiMamba-2's shared projections) count once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from ldarnet.model.config import ModelConfig
from ldarnet.model.network.init import residual_heights
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.param_groups import parameter_stages, stage_lr_multipliers


def build_meta_model(cfg: ModelConfig) -> LDARNet:
    """An LDARNet whose tensors have shapes but no storage."""
    with torch.device("meta"):
        return LDARNet(cfg)


def component_counts(model: LDARNet) -> dict[str, int]:
    """Parameters per named component; inner stages are prefixed ``stage<k>.``."""
    counts: dict[str, int] = {
        "embeddings": model.embeddings.weight.numel(),
        "lm_head": model.lm_head.weight.numel(),
    }
    stage, index = model.hierarchy, 0
    while True:
        prefix = f"stage{index}." if index else ""
        if stage.pad_dimension is not None:
            counts[prefix + "pad_dimension"] = stage.pad_dimension.numel()
        if stage.is_innermost:
            counts[prefix + "main_network"] = _count(stage.main_network)
            return counts
        for part in ("encoder", "routing_module", "residual_proj", "decoder"):
            counts[prefix + part] = _count(getattr(stage, part))
        stage, index = stage.main_network, index + 1


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_summary(cfg: ModelConfig) -> dict[str, Any]:
    """Counts per stage and per component, LR multipliers and residual heights."""
    model = build_meta_model(cfg)
    stage_of = parameter_stages(model)
    per_stage: dict[int, int] = defaultdict(int)
    for param in model.parameters():  # unique parameters: tied projections count once
        per_stage[stage_of[id(param)]] += param.numel()
    stages = cfg.num_stages
    return {
        "name": cfg.name,
        "parameters": sum(per_stage.values()),
        "parameters_outer": per_stage[0],
        "parameters_backbone": sum(per_stage[s] for s in range(1, stages)),
        "parameters_per_stage": [per_stage[s] for s in range(stages)],
        "parameters_per_component": component_counts(model),
        "layout": cfg.arch_layout,
        "d_model": list(cfg.d_model),
        "lr_multipliers": stage_lr_multipliers(cfg),
        "residual_heights": residual_heights(model),
        "boundaries": cfg.routing.boundaries,
        "target_ratio": list(cfg.routing.target_ratio),
    }
