"""Causal depthwise 1-D convolution of Mamba-2, written as shifted multiply-adds.

``out[t] = bias + sum_i w[i] · x[t + i - (k-1)]`` (zeros before the start). With the
kernel width k = 4 this is four fused multiply-adds per element; PyTorch's CPU
depthwise ``conv1d`` backward is two orders of magnitude slower at these shapes
(benchmarks/model_speed.py), so the reference path computes it directly from the
``nn.Conv1d`` module's own weight and bias (parameter names stay mamba-ssm's).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def causal_depthwise_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x (b, l, c), weight (c, 1, k), bias (c,) -> (b, l, c); position t sees t-k+1..t."""
    length = x.shape[1]
    k = weight.shape[-1]
    padded = F.pad(x, (0, 0, k - 1, 0))
    w = weight.squeeze(1).to(x.dtype)  # (c, k)
    out = padded[:, 0:length] * w[:, 0]
    for i in range(1, k):
        out = out + padded[:, i : i + length] * w[:, i]
    if bias is not None:
        out = out + bias.to(x.dtype)
    return out
