"""Non-causal sliding-window multi-head self-attention (the last LDARNet encoder layer).

Pure-PyTorch reference path. Queries are processed in blocks so that memory grows as
O(L * (block + 2 * window)) instead of O(L^2): for long DNA contexts (tens of kilobases) a full
score matrix would not fit, while a band of width ``2 * window + 1`` per query is all that the
layer is allowed to see anyway.

CUDA fast path (docs/cuda.md): on a GPU, with fp16/bf16 activations and a kernel backend that
provides ``varlen_attention`` (flash-attn, see ldarnet/model/kernels_cuda.py), the same band is
computed by flash-attn over the valid tokens only: unpad → ``flash_attn_varlen_func`` with
``window_size=(W, W)`` → repad with zeros. Rotary is applied before, exactly as on the
reference path. Anything else (CPU, fp32/fp64, the ``torch`` backend, masks that are not right
padding, empty rows) takes the reference path unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model import kernels
from ldarnet.model.network.rotary import RotaryEmbedding

__all__ = ["SlidingWindowAttention"]

_FLASH_DTYPES = (torch.float16, torch.bfloat16)


class SlidingWindowAttention(nn.Module):
    """Multi-head self-attention where query ``i`` sees key ``j`` iff ``|i - j| <= window_size``.

    ``window_size == -1`` means global (non-causal full) attention. Padding keys are never
    attended. Padded query positions produce exactly zero output, so that downstream pooling
    or residual paths are not polluted by whatever the padding happened to contain.

    Args:
        d_model: model width; split into ``num_heads`` contiguous heads.
        num_heads: number of attention heads.
        rotary_emb_dim: number of leading channels of each head rotated by RoPE (even,
            ``<= head_dim``).
        window_size: one-sided window half-width (``-1`` for global attention).
        block_size: number of queries per block; trades kernel-call overhead against wasted
            work on the corners of the ``block x (block + 2*window)`` key slab.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        rotary_emb_dim: int,
        window_size: int,
        block_size: int = 256,
    ) -> None:
        super().__init__()
        if d_model <= 0:
            raise ValueError(f"d_model must be positive, got d_model={d_model}")
        if num_heads <= 0:
            raise ValueError(f"num_heads must be positive, got num_heads={num_heads}")
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        head_dim = d_model // num_heads
        if rotary_emb_dim <= 0 or rotary_emb_dim % 2 != 0 or rotary_emb_dim > head_dim:
            raise ValueError(
                f"rotary_emb_dim must be a positive even integer <= head_dim={head_dim}, "
                f"got rotary_emb_dim={rotary_emb_dim}"
            )
        if window_size != -1 and window_size < 0:
            raise ValueError(
                f"window_size must be -1 (global) or >= 0, got window_size={window_size}"
            )
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got block_size={block_size}")

        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.rotary_emb_dim = rotary_emb_dim
        self.window_size = window_size
        self.block_size = block_size
        self.softmax_scale = 1.0 / math.sqrt(head_dim)

        # Fused projection: output channels are [q | k | v], each d_model wide with heads
        # contiguous, matching the layout of flash-attn style MHA checkpoints.
        self.Wqkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.rotary_emb = RotaryEmbedding(rotary_emb_dim)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}, "
            f"rotary_emb_dim={self.rotary_emb_dim}, window_size={self.window_size}, "
            f"block_size={self.block_size}"
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend within the window over valid tokens.

        Args:
            x: (B, L, d_model) activations.
            mask: optional (B, L) bool, True for valid tokens. ``None`` means all valid.
                Correctness does not assume right padding; only RoPE positions do (they
                start at 0 for every row).

        Returns:
            (B, L, d_model); rows at invalid positions are exactly zero.
        """
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, L, {self.d_model}), got {tuple(x.shape)}")
        B, L, _ = x.shape
        if L == 0:
            return self.out_proj(x)
        if mask is not None:
            if mask.shape != (B, L):
                raise ValueError(f"mask must have shape {(B, L)}, got {tuple(mask.shape)}")
            mask = mask.to(device=x.device, dtype=torch.bool)
            if bool(mask.all()):
                mask = None  # fast path: no key masking, no output zeroing needed

        qkv = self.Wqkv(x).view(B, L, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)
        # Rotate once over the whole sequence, then slice per block: no per-block offsets.
        q, k = self.rotary_emb(q, k)
        if q.is_cuda and q.dtype in _FLASH_DTYPES and self.head_dim % 8 == 0 \
                and self.head_dim <= 256:
            flash = kernels.fast_path("varlen_attention")
            if flash is not None:
                out = self._varlen_attention(flash, q, k, v, mask)
                if out is not None:
                    return self.out_proj(out.reshape(B, L, self.d_model))
        # (B, H, L, Dh) is the layout SDPA expects.
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))

        out = self._blockwise_attention(q, k, v, mask)  # (B, H, L, Dh)
        out = out.transpose(1, 2).reshape(B, L, self.d_model)
        if mask is not None:
            # where() rather than multiply: exact zeros even if a padded row were non-finite.
            out = torch.where(mask[..., None], out, out.new_zeros(()))
        return self.out_proj(out)

    def _varlen_attention(
        self, flash, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None
    ) -> Tensor | None:
        """Banded attention by a packed-sequence kernel; (B, L, H, Dh) in, out, or None.

        Valid tokens are packed row after row (``cu_seqlens`` from the padding mask), the
        kernel restricts each query to keys of its own row within ``±window``, and the result
        is scattered back with exact zeros at padded positions (as the reference produces).
        Packing measures the window in packed positions, which equal the original ones only
        for right padding, and an empty row is a zero-length sequence: in either case this
        returns None and the reference path runs instead.
        """
        B, L, H, Dh = q.shape
        if mask is None:
            lengths = torch.full((B,), L, dtype=torch.int32, device=q.device)
            max_len = L
            index = None
        else:
            lengths = mask.sum(dim=1, dtype=torch.int32)
            prefix = torch.arange(L, device=q.device).unsqueeze(0) < lengths.unsqueeze(1)
            max_len, min_len, right_padded = self._mask_facts(lengths, prefix, mask)
            if not right_padded or min_len == 0:
                return None
            index = mask.reshape(-1).nonzero().squeeze(1)
        cu_seqlens = torch.zeros(B + 1, dtype=torch.int32, device=q.device)
        cu_seqlens[1:] = torch.cumsum(lengths, dim=0)
        packed = [t.reshape(B * L, H, Dh) for t in (q, k, v)]
        if index is not None:
            packed = [t.index_select(0, index) for t in packed]
        # window_size -1 (global) is flash-attn's "unbounded" too.
        out = flash(*packed, cu_seqlens, max_len, self.window_size, self.softmax_scale)
        if index is None:
            return out.view(B, L, H, Dh)
        full = out.new_zeros(B * L, H, Dh).index_copy(0, index, out)
        return full.view(B, L, H, Dh)

    @staticmethod
    def _mask_facts(lengths: Tensor, prefix: Tensor, mask: Tensor) -> tuple[int, int, bool]:
        """Longest and shortest row and whether ``mask`` is right padding, in one sync."""
        right = (prefix == mask).all().to(lengths.dtype)
        max_len, min_len, ok = torch.stack([lengths.max(), lengths.min(), right]).tolist()
        return int(max_len), int(min_len), bool(ok)

    def _blockwise_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Banded attention over query blocks; inputs/outputs are (B, H, L, Dh)."""
        L = q.shape[2]
        w = self.window_size
        window = None if (w == -1 or w >= L - 1) else w
        # With no band and no padding there is nothing to mask: one unmasked call lets SDPA use
        # its fused kernel. Otherwise block the queries so the materialised mask (and, on the
        # math path, the score matrix) stays O(block * keys).
        block = L if (window is None and mask is None) else self.block_size

        device = q.device
        outputs: list[Tensor] = []
        for start in range(0, L, block):
            end = min(L, start + block)
            if window is None:
                k_start, k_end = 0, L
            else:
                k_start, k_end = max(0, start - window), min(L, end + window)
            allowed = self._block_mask(start, end, k_start, k_end, window, mask, device)
            outputs.append(
                F.scaled_dot_product_attention(
                    q[:, :, start:end],
                    k[:, :, k_start:k_end],
                    v[:, :, k_start:k_end],
                    attn_mask=allowed,
                    scale=self.softmax_scale,
                )
            )
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)

    @staticmethod
    def _block_mask(
        q_start: int,
        q_end: int,
        k_start: int,
        k_end: int,
        window: int | None,
        mask: Tensor | None,
        device: torch.device,
    ) -> Tensor | None:
        """Boolean attend-mask (True = may attend) broadcastable to (B, H, Lq, Lk).

        Every query is always allowed to attend to itself. For valid queries this changes
        nothing (they are valid keys inside their own window); for padded queries it guarantees
        a non-empty softmax row. What a kernel returns for a fully masked row is backend-specific
        (NaN in some, 0 in others), so we never hand it one; padded outputs are zeroed anyway.
        """
        q_pos = torch.arange(q_start, q_end, device=device)
        k_pos = torch.arange(k_start, k_end, device=device)
        rel = q_pos[:, None] - k_pos[None, :]  # (Lq, Lk)
        band = None if window is None else rel.abs() <= window
        if mask is None:
            return band
        key_ok = mask[:, None, k_start:k_end] | (rel == 0)  # (B, Lq, Lk)
        if band is not None:
            key_ok = key_ok & band
        return key_ok[:, None]
