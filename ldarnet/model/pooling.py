"""Pooling of the model's per-position hidden states into one vector per sequence."""

from __future__ import annotations

from torch import Tensor

from ldarnet.model.precision import upcast


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden`` (b, l, d) over the valid positions of ``mask`` (b, l) → (b, d).

    Shared by the classifier and ``ldarnet embed`` so that embeddings are exactly the
    representation the fine-tuning head sees. Pools in (at least) fp32: a bf16 sum over
    hundreds of positions loses digits.
    """
    hidden = upcast(hidden)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    counts = weights.sum(dim=1).clamp_min(1.0)
    return (hidden * weights).sum(dim=1) / counts
