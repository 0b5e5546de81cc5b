"""Mamba-2's state-space duality (SSD) scan in pure PyTorch.

The recurrence, per head h with state ``S ∈ R^{P×N}``::

    S_t = exp(dt_t · A_h) · S_{t-1} + dt_t · x_t ⊗ B_t
    y_t = S_t · C_t + D_h · x_t

is evaluated by :func:`ssd_chunked` as in the SSD algorithm: the sequence is cut into
chunks of ``chunk_size``; inside a chunk the output is a masked quadratic form
(attention-like, matmul friendly), and only one state per chunk is passed between
chunks. This turns an O(L) chain of tiny sequential updates into a few large batched
matmuls, which is what makes the CPU reference path usable (benchmarks/ssd_scan.py).
:func:`ssd_sequential` is the literal recurrence, kept as the test oracle.

Shapes: ``x (b, l, h, p)``, ``dt (b, l, h)`` (already positive), ``A (h,)`` (negative),
``B, C (b, l, g, n)`` with ``g`` groups shared by ``h / g`` heads each, ``D (h,)``.
Computation runs in float32 (float64 when ``x`` is float64, for tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def ssd_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int,
    D: Tensor | None = None,
) -> Tensor:
    """Chunked SSD scan; equals :func:`ssd_sequential` up to rounding for any length."""
    b, length, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    if h % g:
        raise ValueError(f"ssd_chunked: {h} heads cannot be split into {g} groups")
    r = h // g
    dtype = _compute_dtype(x)
    q = max(1, min(chunk_size, length))
    pad = (-length) % q
    if pad:  # zero dt and zero input past the end: later positions never affect earlier ones
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (length + pad) // q
    xc = x.to(dtype).reshape(b, c, q, g, r, p)
    dtc = dt.to(dtype).reshape(b, c, q, g, r)
    Bc = B.to(dtype).reshape(b, c, q, g, n)
    Cc = C.to(dtype).reshape(b, c, q, g, n)
    a_cum = torch.cumsum(dtc * A.to(dtype).reshape(g, r), dim=2)  # (b, c, q, g, r)

    # 1) within-chunk outputs: y_l = sum_{s<=l} (C_l·B_s) exp(a_l - a_s) dt_s x_s
    seg = a_cum.permute(0, 1, 3, 4, 2)  # (b, c, g, r, q)
    diff = seg.unsqueeze(-1) - seg.unsqueeze(-2)  # (..., l, s)
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp(diff.masked_fill(~causal, float("-inf")))
    scores = torch.einsum("bclgn,bcsgn->bcgls", Cc, Bc).unsqueeze(3) * decay
    x_dt = xc * dtc.unsqueeze(-1)  # (b, c, s, g, r, p)
    y = torch.einsum("bcgrls,bcsgrp->bclgrp", scores, x_dt)

    # 2) state at the end of each chunk, from that chunk's inputs alone
    to_end = torch.exp(a_cum[:, :, -1:] - a_cum)  # (b, c, s, g, r)
    chunk_states = torch.einsum("bcsgn,bcsgrp->bcgrpn", Bc, x_dt * to_end.unsqueeze(-1))

    # 3) pass states between chunks (c is small: a short loop beats a c×c matmul)
    chunk_decay = torch.exp(a_cum[:, :, -1])  # (b, c, g, r)
    state = torch.zeros_like(chunk_states[:, 0])
    entering = []
    for i in range(c):
        entering.append(state)
        state = state * chunk_decay[:, i, :, :, None, None] + chunk_states[:, i]
    states_in = torch.stack(entering, dim=1)  # (b, c, g, r, p, n)

    # 4) contribution of the state entering each chunk
    y = y + torch.einsum("bclgn,bcgrpn->bclgrp", Cc, states_in) * torch.exp(a_cum).unsqueeze(-1)
    y = y.reshape(b, c * q, h, p)[:, :length]
    if D is not None:
        y = y + x[:, :length].to(dtype) * D.to(dtype).reshape(1, 1, h, 1)
    return y.to(x.dtype)


def ssd_sequential(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None
) -> Tensor:
    """The recurrence one step at a time: slow, obviously correct, the test oracle."""
    b, length, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g
    dtype = _compute_dtype(x)
    Bh = B.to(dtype).repeat_interleave(r, dim=2)  # (b, l, h, n)
    Ch = C.to(dtype).repeat_interleave(r, dim=2)
    xd, dtd, Ad = x.to(dtype), dt.to(dtype), A.to(dtype)
    state = torch.zeros(b, h, p, n, dtype=dtype, device=x.device)
    ys = []
    for t in range(length):
        decay = torch.exp(dtd[:, t] * Ad)  # (b, h)
        update = (dtd[:, t, :, None] * xd[:, t]).unsqueeze(-1) * Bh[:, t, :, None, :]
        state = state * decay[:, :, None, None] + update
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + xd * D.to(dtype).reshape(1, 1, h, 1)
    return y.to(x.dtype)
