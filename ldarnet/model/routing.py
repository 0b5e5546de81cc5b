"""The routing module: boundary probabilities from adjacent-position dissimilarity.

Spec 2.1. With unit vectors ``q_t = W_q e_t / |W_q e_t|`` and ``k_t`` likewise, the
pair (t-1, t) gets the symmetrised cosine ``s_t = (q_{t-1}·k_t + q_t·k_{t-1}) / 2``
("bidirectional routing"; H-Net uses the first term only) and
``p_t = clamp((1 - s_t) / 2, 0, 1)``; ``p_0 = 1``. The hard decision is made by a
:mod:`boundary selector <ldarnet.model.boundaries>`, and the confidence is the
probability of the chosen class, ``c_t = p_t`` if t is a boundary else ``1 - p_t``
(= max(p, 1 - p) for the learned selector).

Precision: the projections, the cosines and p are computed in float32 also under bf16
autocast (autocast is turned off for the router, inputs and weights upcast), so that the
0.5 threshold does not flip with bf16 rounding. With the projections autocast to bf16, p
moved by up to ~1e-3 (tests/test_precision.py); in float32 it agrees with a float64
computation to ~1e-7. The cost is two d×d float32 matmuls per token, small next to the
mixers. Without autocast the guard is a no-op (same bits as plain module calls).

A selector that ignores the router (``fixed_grid``, ``random``) makes ``p = b``: the
dechunk EMA and the confidence see the hard 0/1 decisions (c = 1 everywhere), and the
router's projections, still computed so that parameters and compute match the learned
model, reach the output only through ``0 · p_router``. They receive an exactly-zero
gradient rather than none, because DistributedDataParallel (without
``find_unused_parameters``) requires every parameter to take part in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model.boundaries import BoundarySelector
from ldarnet.model.precision import upcast


@dataclass
class RouterOutput:
    """What one chunking stage decided; consumed by chunk, dechunk and the ratio loss."""

    boundary_prob: Tensor  # p (b, l), float32
    boundary_mask: Tensor  # hard boundaries (b, l), bool
    confidence: Tensor  # c (b, l, 1), float32
    mask: Tensor  # valid positions of this stage's input (b, l), bool
    compressed_mask: Tensor | None = None  # valid chunks (b, m), set by the stage


def boundary_probability(q: Tensor, k: Tensor) -> Tensor:
    """p (b, l) from projected states q, k (b, l, d): symmetric adjacent-pair cosine."""
    q = F.normalize(upcast(q), dim=-1)
    k = F.normalize(upcast(k), dim=-1)
    forward_pair = (q[:, :-1] * k[:, 1:]).sum(-1)  # q_{t-1} · k_t
    backward_pair = (q[:, 1:] * k[:, :-1]).sum(-1)  # q_t · k_{t-1}
    cos = 0.5 * (forward_pair + backward_pair)
    p = torch.clamp((1.0 - cos) / 2.0, 0.0, 1.0)
    return F.pad(p, (1, 0), value=1.0)  # p_0 = 1


class RoutingModule(nn.Module):
    """Router with identity-initialised query/key projections (no bias)."""

    def __init__(self, d_model: int, selector: BoundarySelector) -> None:
        super().__init__()
        self.q_proj_layer = nn.Linear(d_model, d_model, bias=False)
        self.k_proj_layer = nn.Linear(d_model, d_model, bias=False)
        self.selector = selector
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Identity init: at the start, boundaries come from raw hidden-state cosine."""
        with torch.no_grad():
            self.q_proj_layer.weight.copy_(torch.eye(self.q_proj_layer.weight.shape[0]))
            self.k_proj_layer.weight.copy_(torch.eye(self.k_proj_layer.weight.shape[0]))

    def forward(
        self, hidden: Tensor, mask: Tensor, row_keys: Tensor | None = None
    ) -> RouterOutput:
        """Router output for ``hidden`` (b, l, d) on valid ``mask`` (b, l).

        ``row_keys`` (b,) int64 identifies each row's sequence; only the random selector
        uses them, in eval mode (see :func:`ldarnet.model.boundaries.sequence_keys`).
        """
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h = upcast(hidden)
            q = F.linear(h, upcast(self.q_proj_layer.weight))
            k = F.linear(h, upcast(self.k_proj_layer.weight))
            p = boundary_probability(q, k)
        boundary = self.selector.select(p, mask, row_keys=row_keys, training=self.training)
        if not self.selector.uses_router_probabilities:
            p = boundary.to(p.dtype) + 0.0 * p  # exactly b; zero (not None) router gradient
        confidence = torch.where(boundary, p, 1.0 - p).unsqueeze(-1)
        return RouterOutput(boundary_prob=p, boundary_mask=boundary, confidence=confidence,
                            mask=mask)
