"""Masked-language-model corruption of token batches (spec 3.4).

Only A/C/G/T positions are eligible (never N, [MASK] or [PAD]). Each eligible position
is selected independently with probability 0.15 (Bernoulli, not an exact count); of
the selected, 80 % become [MASK], 10 % a uniformly random nucleotide (which may equal
the original) and 10 % stay unchanged. Labels hold the original id at selected
positions and -100 elsewhere. A ``torch.Generator`` makes the masks reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldarnet.data.tokenizer import IGNORE_INDEX, MASK, T


def mask_tokens(
    ids: Tensor, generator: torch.Generator | None = None, mlm_probability: float = 0.15
) -> tuple[Tensor, Tensor]:
    """(corrupted input ids, labels) for a (b, l) long tensor of token ids."""
    eligible = ids <= T  # A, C, G, T are ids 0..3
    draw = torch.rand(ids.shape, generator=generator, device=ids.device)
    selected = eligible & (draw < mlm_probability)
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    action = torch.rand(ids.shape, generator=generator, device=ids.device)
    random_base = torch.randint(0, 4, ids.shape, generator=generator, device=ids.device)
    corrupted = torch.where(selected & (action < 0.8), torch.full_like(ids, MASK), ids)
    corrupted = torch.where(selected & (action >= 0.8) & (action < 0.9), random_base, corrupted)
    return corrupted, labels
