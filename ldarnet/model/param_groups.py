"""Optimizer parameter groups: per-stage LR multipliers and weight-decay exemptions.

Spec 3.5-3.6. The outer stage of a hierarchy sees ~N times more tokens per step than
the backbone and is narrower, so it trains with a larger learning rate:
``λ_s = sqrt(prod_{k>=s} N_k) · d_innermost / d_s`` (3.0 for LDARNet-110M:
sqrt(4)·768/512; 4.0 for the 2M model; 1.0 for the innermost stage). Everything
outside a nested stage (embedding, LM head) belongs to stage 0. Weight decay is off
for biases, norm weights and Mamba's ``dt_bias``, ``A_log`` and ``D``.
"""

from __future__ import annotations

import math

from torch import nn

from ldarnet.model.config import ModelConfig

_NO_DECAY_NAMES = ("dt_bias", "A_log", "D")


def stage_lr_multipliers(cfg: ModelConfig) -> list[float]:
    """λ per stage, outer first."""
    stages = cfg.num_stages
    d_inner = cfg.d_model[stages - 1]
    out = []
    for s in range(stages):
        ratio = math.prod(cfg.target_ratio_for_stage(k) for k in range(s, stages - 1))
        out.append(math.sqrt(ratio) * d_inner / cfg.d_model[s])
    return out


def parameter_stages(model: nn.Module) -> dict[int, int]:
    """Stage index per parameter (keyed by ``id``): the innermost stage containing it."""
    stage_of = {id(p): 0 for p in model.parameters()}
    stage, index = model.hierarchy, 0
    while True:
        for p in stage.parameters():  # deeper stages overwrite as we descend
            stage_of[id(p)] = index
        if stage.is_innermost:
            return stage_of
        stage, index = stage.main_network, index + 1


def uses_weight_decay(name: str, param: nn.Parameter) -> bool:
    """False for biases, norms, Mamba's dt_bias/A_log/D (and params flagged no-WD)."""
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith(".bias") or "norm" in name or leaf in _NO_DECAY_NAMES:
        return False
    return not getattr(param, "_no_weight_decay", False)


def parameter_groups(
    model: nn.Module, base_lr: float, weight_decay: float, cfg: ModelConfig | None = None
) -> list[dict]:
    """AdamW groups, one per unique (LR multiplier, weight decay) pair.

    Each group carries ``lr_multiplier`` so a schedule can rescale ``lr`` per step.
    """
    cfg = cfg or model.config
    multipliers = stage_lr_multipliers(cfg)
    stage_of = parameter_stages(model)
    groups: dict[tuple[float, float], dict] = {}
    for name, param in model.named_parameters():  # tied params appear once
        if not param.requires_grad:
            continue
        lam = multipliers[stage_of[id(param)]]
        wd = weight_decay if uses_weight_decay(name, param) else 0.0
        group = groups.setdefault(
            (lam, wd),
            {"params": [], "names": [], "lr": base_lr * lam, "lr_multiplier": lam,
             "weight_decay": wd},
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())
