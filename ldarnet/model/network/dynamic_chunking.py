"""Dynamic chunking, the paper's learned tokenizer, in one place (spec 2.1-2.5).

One chunking stage of :class:`~ldarnet.model.network.stage.Stage` runs, in this order:

1. **Routing** (:class:`RoutingModule`): boundary probabilities ``p_t`` from the cosine
   of adjacent projected states, in float32.
2. **Boundary selection** (:func:`make_selector`): the hard boundaries ``b_t``; the
   learned rule ``p_t > 0.5`` or an ablation arm's fixed grid / random draw. The router
   returns p, b and the confidence c as a :class:`RouterOutput`.
3. **Chunk** (:func:`chunk`): the states at the boundaries form the compressed sequence
   the inner stage runs on.
4. **Dechunk** (:func:`dechunk`): a bidirectional EMA over the inner stage's outputs,
   weighted by p, plugged back to full resolution, in float32.
5. **Straight-through confidence** (:func:`straight_through`): ``STE(c)`` multiplies the
   dechunked states (1 in the forward pass, gradient to c).
6. **Ratio loss** (:func:`ratio_loss`): the training term that steers the fraction of
   boundaries towards 1/N.

Each section below starts with the equations its code implements; docs/model.md maps
them to the paper and to the tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model import kernels
from ldarnet.model.config import RoutingConfig
from ldarnet.model.precision import upcast

# ----------------------------------------------------------------------------------------
# 1. Routing: boundary probabilities
# ----------------------------------------------------------------------------------------
# The routing module: boundary probabilities from adjacent-position dissimilarity.
#
# Spec 2.1. With unit vectors ``q_t = W_q e_t / |W_q e_t|`` and ``k_t`` likewise, the
# pair (t-1, t) gets the symmetrised cosine ``s_t = (q_{t-1}·k_t + q_t·k_{t-1}) / 2``
# ("bidirectional routing"; H-Net uses the first term only) and
# ``p_t = clamp((1 - s_t) / 2, 0, 1)``; ``p_0 = 1``. The hard decision is made by a
# boundary selector (section 2), and the confidence is the
# probability of the chosen class, ``c_t = p_t`` if t is a boundary else ``1 - p_t``
# (= max(p, 1 - p) for the learned selector).
#
# Precision: the projections, the cosines and p are computed in float32 also under bf16
# autocast (autocast is turned off for the router, inputs and weights upcast), so that the
# 0.5 threshold does not flip with bf16 rounding. With the projections autocast to bf16, p
# moved by up to ~1e-3 (tests/model/test_precision.py); in float32 it agrees with a float64
# computation to ~1e-7. The cost is two d×d float32 matmuls per token, small next to the
# mixers. Without autocast the guard is a no-op (same bits as plain module calls).
#
# A selector that ignores the router (``fixed_grid``, ``random``) makes ``p = b``: the
# dechunk EMA and the confidence see the hard 0/1 decisions (c = 1 everywhere), and the
# router's projections, still computed so that parameters and compute match the learned
# model, reach the output only through ``0 · p_router``. They receive an exactly-zero
# gradient rather than none, because DistributedDataParallel (without
# ``find_unused_parameters``) requires every parameter to take part in the loss.

@dataclass(frozen=True)
class RouterOutput:
    """What one chunking stage decided; consumed by chunk, dechunk and the ratio loss.

    Immutable: the stage adds the compressed mask after chunking with
    ``dataclasses.replace``, so an output once returned never changes under its reader.
    """

    boundary_prob: Tensor  # p (b, l), float32
    boundary_mask: Tensor  # hard boundaries (b, l), bool
    confidence: Tensor  # c (b, l, 1), float32
    mask: Tensor  # valid positions of this stage's input (b, l), bool
    compressed_mask: Tensor | None = None  # valid chunks (b, m), added by the stage


def boundary_probability(q: Tensor, k: Tensor) -> Tensor:
    """p (b, l) from projected states q, k (b, l, d): symmetric adjacent-pair cosine."""
    q = F.normalize(upcast(q), dim=-1)
    k = F.normalize(upcast(k), dim=-1)
    forward_pair = (q[:, :-1] * k[:, 1:]).sum(-1)  # q_{t-1} · k_t
    backward_pair = (q[:, 1:] * k[:, :-1]).sum(-1)  # q_t · k_{t-1}
    cos = 0.5 * (forward_pair + backward_pair)
    p = torch.clamp((1.0 - cos) / 2.0, 0.0, 1.0)
    return F.pad(p, (1, 0), value=1.0)  # p_0 = 1


class RoutingModule(nn.Module):
    """Router with identity-initialised query/key projections (no bias)."""

    def __init__(self, d_model: int, selector: BoundarySelector) -> None:
        super().__init__()
        self.q_proj_layer = nn.Linear(d_model, d_model, bias=False)
        self.k_proj_layer = nn.Linear(d_model, d_model, bias=False)
        self.selector = selector
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Identity init: at the start, boundaries come from raw hidden-state cosine."""
        with torch.no_grad():
            self.q_proj_layer.weight.copy_(torch.eye(self.q_proj_layer.weight.shape[0]))
            self.k_proj_layer.weight.copy_(torch.eye(self.k_proj_layer.weight.shape[0]))

    def forward(
        self, hidden: Tensor, mask: Tensor, row_keys: Tensor | None = None
    ) -> RouterOutput:
        """Router output for ``hidden`` (b, l, d) on valid ``mask`` (b, l).

        ``row_keys`` (b,) int64 identifies each row's sequence; only the random selector
        uses them, in eval mode (see :func:`sequence_keys`).
        """
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h = upcast(hidden)
            q = F.linear(h, upcast(self.q_proj_layer.weight))
            k = F.linear(h, upcast(self.k_proj_layer.weight))
            p = boundary_probability(q, k)
        boundary = self.selector.select(p, mask, row_keys=row_keys, training=self.training)
        if not self.selector.uses_router_probabilities:
            p = boundary.to(p.dtype) + 0.0 * p  # exactly b; zero (not None) router gradient
        confidence = torch.where(boundary, p, 1.0 - p).unsqueeze(-1)
        return RouterOutput(boundary_prob=p, boundary_mask=boundary, confidence=confidence,
                            mask=mask)


