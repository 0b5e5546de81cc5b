"""Precision policy: numerically sensitive steps run in at least float32.

Norm statistics, SSM step sizes, router cosines and the dechunk EMA are computed in
float32 under bf16 autocast, but never *down*-cast: float64 inputs stay float64, which
is what lets the tests compare against loop implementations at 1e-10 tolerances.
"""

from __future__ import annotations

import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """``x`` in float32, or unchanged if it is already float32/float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
