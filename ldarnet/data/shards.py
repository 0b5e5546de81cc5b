"""Token shards of the genome stage as a deterministic, resumable sample stream.

A shard is ``{split}.npy``: uint8 token ids of shape (windows, window), memory-mapped
(never loaded whole; never unpickled). The training stream is a sequence of epochs, each
a permutation of all windows drawn from ``(seed, epoch)``; sample ``k`` of the stream is
therefore a pure function of the seed and ``k``, which is what makes a resumed or
re-sharded (different GPU count) run see exactly the same data as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ldarnet.data.tokenizer import PAD, VOCAB_SIZE
from ldarnet.foundation.errors import InputError


class ShardError(InputError):
    """A missing, corrupt or mismatched token shard."""


def open_shard(path: str | Path, window: int | None = None) -> np.ndarray:
    """Memory-map a shard and check its type, shape and (sampled) values."""
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"token shard {path} does not exist; run the genome stage "
                         "(snakemake ... results/genome/<assembly>/windows/manifest.json)")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":  # numpy's own message for this would suggest unpickling
        raise ShardError(f"token shard {path} is not a .npy array file (it has no .npy "
                         "header; pickled data is never loaded); delete it and rerun the "
                         "genome stage")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ShardError(f"token shard {path} is not a readable .npy file (truncated or "
                         f"corrupt?): {err}; delete it and rerun the genome stage") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[0] == 0:
        raise ShardError(f"token shard {path} must be a non-empty uint8 array (windows, length), "
                         f"got {data.dtype} {data.shape}")
    if window is not None and data.shape[1] != window:
        raise ShardError(f"token shard {path} has windows of {data.shape[1]} tokens but the "
                         f"training config asks for seq_len={window}")
    probe = np.asarray(data[:: max(1, data.shape[0] // 64)])
    if probe.max() >= VOCAB_SIZE:
        raise ShardError(f"token shard {path} contains ids >= {VOCAB_SIZE}: not a token shard")
    return data


class SampleStream:
    """Sample ``k`` of an endless, epoch-wise shuffled stream over one or more shards."""

    def __init__(self, shards: list[np.ndarray], seed: int) -> None:
        self.shards = shards
        self.sizes = np.array([len(s) for s in shards])
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.total = int(self.offsets[-1])
        self.seed = seed
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.total, generator=gen).numpy()
            self._perm_epoch = epoch
        return self._perm

    def indices(self, start: int, count: int) -> np.ndarray:
        """Global window indices of stream samples ``start .. start+count-1``."""
        out = np.empty(count, dtype=np.int64)
        for i, k in enumerate(range(start, start + count)):
            epoch, pos = divmod(k, self.total)
            out[i] = self._permutation(epoch)[pos]
        return out

    def rows(self, indices: np.ndarray) -> torch.Tensor:
        """(len(indices), window) int64 token ids of the given global indices."""
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        rows = [np.asarray(self.shards[s][i - self.offsets[s]]) for s, i in zip(which, indices,
                                                                                strict=True)]
        return torch.from_numpy(np.stack(rows).astype(np.int64))


_COMPLEMENT = torch.tensor([3, 2, 1, 0, 4, 5, 6])


def reverse_complement_rows(ids: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Reverse-complement the rows where ``flip`` is True, within each row's valid length.

    Right padding stays on the right (multispecies records shorter than the window), so
    the batch remains right-padded as the model requires.
    """
    length = ids.shape[1]
    lengths = (ids != PAD).sum(dim=1, keepdim=True)
    t = torch.arange(length).unsqueeze(0)
    reversed_index = torch.where(t < lengths, lengths - 1 - t, t)
    index = torch.where(flip.unsqueeze(1), reversed_index, t.expand_as(ids))
    return torch.where(flip.unsqueeze(1), _COMPLEMENT[ids.gather(1, index)], ids)