# ----------------------------------------------------------------------------------------
# 2. Boundary selection: the hard decision
# ----------------------------------------------------------------------------------------
# Boundary selection: the one decision the ablation models change (spec 2.1 step 5).
#
# A selector turns router probabilities ``p (b, l)`` and the valid mask into the hard
# boundary mask. Everything around it (router parameters and compute, chunk, dechunk,
# attention masking, decoder) is identical for every selector, so that a fixed-grid or
# random-boundary model differs from LDARNet only in *where* its chunks start. Position 0
# of every valid row is always a boundary, and padding never is.
#
# Two consequences of a selector that ignores the router follow from the selector alone
# (``uses_router_probabilities = False``): the routing module replaces ``p`` by the hard
# ``b`` (so the dechunk EMA and the confidence see 0/1 values, as if the router were
# certain), and the objective drops the ratio loss, which would otherwise train
# probabilities nothing uses (docs/ablation.md).
#
# The ``random`` arm draws fresh boundaries for every training batch, but at evaluation
# (``training=False``) the boundaries of a row must be a property of the sequence, not of
# the batch it was evaluated in: the draw then comes from a per-row generator seeded by
# (``routing.random_seed``, stage, row key), where the row key is a stable hash of the
# row's own valid token ids (:func:`sequence_keys`, computed by :class:`LDARNet`).

KEY_BITS = 63  # keys and generator seeds fit a signed int64


class BoundarySelector(Protocol):
    """Chooses hard boundaries, from the router's probabilities or without them.

    ``uses_router_probabilities``: False when the choice ignores ``prob``; the routing
    module then sets p = b and the objective turns the ratio loss off.
    ``needs_row_keys``: True when evaluation-mode draws need a per-row key.
    """

    name: str
    uses_router_probabilities: bool
    needs_row_keys: bool

    def select(self, prob: Tensor, mask: Tensor, *, row_keys: Tensor | None = None,
               training: bool = True) -> Tensor:
        """prob (b, l) float, mask (b, l) bool -> boundary mask (b, l) bool.

        ``row_keys`` (b,) int64 identifies each row's sequence (see :func:`sequence_keys`);
        ``training`` is the calling module's mode. Deterministic selectors ignore both.
        """
        ...


def _finish(boundary: Tensor, mask: Tensor) -> Tensor:
    boundary = boundary.clone()
    boundary[:, 0] = True
    return boundary & mask


def _digest(data: bytes) -> int:
    """A 63-bit integer from a stable hash (``hash()`` is salted per process)."""
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return value >> (64 - KEY_BITS)


