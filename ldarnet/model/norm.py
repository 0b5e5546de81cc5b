"""RMSNorm and the gated RMSNorm of Mamba-2 (weight only, no bias; spec 1.3 and 1.4).

Normalisation is computed in (at least) float32 whatever the working dtype, because the residual
stream is kept in fp32 and bf16 statistics over 512-768 channels lose precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model.precision import upcast


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``x / rms(x) * weight`` over the last dimension, computed in fp32."""
    x32 = upcast(x)
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight.to(y.dtype)).to(x.dtype)


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned scale (initialised to one)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


class GatedRMSNorm(nn.Module):
    """Mamba-2's output norm: ``RMSNorm(y * SiLU(z))`` (gate applied before the norm).

    ``group_size`` splits channels into groups normalised separately (mamba-ssm uses
    ``d_inner // ngroups``); with one group this is a plain RMSNorm of the gated input.
    """

    def __init__(self, dim: int, eps: float = 1e-5, group_size: int | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.group_size = group_size or dim
        if dim % self.group_size:
            raise ValueError(f"GatedRMSNorm: group_size {self.group_size} must divide dim {dim}")
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        gated = upcast(y) * F.silu(upcast(z))
        shape = gated.shape
        grouped = gated.view(*shape[:-1], shape[-1] // self.group_size, self.group_size)
        normed = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed.view(shape) * self.weight.to(normed.dtype)).to(y.dtype)
