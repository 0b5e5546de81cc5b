"""H-Net's ratio loss, the regulariser that makes compression emerge (spec 2.5).

Pooled over the whole batch (all valid positions of all rows, not per row):
``F`` = fraction of positions chosen as boundaries (hard, no gradient),
``G`` = mean boundary probability (differentiable), and

    L_ratio = N/(N-1) · [ (N-1)·F·G + (1-F)·(1-G) ],

which equals 1 when F = G = 1/N and, through dL/dG = N/(N-1)·(N·F - 1), pushes the
probabilities down when too many boundaries fire and up when too few do.
"""

from __future__ import annotations

from torch import Tensor

from ldarnet.model.precision import upcast


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

