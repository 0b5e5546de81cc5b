"""Rotary position embedding (RoPE), GPT-NeoX "rotate-half" layout.

LDARNet's sliding-window attention layer uses rotary embeddings so that attention scores depend
only on the *relative* offset between two positions. The NeoX layout (as opposed to the
GPT-J/Meta interleaved layout) pairs channel ``c`` with channel ``c + dim/2`` of the rotary
part; this matters for checkpoint compatibility with models trained with flash-attn /
``rotary_emb`` kernels, which use the same non-interleaved convention.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RotaryEmbedding", "apply_rotary", "rotate_half"]


def rotate_half(x: Tensor) -> Tensor:
    """Map the halves ``[x1, x2]`` of the last dim to ``[-x2, x1]``.

    This is the 90-degree rotation of each (x1[c], x2[c]) pair, written on contiguous halves
    so that it is a cheap slice/concat instead of a strided gather.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the first ``cos.shape[-1]`` channels of ``x``; remaining channels pass through.

    ``x`` has shape (B, L, H, Dh); ``cos``/``sin`` have shape (L, dim) in a float dtype at least
    as precise as ``x``. The rotation is computed in the table dtype and then cast back, so that
    bf16/fp16 activations do not lose the phase precision of long positions.
    """
    dim = cos.shape[-1]
    cos_b = cos[None, :, None, :]
    sin_b = sin[None, :, None, :]
    x_rot = x[..., :dim].to(cos.dtype)
    rotated = (x_rot * cos_b + rotate_half(x_rot) * sin_b).to(x.dtype)
    if dim == x.shape[-1]:
        return rotated
    return torch.cat((rotated, x[..., dim:]), dim=-1)


class RotaryEmbedding(nn.Module):
    """GPT-NeoX style rotary position embedding applied to the first ``dim`` channels per head.

    Positions start at 0 for every row of the batch: LDARNet batches are right-padded, so the
    valid tokens of each sequence occupy positions ``0..len-1`` regardless of padding. Callers
    doing blockwise attention should rotate the full q/k once and slice afterwards; ``offset``
    exists for callers that only hold a slice starting at a known absolute position.
    """

    inv_freq: Tensor

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim <= 0 or dim % 2 != 0:
            raise ValueError(f"rotary dim must be a positive even integer, got dim={dim}")
        if base <= 0:
            raise ValueError(f"rotary base must be positive, got base={base}")
        self.dim = dim
        self.base = float(base)
        # Non-persistent: the frequencies are a pure function of (dim, base), so keeping them out
        # of state_dict avoids spurious missing/unexpected keys when loading checkpoints.
        inv_freq = self._compute_inv_freq(torch.float32, None)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _compute_inv_freq(self, dtype: torch.dtype, device: torch.device | None) -> Tensor:
        exponents = torch.arange(0, self.dim, 2, dtype=dtype, device=device) / self.dim
        return 1.0 / (self.base**exponents)

    def _inv_freq_as(self, dtype: torch.dtype) -> Tensor:
        """Inverse frequencies in ``dtype``, never derived from a lower-precision copy.

        The buffer is reused in the common fp32 case. If the module was cast (``.double()``,
        ``.half()``), the buffer holds a re-rounded copy, so it is recomputed from ``base``
        instead: a bf16 ``inv_freq`` would corrupt phases at long positions, and a float64
        request deserves float64-exact frequencies.
        """
        if self.inv_freq.dtype == torch.float32 and dtype == torch.float32:
            return self.inv_freq
        return self._compute_inv_freq(dtype, self.inv_freq.device)

    def cos_sin(
        self, seq_len: int, *, offset: int = 0, dtype: torch.dtype = torch.float32
    ) -> tuple[Tensor, Tensor]:
        """Return ``cos``/``sin`` tables of shape (seq_len, dim) for positions offset..offset+L-1.

        Tables are float32 (float64 when asked for), independent of the activation dtype.
        """
        inv_freq = self._inv_freq_as(dtype)
        positions = torch.arange(offset, offset + seq_len, dtype=dtype, device=inv_freq.device)
        freqs = torch.outer(positions, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    def forward(self, q: Tensor, k: Tensor, *, offset: int = 0) -> tuple[Tensor, Tensor]:
        """Rotate ``q`` and ``k`` of shape (B, L, H, Dh), Dh >= dim, at positions offset+0..L-1.

        Returns tensors of the same shape and dtype as the inputs.
        """
        if q.ndim != 4 or k.ndim != 4:
            raise ValueError(
                f"q and k must have shape (B, L, H, Dh), got q={tuple(q.shape)} k={tuple(k.shape)}"
            )
        if q.shape[1] != k.shape[1]:
            raise ValueError(
                f"q and k must have the same length, got {q.shape[1]} and {k.shape[1]}"
            )
        if q.shape[-1] < self.dim or k.shape[-1] < self.dim:
            raise ValueError(
                f"head dim ({q.shape[-1]}, {k.shape[-1]}) is smaller than rotary dim={self.dim}"
            )
        table_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
        cos, sin = self.cos_sin(q.shape[1], offset=offset, dtype=table_dtype)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}"
