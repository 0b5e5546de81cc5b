"""The LDARNet masked language model: embedding → stage 0 → LM head (spec 1.7)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ldarnet.model.config import ModelConfig
from ldarnet.model.network.dynamic_chunking import RouterOutput, sequence_keys
from ldarnet.model.network.stage import Stage


@dataclass
class LDARNetOutput:
    """Logits (b, l, vocab), one router output per chunking stage, final hidden states."""

    logits: Tensor
    router_outputs: list[RouterOutput]
    hidden_states: Tensor


class LDARNet(nn.Module):
    """Hierarchical DNA language model with learned, dynamic tokenization."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model[0])
        self.hierarchy = Stage(cfg.arch_layout, cfg, stage=0, d_outer=None)
        self.lm_head = nn.Linear(cfg.d_model[0], cfg.vocab_size, bias=False)
        from ldarnet.model.network.init import init_weights  # local: init walks this class

        init_weights(self)

    def padding_mask(self, input_ids: Tensor) -> Tensor:
        """Valid positions: every token that is not [PAD]."""
        return input_ids != self.config.pad_token_id

    def row_keys(self, input_ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-row sequence keys (b,) int64: a stable hash of each row's valid token ids.

        What eval-mode random boundaries are seeded from, so that a sequence gets the same
        boundaries whatever batch or padding it comes with (ldarnet.model.network.dynamic_chunking).
        """
        return sequence_keys(input_ids, self.padding_mask(input_ids) if mask is None else mask)

    def forward(
        self, input_ids: Tensor, mask: Tensor | None = None, row_keys: Tensor | None = None
    ) -> LDARNetOutput:
        """input_ids (b, l) long; mask (b, l) bool, right-padded (default: id != [PAD]).

        ``row_keys`` (b,) int64 override the per-row keys of eval-mode random boundaries;
        by default they are derived from ``input_ids`` when (and only when) the model is in
        eval mode and has a random selector, so training pays no host synchronisation.
        """
        if input_ids.dim() != 2:
            raise ValueError(
                f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}"
            )
        hidden, mask, row_keys = self._embed(input_ids, mask, row_keys)
        hidden, routers = self.hierarchy(hidden, mask, row_keys)
        return LDARNetOutput(logits=self.lm_head(hidden), router_outputs=routers,
                             hidden_states=hidden)


    def route(self, input_ids: Tensor, mask: Tensor | None = None,
              row_keys: Tensor | None = None) -> RouterOutput:
        """Stage 0's router output alone: embedding → encoder → router.

        The same operations as the start of :meth:`forward` (hence the same p and b bit
        for bit, without the compressed mask the stage adds after chunking); the inner
        stages and the decoder, which cannot change stage 0's boundaries, do not run.
        What ``ldarnet segment`` computes for every tile of a genome.
        """
        if self.hierarchy.is_innermost:
            raise ValueError(f"model {self.config.name!r} has no chunking stage (layout "
                             f"{self.config.arch_layout}), hence no router")
        hidden, mask, row_keys = self._embed(input_ids, mask, row_keys)
        return self.hierarchy.route(hidden, mask, row_keys)[1]

    def _embed(self, input_ids: Tensor, mask: Tensor | None, row_keys: Tensor | None
               ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Embeddings, the (checked) padding mask and, in eval mode, the per-row keys."""
        if mask is None:
            mask = self.padding_mask(input_ids)
        check_right_padded(mask)
        hidden = self.embeddings(input_ids)
        if row_keys is None and not self.training and self.hierarchy.needs_row_keys:
            row_keys = sequence_keys(input_ids, mask)
        return hidden, mask, row_keys


def check_right_padded(mask: Tensor) -> None:
    """Padding must come after the valid tokens of each row (what collators produce)."""
    lengths = mask.sum(dim=1, keepdim=True)
    prefix = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < lengths
    if not torch.equal(prefix, mask.bool()):
        raise ValueError(
            "padding mask is not right-padded: each row must be valid tokens followed by "
            "[PAD]; re-pad the batch on the right"
        )
