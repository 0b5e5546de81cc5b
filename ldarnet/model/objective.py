"""The pretraining objective: masked-LM cross-entropy + α · ratio loss (spec 2.5, 3.4).

The ratio loss exists to steer the router's probabilities towards compression 1/N. The
ablation arms (``fixed_grid``, ``random``) do not use those probabilities (p = b), so
their ratio term is exactly 0: it would otherwise be a constant that trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from ldarnet.data.tokenizer import IGNORE_INDEX
from ldarnet.model.config import ModelConfig
from ldarnet.model.network.dynamic_chunking import ratio_loss
from ldarnet.model.network.ldarnet import LDARNetOutput
from ldarnet.model.precision import upcast

DEFAULT_ALPHA = 0.03


@dataclass
class LossTerms:
    """Total loss and its parts (ratio = sum over chunking stages, before α)."""

    loss: Tensor
    mlm: Tensor
    ratio: Tensor


def masked_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over positions whose label is not ``IGNORE_INDEX`` (fp32)."""
    return F.cross_entropy(upcast(logits).reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def pretraining_loss(
    output: LDARNetOutput, labels: Tensor, cfg: ModelConfig, alpha: float = DEFAULT_ALPHA
) -> LossTerms:
    """L = L_MLM + α · Σ_stages L_ratio(N_stage), each ratio pooled over the batch.

    Only for ``routing.boundaries: learned``; the other arms get ratio = 0 exactly.
    """
    mlm = masked_lm_loss(output.logits, labels)
    if not cfg.routing.learned:
        return LossTerms(loss=mlm, mlm=mlm, ratio=mlm.new_zeros(()))
    ratio = sum(
        ratio_loss(r.boundary_mask, r.boundary_prob, r.mask, cfg.target_ratio_for_stage(s))
        for s, r in enumerate(output.router_outputs)
    )
    ratio = ratio if isinstance(ratio, Tensor) else mlm.new_zeros(())
    return LossTerms(loss=mlm + alpha * ratio, mlm=mlm, ratio=ratio)