def sequence_keys(input_ids: Tensor, mask: Tensor) -> Tensor:
    """One 63-bit key per row (b,) int64 (CPU): a hash of the row's valid token ids only.

    Padding and batch neighbours do not enter, so a row has the same key alone, in any
    batch and at any padded length. The ids are hashed as little-endian int64 so the key
    does not depend on the id tensor's dtype or device either.
    """
    lengths = mask.sum(dim=1).tolist()
    ids = input_ids.detach().to("cpu", torch.int64).numpy().astype("<i8", copy=False)
    keys = [_digest(ids[i, :n].tobytes()) for i, n in enumerate(lengths)]
    return torch.tensor(keys, dtype=torch.int64)


class LearnedBoundaries:
    """The paper's rule: a boundary wherever the router's two-class argmax picks 1.

    ``p > 0.5`` strictly: a tie at exactly 0.5 is not a boundary (argmax picks class 0).
    """

    name = "learned"
    uses_router_probabilities = True
    needs_row_keys = False

    def select(self, prob: Tensor, mask: Tensor, *, row_keys: Tensor | None = None,
               training: bool = True) -> Tensor:
        return _finish(prob > 0.5, mask)


class FixedGridBoundaries:
    """One boundary every ``stride`` positions (t mod stride == 0), whatever the input.

    Positions count from each row's start, which is position 0 for right-padded rows, so
    a row of length n gets exactly ceil(n / stride) boundaries.
    """

    name = "fixed_grid"
    uses_router_probabilities = False
    needs_row_keys = False

    def __init__(self, stride: int) -> None:
        self.stride = stride

    def select(self, prob: Tensor, mask: Tensor, *, row_keys: Tensor | None = None,
               training: bool = True) -> Tensor:
        t = torch.arange(prob.shape[1], device=prob.device)
        return _finish((t % self.stride == 0).expand_as(mask), mask)


class RandomBoundaries:
    """Boundaries drawn independently with probability ``rate`` (= 1/grid_stride).

    Training: draws come from torch's global generator (on ``prob``'s device), which the
    training loop seeds per micro-batch, so runs are reproducible from their seed and
    every batch sees new boundaries. Evaluation: row i's draws come from a CPU generator
    seeded by hash(seed, stage, row_keys[i]) and cover exactly its valid positions, so
    they depend on the sequence alone (and are the same on CPU and GPU).
    """

    name = "random"
    uses_router_probabilities = False
    needs_row_keys = True

    def __init__(self, rate: float, seed: int = 0, stage: int = 0) -> None:
        self.rate = rate
        self.seed = seed
        self.stage = stage

    def row_seed(self, key: int) -> int:
        """Generator seed of the row whose key is ``key`` (stable across processes)."""
        salt = np.array([self.seed, self.stage, key], dtype="<i8").tobytes()
        return _digest(b"ldarnet-random-boundaries" + salt)

    def select(self, prob: Tensor, mask: Tensor, *, row_keys: Tensor | None = None,
               training: bool = True) -> Tensor:
        if training:
            return _finish(torch.rand(prob.shape, device=prob.device) < self.rate, mask)
        if row_keys is None or row_keys.shape != (prob.shape[0],):
            got = "none" if row_keys is None else f"shape {tuple(row_keys.shape)}"
            raise ValueError(
                f"random boundaries in eval mode need one key per row ({prob.shape[0]}), got "
                f"{got}: call the model itself (LDARNet derives the keys from the token ids) "
                "or pass row_keys=model.row_keys(input_ids, mask) to the routing module"
            )
        boundary = torch.zeros(prob.shape, dtype=torch.bool)
        for i, (key, n) in enumerate(zip(row_keys.tolist(), mask.sum(dim=1).tolist(),
                                         strict=True)):
            gen = torch.Generator().manual_seed(self.row_seed(key))
            boundary[i, :n] = torch.rand(n, generator=gen) < self.rate
        return _finish(boundary.to(prob.device), mask)


def make_selector(routing: RoutingConfig, stage: int = 0) -> BoundarySelector:
    """The selector named by ``routing.boundaries`` for chunking stage ``stage``.

    Both non-learned arms use S = ``routing.grid_stride``: the grid puts a boundary
    every S positions, the random arm fires with probability 1/S, so both compress by S
    on average (``target_ratio`` only sets the learned arm's ratio loss and the LR
    multiplier, which are the same config value by default).
    """
    if routing.boundaries == "learned":
        return LearnedBoundaries()
    if routing.boundaries == "fixed_grid":
        return FixedGridBoundaries(routing.grid_stride)
    if routing.boundaries == "random":
        return RandomBoundaries(1.0 / routing.grid_stride, routing.random_seed, stage)
    raise ValueError(f"unknown boundary selector {routing.boundaries!r}")


