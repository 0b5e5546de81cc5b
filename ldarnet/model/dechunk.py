"""Dechunk (upsample): bidirectional EMA over chunks, then plug back (spec 2.3).

With ``P_j`` the (clamped) boundary probability of chunk j and ``X_j`` its backbone
output (0 on padded slots)::

    F_j = P_j X_j + (1 - P_j) F_{j-1}          (forward EMA,  F_{-1} = 0)
    G_j = P_j X_j + (1 - P_j) G_{j+1}          (backward EMA, G_m = 0)
    S_j = (F_j + G_j) / 2
    U_t = S_{idx_t},  idx_t = (sum_{u<=t} b_u) - 1

Both EMAs are one SSD scan (state size 1: ``dt = -log(1-P)``, ``A = -1``,
``B = P/dt``, ``C = 1``, so ``exp(dt·A) = 1-P`` and ``dt·B·x = P·X``) run on the forward
and the flipped sequences stacked along the batch, all in float32 — the release's
post-camera-ready fix of the bf16 dechunker. Gradients reach the router through P.

"All in float32" includes bf16 autocast: :func:`dechunk` turns autocast off for its whole
body, because the torch path of the SSD scan does its products with ``@``, which
autocast would run in bf16 (relative error ~1e-2 instead of ~1e-7), and the fix the
paper's NT results depend on is exactly that this EMA is not bf16. Inputs of any dtype are
upcast to float32 (float64 stays float64, for tests); the output is cast back to the
backbone's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldarnet.model import kernels
from ldarnet.model.chunk import gather_positions
from ldarnet.model.precision import upcast

PROB_EPS = 1e-4


def ema_both_directions(x: Tensor, prob: Tensor, chunk_size: int) -> Tensor:
    """S = (F + G) / 2 for x (b, m, d) and per-chunk probabilities prob (b, m), fp32."""
    b, m = x.shape[:2]
    xs = torch.cat([x, x.flip(1)], dim=0)
    ps = torch.cat([prob, prob.flip(1)], dim=0)
    dt = -torch.log1p(-ps)  # (2b, m)
    y = kernels.ssd_scan(
        xs.unsqueeze(2),  # one head whose channels are the model width
        dt.unsqueeze(-1),
        -torch.ones(1, dtype=x.dtype, device=x.device),
        (ps / dt).view(2 * b, m, 1, 1),
        torch.ones(2 * b, m, 1, 1, dtype=x.dtype, device=x.device),
        chunk_size,
    ).squeeze(2)
    return 0.5 * (y[:b] + y[b:].flip(1))


def dechunk(
    chunks: Tensor,
    boundary_mask: Tensor,
    boundary_prob: Tensor,
    order: Tensor,
    compressed_mask: Tensor,
    mask: Tensor,
    chunk_size: int = 256,
) -> Tensor:
    """Full-resolution states (b, l, d) from backbone outputs ``chunks`` (b, m, d).

    Float32 (or float64) throughout, also under autocast (module docstring).
    """
    with torch.autocast(device_type=chunks.device.type, enabled=False):
        prob = upcast(boundary_prob).clamp(PROB_EPS, 1.0 - PROB_EPS)
        prob_chunks = gather_positions(prob, order).to(upcast(chunks).dtype)  # (b, m)
        x = upcast(chunks) * compressed_mask.unsqueeze(-1)
        smoothed = ema_both_directions(x, prob_chunks, chunk_size)
        m = chunks.shape[1]
        index = (torch.cumsum(boundary_mask.long(), dim=1) - 1).clamp(0, m - 1)
        out = gather_positions(smoothed, index) * mask.unsqueeze(-1)
    return out.to(chunks.dtype)
