"""Batches of DNA strings for the model: encoded, right-padded with [PAD], and their mask.

The one collator of the project: fine-tuning, evaluation and ``ldarnet embed`` batch
sequences through it, so a sequence gets the same ids and mask whatever command reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ldarnet.data.tokenizer import PAD, encode
from ldarnet.foundation.errors import InputError


class BatchError(InputError):
    """A batch that cannot be encoded (no sequence, or an empty one)."""


def collate(sequences: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Right-pad a batch with [PAD] to its longest sequence: (input_ids int64, mask bool)."""
    if len(sequences) == 0:
        raise BatchError("cannot collate an empty batch: pass at least one sequence")
    encoded = [encode(s) for s in sequences]
    lengths = [len(e) for e in encoded]
    if min(lengths) == 0:
        raise BatchError(
            f"sequence {lengths.index(0)} of the batch is empty; remove empty sequences "
            "from the task before fine-tuning"
        )
    ids = np.full((len(encoded), max(lengths)), PAD, dtype=np.int64)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = tokens
    input_ids = torch.from_numpy(ids)
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return input_ids, mask
