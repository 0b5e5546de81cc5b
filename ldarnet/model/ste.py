"""Straight-through confidence weighting (spec 2.4).

``STE(c)`` is exactly 1 in the forward pass, so the decoder input is ``U + R``
numerically, while the backward pass hands the incoming gradient to ``c`` unchanged:
``dL/dc_t = sum_d dL/dH_{t,d} · U_{t,d}``. That is one of the three gradient paths
into the router (the others: P inside the EMA, and G in the ratio loss).
"""

from __future__ import annotations

import torch
from torch import Tensor


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return torch.ones_like(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


def straight_through(confidence: Tensor) -> Tensor:
    """Ones with the identity gradient to ``confidence``."""
    return _StraightThrough.apply(confidence)
