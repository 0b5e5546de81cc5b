"""SwiGLU feed-forward block of the backbone's ``M``/``T`` layers (spec 1.6)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def round_intermediate(d_intermediate: int, multiple: int = 128) -> int:
    """The release rounds the hidden width up to a multiple of 128 (2560 already is)."""
    return -(-d_intermediate // multiple) * multiple


class SwiGLU(nn.Module):
    """``fc2(SiLU(gate) * value)`` with ``fc1`` producing (value, gate) in that order."""

    def __init__(self, d_model: int, d_intermediate: int) -> None:
        super().__init__()
        hidden = round_intermediate(d_intermediate)
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(gate) * value)
