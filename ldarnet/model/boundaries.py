"""Boundary selection: the one decision the ablation models change (spec 2.1 step 5).

A selector turns router probabilities ``p (b, l)`` and the valid mask into the hard
boundary mask. Everything around it (router parameters and compute, chunk, dechunk,
attention masking, decoder) is identical for every selector, so that a fixed-grid or
random-boundary model differs from LDARNet only in *where* its chunks start. Position 0
of every valid row is always a boundary, and padding never is.

Two consequences of a selector that ignores the router follow from the selector alone
(``uses_router_probabilities = False``): the routing module replaces ``p`` by the hard
``b`` (so the dechunk EMA and the confidence see 0/1 values, as if the router were
certain), and the objective drops the ratio loss, which would otherwise train
probabilities nothing uses (docs/ablation.md).

The ``random`` arm draws fresh boundaries for every training batch, but at evaluation
(``training=False``) the boundaries of a row must be a property of the sequence, not of
the batch it was evaluated in: the draw then comes from a per-row generator seeded by
(``routing.random_seed``, stage, row key), where the row key is a stable hash of the
row's own valid token ids (:func:`sequence_keys`, computed by :class:`LDARNet`).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ldarnet.model.config import RoutingConfig

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
