"""Boundary selection: the one decision the ablation models change (spec 2.1 step 5).

A selector turns router probabilities ``p (b, l)`` and the valid mask into the hard
boundary mask. Everything around it (router parameters and compute, chunk, dechunk,
confidence, ratio loss) is identical for every selector, so that a fixed-grid or
random-boundary model differs from LDARNet only in *where* its chunks start.
Position 0 of every valid row is always a boundary, and padding never is.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from ldarnet.model.config import RoutingConfig


class BoundarySelector(Protocol):
    """Chooses hard boundaries from router probabilities."""

    name: str

    def select(self, prob: Tensor, mask: Tensor) -> Tensor:
        """prob (b, l) float, mask (b, l) bool -> boundary mask (b, l) bool."""
        ...


def _finish(boundary: Tensor, mask: Tensor) -> Tensor:
    boundary = boundary.clone()
    boundary[:, 0] = True
    return boundary & mask


class LearnedBoundaries:
    """The paper's rule: a boundary wherever the router's two-class argmax picks 1.

    ``p > 0.5`` strictly: a tie at exactly 0.5 is not a boundary (argmax picks class 0).
    """

    name = "learned"

    def select(self, prob: Tensor, mask: Tensor) -> Tensor:
        return _finish(prob > 0.5, mask)


class FixedGridBoundaries:
    """One boundary every ``stride`` positions (t mod stride == 0), whatever the input."""

    name = "fixed_grid"

    def __init__(self, stride: int) -> None:
        self.stride = stride

    def select(self, prob: Tensor, mask: Tensor) -> Tensor:
        t = torch.arange(prob.shape[1], device=prob.device)
        return _finish((t % self.stride == 0).expand_as(mask), mask)


class RandomBoundaries:
    """Boundaries drawn independently with probability ``rate`` (the target 1/N).

    Draws come from torch's global generator, which the training loop seeds, so runs
    are reproducible from their seed.
    """

    name = "random"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def select(self, prob: Tensor, mask: Tensor) -> Tensor:
        return _finish(torch.rand(prob.shape, device=prob.device) < self.rate, mask)


def make_selector(routing: RoutingConfig, target_ratio: float) -> BoundarySelector:
    """The selector named by ``routing.boundaries``."""
    if routing.boundaries == "learned":
        return LearnedBoundaries()
    if routing.boundaries == "fixed_grid":
        return FixedGridBoundaries(routing.grid_stride)
    if routing.boundaries == "random":
        return RandomBoundaries(1.0 / target_ratio)
    raise ValueError(f"unknown boundary selector {routing.boundaries!r}")
