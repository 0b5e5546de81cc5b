"""Initialisation for pretraining from scratch (spec 1.8).

Embedding and LM head ~ N(0, 0.02). Every linear weight inside an encoder, decoder or
main-network stack ~ N(0, 0.02), except output projections (``out_proj``, ``fc2``),
which get N(0, 0.02 / sqrt(n_res)) where n_res counts the residual additions from the
outside in: stage 0 adds its encoder and decoder heights (4 + 4 = 8 for LDARNet), the
innermost stage adds its own (8 + 20 = 28). Router q/k (identity), the residual
projection (zeros) and ``pad_dimension`` (zeros) keep their own inits; conv1d, dt,
A, D and norms keep the library defaults set at construction.
"""

from __future__ import annotations

import math

from torch import nn

from ldarnet.model.network.stack import Stack

INIT_STD = 0.02
_OUTPUT_PROJECTIONS = ("out_proj", "fc2")


def _init_stack(stack: Stack, n_res: int) -> None:
    for name, module in stack.named_modules():
        if isinstance(module, nn.Linear):
            std = INIT_STD
            if name.rsplit(".", 1)[-1] in _OUTPUT_PROJECTIONS:
                std = INIT_STD / math.sqrt(n_res)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def init_stage(stage: nn.Module, n_res_outer: int = 0) -> None:
    """Initialise a :class:`~ldarnet.model.network.stage.Stage` and its inner stages."""
    if stage.is_innermost:
        _init_stack(stage.main_network, n_res_outer + stage.main_network.height)
        return
    n_res = n_res_outer + stage.encoder.height + stage.decoder.height
    _init_stack(stage.encoder, n_res)
    _init_stack(stage.decoder, n_res)
    init_stage(stage.main_network, n_res)


def init_weights(model: nn.Module) -> None:
    """Initialise a freshly built :class:`~ldarnet.model.network.ldarnet.LDARNet` in place."""
    nn.init.normal_(model.embeddings.weight, mean=0.0, std=INIT_STD)
    nn.init.normal_(model.lm_head.weight, mean=0.0, std=INIT_STD)
    init_stage(model.hierarchy)


def residual_heights(model: nn.Module) -> list[int]:
    """n_res per stage, outer first (8 and 28 for LDARNet): used by tests and docs."""
    out, stage, n_res = [], model.hierarchy, 0
    while not stage.is_innermost:
        n_res += stage.encoder.height + stage.decoder.height
        out.append(n_res)
        stage = stage.main_network
    out.append(n_res + stage.main_network.height)
    return out