# ----------------------------------------------------------------------------------------
# 3. Chunk: downsample at the boundaries
# ----------------------------------------------------------------------------------------
# Chunk (downsample): gather the hidden states at boundary positions (spec 2.2).
#
# Per row, a stable order lists boundary positions first (in sequence order), then the
# rest; the first ``M = max_i n_i`` entries form the compressed sequence. Rows with fewer
# boundaries are filled with non-boundary states in slots ``n_i..M-1``, which the
# compressed mask marks invalid, so they never influence valid outputs downstream.

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


# ----------------------------------------------------------------------------------------
# 4. Dechunk: bidirectional EMA back to full resolution
# ----------------------------------------------------------------------------------------
# Dechunk (upsample): bidirectional EMA over chunks, then plug back (spec 2.3).
#
# With ``P_j`` the (clamped) boundary probability of chunk j and ``X_j`` its backbone
# output (0 on padded slots)::
#
#     F_j = P_j X_j + (1 - P_j) F_{j-1}          (forward EMA,  F_{-1} = 0)
#     G_j = P_j X_j + (1 - P_j) G_{j+1}          (backward EMA, G_m = 0)
#     S_j = (F_j + G_j) / 2
#     U_t = S_{idx_t},  idx_t = (sum_{u<=t} b_u) - 1
#
# Both EMAs are one SSD scan (state size 1: ``dt = -log(1-P)``, ``A = -1``,
# ``B = P/dt``, ``C = 1``, so ``exp(dt·A) = 1-P`` and ``dt·B·x = P·X``) run on the forward
# and the flipped sequences stacked along the batch, all in float32 — the release's
# post-camera-ready fix of the bf16 dechunker. Gradients reach the router through P.
#
# "All in float32" includes bf16 autocast: :func:`dechunk` turns autocast off for its whole
# body, because the torch path of the SSD scan does its products with ``@``, which
# autocast would run in bf16 (relative error ~1e-2 instead of ~1e-7), and the fix the
# paper's NT results depend on is exactly that this EMA is not bf16. Inputs of any dtype are
# upcast to float32 (float64 stays float64, for tests); the output is cast back to the
# backbone's dtype.

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

    Float32 (or float64) throughout, also under autocast (section 4 above).
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


# ----------------------------------------------------------------------------------------
# 5. Straight-through confidence
# ----------------------------------------------------------------------------------------
# Straight-through confidence weighting (spec 2.4).
#
# ``STE(c)`` is exactly 1 in the forward pass, so the decoder input is ``U + R``
# numerically, while the backward pass hands the incoming gradient to ``c`` unchanged:
# ``dL/dc_t = sum_d dL/dH_{t,d} · U_{t,d}``. That is one of the three gradient paths
# into the router (the others: P inside the EMA, and G in the ratio loss).

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


# ----------------------------------------------------------------------------------------
# 6. Ratio loss: compression as a training target
# ----------------------------------------------------------------------------------------
# H-Net's ratio loss, the regulariser that makes compression emerge (spec 2.5).
#
# Pooled over the whole batch (all valid positions of all rows, not per row):
# ``F`` = fraction of positions chosen as boundaries (hard, no gradient),
# ``G`` = mean boundary probability (differentiable), and
#
#     L_ratio = N/(N-1) · [ (N-1)·F·G + (1-F)·(1-G) ],
#
# which equals 1 when F = G = 1/N and, through dL/dG = N/(N-1)·(N·F - 1), pushes the
# probabilities down when too many boundaries fire and up when too few do.

def ratio_loss(boundary_mask: Tensor, boundary_prob: Tensor, mask: Tensor, target: float) -> Tensor:
    """Scalar ratio loss for one stage with target compression ``target`` (N > 1)."""
    valid = mask.to(upcast(boundary_prob).dtype)
    count = valid.sum().clamp(min=1.0)
    frac_selected = ((boundary_mask.to(valid.dtype) * valid).sum() / count).detach()
    mean_prob = (boundary_prob * valid).sum() / count
    n = float(target)
    return n / (n - 1.0) * ((n - 1.0) * frac_selected * mean_prob
                            + (1.0 - frac_selected) * (1.0 - mean_prob))


def boundary_density(boundary_mask: Tensor, mask: Tensor) -> Tensor:
    """Fraction of valid positions that are boundaries (1/compression ratio)."""
    return (boundary_mask & mask).sum() / mask.sum().clamp(min=1)
