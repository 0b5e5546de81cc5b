"""Sequence classifier: LDARNet backbone + masked mean pooling + one linear layer (spec 4.3).

The whole backbone (encoder, router, chunking, main network, dechunk, decoder) is
fine-tuned; its LM head is simply not used and the ratio loss is not added, so the
router adapts through the task loss alone, as in the release. Pooling averages the
decoder output over *valid* positions only: with exact right padding, a sequence then
gets the same logits whatever it is batched with, which matters for variable-length
tasks (Genomic Benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ldarnet.data.tokenizer import PAD, encode
from ldarnet.evaluation.errors import EvaluationError
from ldarnet.model.ldarnet import LDARNet
from ldarnet.model.precision import upcast


class SequenceClassifier(nn.Module):
    """Logits (b, num_classes) of DNA sequences from a (pre)trained LDARNet."""

    def __init__(self, backbone: LDARNet, num_classes: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise EvaluationError(
                f"num_classes must be an integer >= 2, got {num_classes!r}; a task has at "
                "least two labels (num_classes = max(train label) + 1)"
            )
        self.backbone = backbone
        # PyTorch default init, with bias, no dropout: the release's head.
        self.head = nn.Linear(backbone.config.d_model[0], num_classes)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def forward(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        """input_ids (b, l) long, mask (b, l) bool right-padded → logits (b, num_classes)."""
        return self.head(masked_mean(self.backbone(input_ids, mask).hidden_states, mask))


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


def collate(sequences: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Right-pad a batch with [PAD] to its longest sequence: (input_ids int64, mask bool)."""
    if len(sequences) == 0:
        raise EvaluationError("cannot collate an empty batch: pass at least one sequence")
    encoded = [encode(s) for s in sequences]
    lengths = [len(e) for e in encoded]
    if min(lengths) == 0:
        raise EvaluationError(
            f"sequence {lengths.index(0)} of the batch is empty; remove empty sequences "
            "from the task before fine-tuning"
        )
    ids = np.full((len(encoded), max(lengths)), PAD, dtype=np.int64)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = tokens
    input_ids = torch.from_numpy(ids)
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return input_ids, mask
