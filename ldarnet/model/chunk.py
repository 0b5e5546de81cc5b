"""Chunk (downsample): gather the hidden states at boundary positions (spec 2.2).

Per row, a stable order lists boundary positions first (in sequence order), then the
rest; the first ``M = max_i n_i`` entries form the compressed sequence. Rows with fewer
boundaries are filled with non-boundary states in slots ``n_i..M-1``, which the
compressed mask marks invalid, so they never influence valid outputs downstream.
"""

from __future__ import annotations

import torch
from torch import Tensor


def chunk_order(boundary_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(order (b, m), compressed mask (b, m)) for a boundary mask (b, l)."""
    length = boundary_mask.shape[1]
    counts = boundary_mask.sum(dim=1)
    m = max(int(counts.max()), 1)
    t = torch.arange(length, device=boundary_mask.device)
    key = torch.where(boundary_mask, t, t + length)
    order = torch.argsort(key, dim=1)[:, :m]
    compressed_mask = torch.arange(m, device=boundary_mask.device) < counts.unsqueeze(1)
    return order, compressed_mask


def gather_positions(x: Tensor, order: Tensor) -> Tensor:
    """x (b, l, ...) gathered at ``order`` (b, m) along the sequence axis."""
    index = order.view(*order.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index)


def chunk(hidden: Tensor, boundary_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Compressed states (b, m, d), compressed mask (b, m) and the gather order (b, m)."""
    order, compressed_mask = chunk_order(boundary_mask)
    return gather_positions(hidden, order), compressed_mask, order
