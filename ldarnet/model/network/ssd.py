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
``B, C (b, l, g, n)`` with ``g`` groups shared by ``h / g`` heads each, ``D (h,)`` (one
skip weight per head, as the model uses) or ``(h, p)`` (per channel, mamba-ssm's
``D_has_hdim``; accepted so that every backend takes the same arguments).
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
    # Head-major layouts (b, c, g, r, q, ...): every product below is one batched matmul.
    xc = x.to(dtype).reshape(b, c, q, g, r, p)
    dtc = dt.to(dtype).reshape(b, c, q, g, r)
    Bc = B.to(dtype).reshape(b, c, q, g, n).transpose(2, 3)  # (b, c, g, q, n)
    Cc = C.to(dtype).reshape(b, c, q, g, n).transpose(2, 3)
    a = torch.cumsum(dtc * A.to(dtype).reshape(g, r), dim=2).permute(0, 1, 3, 4, 2)  # (.., r, q)
    x_dt = (xc * dtc.unsqueeze(-1)).permute(0, 1, 3, 4, 2, 5)  # (b, c, g, r, q, p)

    # 1) within-chunk outputs: y_l = sum_{s<=l} (C_l·B_s) exp(a_l - a_s) dt_s x_s
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    decay = (a.unsqueeze(-1) - a.unsqueeze(-2)).masked_fill_(~causal, float("-inf")).exp_()
    scores = Cc @ Bc.transpose(-1, -2)  # (b, c, g, l, s)
    y = (scores.unsqueeze(3) * decay) @ x_dt  # (b, c, g, r, q, p)

    # 2) state at the end of each chunk from that chunk's inputs alone: (b, c, g, n, r*p)
    to_end = torch.exp(a[..., -1:] - a)  # (b, c, g, r, q)
    weighted = (x_dt * to_end.unsqueeze(-1)).transpose(3, 4).reshape(b, c, g, q, r * p)
    chunk_states = Bc.transpose(-1, -2) @ weighted

    # 3) pass states between chunks (c is small: a short loop beats a c×c matmul)
    chunk_decay = torch.exp(a[..., -1]).unsqueeze(-1).expand(b, c, g, r, p)
    chunk_decay = chunk_decay.reshape(b, c, g, 1, r * p)
    state = torch.zeros_like(chunk_states[:, 0])
    entering = []
    for i in range(c):
        entering.append(state)
        state = torch.addcmul(chunk_states[:, i], state, chunk_decay[:, i])
    states_in = torch.stack(entering, dim=1)  # (b, c, g, n, r*p)

    # 4) contribution of the state entering each chunk, decayed to each position
    y_off = (Cc @ states_in).view(b, c, g, q, r, p).transpose(3, 4)  # (b, c, g, r, q, p)
    y = torch.addcmul(y, y_off, a.exp().unsqueeze(-1))
    if D is not None:
        y = torch.addcmul(y, xc.permute(0, 1, 3, 4, 2, 5), _skip_weight(D, dtype, g, r, p))
    out = y.permute(0, 1, 4, 2, 3, 5).reshape(b, c * q, h, p)[:, :length]
    return out.to(x.dtype)


def _skip_weight(D: Tensor, dtype: torch.dtype, g: int, r: int, p: int) -> Tensor:
    """D (h,) or (h, p) as (g, r, 1, 1 or p), broadcasting over (b, c, g, r, q, p)."""
    return D.to(dtype).view(g, r, 1, p if D.dim() == 2 else 1)


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
        y = y + xd * D.to(dtype).reshape(1, 1, h, p if D.dim() == 2 else 1)
    return y.to(x.dtype)
