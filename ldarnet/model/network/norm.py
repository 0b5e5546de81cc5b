"""RMSNorm and the gated RMSNorm of Mamba-2 (weight only, no bias; spec 1.3 and 1.4).

Normalisation is computed in (at least) float32 whatever the working dtype, because the residual
stream is kept in fp32 and bf16 statistics over 512-768 channels lose precision.

On a GPU with a kernel backend that provides them (mamba-ssm's Triton norms, see
ldarnet/model/kernels_cuda.py and docs/cuda.md), both norms run as one fused kernel, which
also keeps float32 statistics; CPU tensors, float64 and the ``torch`` backend use the code
below unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model import kernels
from ldarnet.model.precision import upcast

_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


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
        if x.is_cuda and x.dtype in _FUSED_DTYPES:
            fused = kernels.fast_path("rms_norm")
            if fused is not None:
                return fused(x, self.weight, self.eps)
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
        if y.is_cuda and y.dtype in _FUSED_DTYPES and z.dtype in _FUSED_DTYPES:
            fused = kernels.fast_path("gated_rms_norm")
            if fused is not None:
                return fused(y, z, self.weight, self.eps, self.group_size)
        gated = upcast(y) * F.silu(upcast(z))
        shape = gated.shape
        grouped = gated.view(*shape[:-1], shape[-1] // self.group_size, self.group_size)
        normed = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed.view(shape) * self.weight.to(normed.dtype)).to(y.dtype)
