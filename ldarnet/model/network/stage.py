"""One stage of the hierarchy: encoder → router → chunk → inner stage → dechunk → decoder.

Spec 1.7. A stage whose layout is ``[main]`` is the innermost one (a plain stack, the
"main network"/backbone). A chunking stage ``[encoder, inner, decoder]`` compresses its
sequence ~N-fold at learned boundaries, runs the inner stage on the compressed
sequence, expands it back with the bidirectional EMA, weights it with the
straight-through confidence, adds a zero-initialised projection of the encoder output
and decodes. An inner stage wider than its parent appends the learned
``pad_dimension`` to every token on entry and trims back on exit.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ldarnet.model.config import ModelConfig
from ldarnet.model.network.dynamic_chunking import (
    RouterOutput,
    RoutingModule,
    chunk,
    dechunk,
    make_selector,
    straight_through,
)
from ldarnet.model.network.stack import Stack
from ldarnet.model.precision import upcast


class Stage(nn.Module):
    """Stage ``stage`` of ``cfg`` built from its (nested) layout list."""

    def __init__(self, layout: list, cfg: ModelConfig, stage: int, d_outer: int | None) -> None:
        super().__init__()
        self.stage = stage
        self.d_model = cfg.d_model[stage]
        self.chunk_size = cfg.ssm.chunk_size
        extra = self.d_model - (d_outer if d_outer is not None else self.d_model)
        self.pad_dimension = nn.Parameter(torch.zeros(extra)) if extra > 0 else None
        self.is_innermost = len(layout) == 1
        if self.is_innermost:
            self.main_network: nn.Module = Stack(layout[0], cfg, stage)
            return
        self.encoder = Stack(layout[0], cfg, stage)
        selector = make_selector(cfg.routing, stage)
        self.routing_module = RoutingModule(self.d_model, selector)
        self.main_network = Stage(layout[1], cfg, stage + 1, d_outer=self.d_model)
        self.residual_proj = nn.Linear(self.d_model, self.d_model, bias=True)
        nn.init.zeros_(self.residual_proj.weight)
        self.decoder = Stack(layout[2], cfg, stage)

    @property
    def needs_row_keys(self) -> bool:
        """Whether a router here or deeper draws eval-mode boundaries from per-row keys."""
        if self.is_innermost:
            return False
        return self.routing_module.selector.needs_row_keys or self.main_network.needs_row_keys

    def route(self, x: Tensor, mask: Tensor, row_keys: Tensor | None = None
              ) -> tuple[Tensor, RouterOutput]:
        """Encoder, then router: the encoded states and where this stage's chunks start.

        The first two steps of :meth:`forward`, and all that decides the boundaries (the
        inner stage and the decoder come after them), so segmentation runs this alone
        (:meth:`LDARNet.route`).
        """
        encoded = self.encoder(x, mask)
        return encoded, self.routing_module(encoded, mask, row_keys)

    def forward(
        self, x: Tensor, mask: Tensor, row_keys: Tensor | None = None
    ) -> tuple[Tensor, list[RouterOutput]]:
        """x (b, l, d_outer) -> (b, l, d_outer) and the router outputs of this and deeper stages.

        ``row_keys`` (b,) identify each row's sequence for eval-mode random boundaries; a
        row of the compressed sequence is the same row, so deeper stages get the same keys
        (their selectors salt the draw with the stage index).
        """
        d_in = x.shape[-1]
        if self.pad_dimension is not None:
            pad = self.pad_dimension.to(x.dtype).expand(*x.shape[:-1], -1)
            x = torch.cat([x, pad], dim=-1)
        if self.is_innermost:
            return self.main_network(x, mask)[..., :d_in], []

        encoded, router = self.route(x, mask, row_keys)
        chunks, compressed_mask, order = chunk(encoded, router.boundary_mask)
        router = dataclasses.replace(router, compressed_mask=compressed_mask)
        inner, inner_routers = self.main_network(chunks, compressed_mask, row_keys)
        # The router and the dechunk EMA run in float32 whatever autocast says (each turns
        # autocast off inside; docs/model.md, "Precision").
        upsampled = dechunk(inner, router.boundary_mask, router.boundary_prob, order,
                            compressed_mask, mask, self.chunk_size)
        with torch.autocast(device_type=encoded.device.type, enabled=False):
            # The skip projection is kept and computed in fp32 (zero-initialised, spec 2.4).
            skip = self.residual_proj(upcast(encoded).to(self.residual_proj.weight.dtype))
        combined = upcast(upsampled) * straight_through(router.confidence) + skip
        out = self.decoder(combined.to(encoded.dtype), mask)
        return out[..., :d_in], [router, *inner_routers]
