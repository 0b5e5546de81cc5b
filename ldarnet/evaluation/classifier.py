"""Sequence classifier: LDARNet backbone + masked mean pooling + one linear layer (spec 4.3).

The whole backbone (encoder, router, chunking, main network, dechunk, decoder) is
fine-tuned; its LM head is simply not used and the ratio loss is not added, so the
router adapts through the task loss alone, as in the release. Pooling averages the
decoder output over *valid* positions only: with exact right padding, a sequence then
gets the same logits whatever it is batched with, which matters for variable-length
tasks (Genomic Benchmarks).
"""

from __future__ import annotations

from torch import Tensor, nn

from ldarnet.evaluation.errors import EvaluationError
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pooling import masked_mean


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
