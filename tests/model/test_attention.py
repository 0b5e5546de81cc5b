"""Tests for the sliding-window attention layer and the NeoX rotary embedding.

The blockwise implementation is checked against a naive O(L^2) reference written here from
scratch (its own RoPE, its own band/padding mask), in float64 so that agreement can be demanded
to ~1e-10 rather than hidden behind float32 tolerances.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import ldarnet.model.network.attention as attention_module
from ldarnet.model.network.attention import SlidingWindowAttention
from ldarnet.model.network.rotary import RotaryEmbedding

# --------------------------------------------------------------------------- helpers


def _reference_rope(x: Tensor, rot_dim: int, base: float = 10000.0) -> Tensor:
    """Independent NeoX RoPE: channel c pairs with c + rot_dim/2, angle = pos * base^(-2c/dim)."""
    _, L, _, _ = x.shape
    half = rot_dim // 2
    pos = torch.arange(L, dtype=torch.float64)[:, None]
    c = torch.arange(half, dtype=torch.float64)[None, :]
    theta = pos * base ** (-2.0 * c / rot_dim)  # (L, half)
    cos = theta.cos()[None, :, None, :].to(x.dtype)
    sin = theta.sin()[None, :, None, :].to(x.dtype)
    a, b = x[..., :half], x[..., half:rot_dim]
    return torch.cat((a * cos - b * sin, b * cos + a * sin, x[..., rot_dim:]), dim=-1)


def _dense_reference(x: Tensor, mask: Tensor | None, m: SlidingWindowAttention) -> Tensor:
    """Full L x L attention with an explicit band + key-padding mask; padded queries -> 0."""
    B, L, D = x.shape
    H, Dh = m.num_heads, m.head_dim
    if mask is None:
        mask = torch.ones(B, L, dtype=torch.bool)
    w_q, w_k, w_v = m.Wqkv.weight.split(D, dim=0)
    q = (x @ w_q.T).view(B, L, H, Dh)
    k = (x @ w_k.T).view(B, L, H, Dh)
    v = (x @ w_v.T).view(B, L, H, Dh)
    q = _reference_rope(q, m.rotary_emb_dim)
    k = _reference_rope(k, m.rotary_emb_dim)
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(Dh)
    i = torch.arange(L)[:, None]
    j = torch.arange(L)[None, :]
    band = (
        torch.ones(L, L, dtype=torch.bool)
        if m.window_size == -1
        else (i - j).abs() <= (m.window_size)
    )
    allowed = band[None, None] & mask[:, None, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # fully masked rows -> 0
    out = torch.einsum("bhij,bjhd->bihd", probs, v).reshape(B, L, D)
    out = out * mask[..., None]
    return out @ m.out_proj.weight.T


def _make(
    d_model: int = 32,
    num_heads: int = 4,
    rot: int = 4,
    window: int = 3,
    block: int = 8,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> SlidingWindowAttention:
    torch.manual_seed(seed)
    return SlidingWindowAttention(d_model, num_heads, rot, window, block_size=block).to(dtype)


def _lengths_mask(lengths: list[int], L: int) -> Tensor:
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(
    ("L", "window", "block"),
    [
        (37, 5, 8),  # L not a multiple of block
        (64, 0, 16),  # window 0: each token sees only itself
        (50, 100, 16),  # window >= L: global
        (45, -1, 7),  # explicit global
        (40, 39, 16),  # window == L - 1: exactly global
        (40, 38, 16),  # one pair short of global
        (33, 3, 1),  # one query per block
        (100, 10, 64),  # block larger than window, last block ragged
        (30, 4, 64),  # block larger than L
    ],
)
@pytest.mark.parametrize("padded", [False, True])
def test_blockwise_matches_dense_reference(L: int, window: int, block: int, padded: bool) -> None:
    m = _make(window=window, block=block, rot=6)
    B = 3
    x = torch.randn(B, L, m.d_model, dtype=torch.float64)
    mask = _lengths_mask([L, L // 2, 1], L) if padded else None
    got = m(x, mask)
    want = _dense_reference(x, mask, m)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_non_right_padded_mask_matches_reference() -> None:
    """Holes in the middle of a row are still never attended (no right-padding assumption)."""
    L = 48
    m = _make(window=5, block=8)
    x = torch.randn(2, L, m.d_model, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, L, generator=g) < 0.6
    mask[:, 0] = True
    got = m(x, mask)
    torch.testing.assert_close(got, _dense_reference(x, mask, m), atol=1e-10, rtol=1e-10)
    assert torch.equal(got[~mask], torch.zeros_like(got[~mask]))


def test_block_size_does_not_change_result() -> None:
    x = torch.randn(2, 70, 32, dtype=torch.float64)
    mask = _lengths_mask([70, 41], 70)
    outs = []
    for block in (1, 5, 16, 70, 512):
        m = _make(window=7, block=block)
        outs.append(m(x, mask))
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=1e-12, rtol=1e-12)


def test_key_slab_stays_banded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory is O(L * (block + 2w)): no attention call ever sees more keys than that."""
    L, window, block = 1000, 10, 64
    seen: list[tuple[int, int]] = []
    real = attention_module.F.scaled_dot_product_attention

    def spy(q: Tensor, k: Tensor, v: Tensor, **kw: object) -> Tensor:
        seen.append((q.shape[2], k.shape[2]))
        mask = kw.get("attn_mask")
        if isinstance(mask, Tensor):
            assert mask.shape[-2:] == (q.shape[2], k.shape[2])
        return real(q, k, v, **kw)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    m = _make(window=window, block=block, dtype=torch.float32)
    m(torch.randn(1, L, 32), _lengths_mask([900], L))
    assert len(seen) == math.ceil(L / block)
    assert sum(lq for lq, _ in seen) == L
    assert max(lk for _, lk in seen) <= block + 2 * window


# --------------------------------------------------------------------------- window


def test_window_is_respected_exactly() -> None:
    L, window, block = 64, 4, 8
    m = _make(window=window, block=block)
    x = torch.randn(1, L, m.d_model, dtype=torch.float64)
    base = m(x)
    for j in (0, 13, 26, 40, 63):
        x2 = x.clone()
        x2[0, j] += torch.randn(m.d_model, dtype=torch.float64)
        changed = (m(x2) - base).abs().amax(dim=-1)[0] > 0
        expected = (torch.arange(L) - j).abs() <= window
        # Outside the window: bit-identical. Inside: actually different.
        assert torch.equal(changed, expected), j


def test_window_zero_is_value_projection_only() -> None:
    """With window 0 the softmax is over one key, so the output is out_proj(v_i)."""
    m = _make(window=0, block=4)
    x = torch.randn(2, 9, m.d_model, dtype=torch.float64)
    v = x @ m.Wqkv.weight[2 * m.d_model :].T
    torch.testing.assert_close(m(x), v @ m.out_proj.weight.T, atol=1e-12, rtol=1e-12)


# --------------------------------------------------------------------------- padding


def test_padding_alone_vs_batched() -> None:
    m = _make(window=6, block=8)
    short = torch.randn(1, 20, m.d_model, dtype=torch.float64)
    long = torch.randn(1, 50, m.d_model, dtype=torch.float64)
    filler = torch.randn(1, 30, m.d_model, dtype=torch.float64) * 100.0
    batch = torch.cat((torch.cat((short, filler), dim=1), long), dim=0)
    mask = _lengths_mask([20, 50], 50)
    batched = m(batch, mask)
    torch.testing.assert_close(batched[0, :20], m(short)[0], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(batched[1], m(long)[0], atol=1e-12, rtol=1e-12)
    # Padded query outputs are exactly zero.
    assert torch.equal(batched[0, 20:], torch.zeros_like(batched[0, 20:]))


def test_padded_values_never_leak() -> None:
    m = _make(window=40, block=8)
    L = 50
    mask = _lengths_mask([50, 17], L)
    x = torch.randn(2, L, m.d_model, dtype=torch.float64)
    x2 = x.clone()
    x2[1, 17:] = torch.randn(L - 17, m.d_model, dtype=torch.float64) * 1e6
    y, y2 = m(x, mask), m(x2, mask)
    assert torch.equal(y[mask], y2[mask])
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))


@pytest.mark.parametrize("window", [0, 2, -1])
def test_no_nan_for_mostly_or_fully_padded_rows(window: int) -> None:
    m = _make(window=window, block=4, dtype=torch.float32)
    L = 33
    mask = _lengths_mask([33, 1, 0], L)
    x = torch.randn(3, L, m.d_model, requires_grad=True)
    y = m(x, mask)
    assert torch.isfinite(y).all()
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))
    assert torch.equal(y[2], torch.zeros_like(y[2]))
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[2], torch.zeros_like(x.grad[2]))
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_attention_kernel_never_gets_an_empty_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fully masked softmax rows are backend-defined (NaN on some kernels, 0 on others).

    The layer must not rely on either: every row handed to the kernel has a key to attend.
    """
    rows_ok: list[bool] = []
    real = attention_module.F.scaled_dot_product_attention

    def spy(q: Tensor, k: Tensor, v: Tensor, **kw: object) -> Tensor:
        mask = kw.get("attn_mask")
        if isinstance(mask, Tensor):
            rows_ok.append(bool(mask.any(dim=-1).all()))
        return real(q, k, v, **kw)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    for window in (0, 3, -1):
        m = _make(window=window, block=4, dtype=torch.float32)
        mask = _lengths_mask([20, 1, 0], 20)
        mask[0, 5:9] = False  # a hole wider than the window
        m(torch.randn(3, 20, m.d_model), mask)
    assert rows_ok and all(rows_ok)


def test_all_true_mask_equals_no_mask() -> None:
    m = _make(window=5, block=8)
    x = torch.randn(2, 30, m.d_model, dtype=torch.float64)
    torch.testing.assert_close(
        m(x, torch.ones(2, 30, dtype=torch.bool)), m(x), atol=1e-12, rtol=1e-12
    )


# --------------------------------------------------------------------------- rotary


def test_rope_scores_depend_only_on_relative_position() -> None:
    torch.manual_seed(0)
    dim, L = 16, 64
    rope = RotaryEmbedding(dim)
    qv = torch.randn(dim, dtype=torch.float64)
    kv = torch.randn(dim, dtype=torch.float64)

    def score(i: int, j: int) -> float:
        q = torch.zeros(1, L, 1, dim, dtype=torch.float64)
        k = torch.zeros_like(q)
        q[0, i, 0] = qv
        k[0, j, 0] = kv
        qr, kr = rope(q, k)
        return float(qr[0, i, 0] @ kr[0, j, 0])

    for delta in (0, 1, 5, -7):
        ref = score(20, 20 - delta)
        for i in (8, 31, 50):
            assert score(i, i - delta) == pytest.approx(ref, abs=1e-10)
    # ...and it does depend on the offset (otherwise the check above is vacuous).
    assert abs(score(20, 19) - score(20, 15)) > 1e-3


def test_rope_neox_layout_hand_computed() -> None:
    """dim=4, base=10000: inv_freq = [1, 1/100]; channel 0 pairs with 2, channel 1 with 3."""
    rope = RotaryEmbedding(4)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).expand(1, 3, 1, 4).clone()
    q, k = rope(x, x)
    for p in range(3):
        a, b = float(p), p / 100.0
        want = [
            1 * math.cos(a) - 3 * math.sin(a),
            2 * math.cos(b) - 4 * math.sin(b),
            3 * math.cos(a) + 1 * math.sin(a),
            4 * math.cos(b) + 2 * math.sin(b),
        ]
        torch.testing.assert_close(q[0, p, 0], torch.tensor(want, dtype=torch.float64))
        torch.testing.assert_close(k[0, p, 0], torch.tensor(want, dtype=torch.float64))
    # Position 0 is the identity.
    assert torch.equal(q[0, 0, 0], x[0, 0, 0])


def test_rope_passes_extra_channels_and_keeps_dtype() -> None:
    rope = RotaryEmbedding(8)
    q = torch.randn(2, 10, 3, 16, dtype=torch.bfloat16)
    k = torch.randn(2, 10, 3, 16, dtype=torch.bfloat16)
    qr, kr = rope(q, k)
    assert qr.dtype == kr.dtype == torch.bfloat16
    assert torch.equal(qr[..., 8:], q[..., 8:])
    assert torch.equal(kr[..., 8:], k[..., 8:])
    assert not torch.equal(qr[:, 1:, :, :8], q[:, 1:, :, :8])


def test_rope_offset_matches_slice() -> None:
    rope = RotaryEmbedding(8)
    q = torch.randn(1, 30, 2, 8)
    k = torch.randn(1, 30, 2, 8)
    qf, kf = rope(q, k)
    qs, ks = rope(q[:, 12:], k[:, 12:], offset=12)
    torch.testing.assert_close(qs, qf[:, 12:])
    torch.testing.assert_close(ks, kf[:, 12:])


def test_rotary_buffer_not_in_state_dict() -> None:
    rope = RotaryEmbedding(8)
    assert "inv_freq" in dict(rope.named_buffers())
    assert "inv_freq" not in rope.state_dict()
    m = SlidingWindowAttention(64, 4, 8, 5)
    assert set(m.state_dict()) == {"Wqkv.weight", "out_proj.weight"}


def test_rope_survives_half_precision_cast() -> None:
    """A module cast to bf16 must not compute phases from a bf16-rounded inv_freq."""
    ref = RotaryEmbedding(8)
    cast = RotaryEmbedding(8).to(torch.bfloat16)
    q = torch.randn(1, 2048, 1, 8)
    torch.testing.assert_close(cast(q, q)[0], ref(q, q)[0])


def test_rope_rejects_odd_dim() -> None:
    with pytest.raises(ValueError, match="dim=5"):
        RotaryEmbedding(5)


# --------------------------------------------------------------------------- parameters


def test_parameter_count_and_gradients() -> None:
    torch.manual_seed(0)
    m = SlidingWindowAttention(512, 16, 32, 1023)
    assert m.Wqkv.weight.shape == (1536, 512)
    assert m.Wqkv.bias is None and m.out_proj.bias is None
    assert sum(p.numel() for p in m.parameters()) == 786_432 + 262_144 == 1_048_576
    x = torch.randn(1, 40, 512)
    m(x, _lengths_mask([30], 40)).sum().backward()
    for name in ("Wqkv", "out_proj"):
        grad = getattr(m, name).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"d_model": 30, "num_heads": 4}, "num_heads"),
        ({"num_heads": 0}, "num_heads"),
        ({"d_model": 0}, "d_model"),
        ({"rotary_emb_dim": 3}, "rotary_emb_dim"),
        ({"rotary_emb_dim": 10}, "rotary_emb_dim"),  # > head_dim = 8
        ({"rotary_emb_dim": 0}, "rotary_emb_dim"),
        ({"window_size": -2}, "window_size"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, int], field: str) -> None:
    args = {"d_model": 32, "num_heads": 4, "rotary_emb_dim": 4, "window_size": 3, "block_size": 8}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        SlidingWindowAttention(**args)


def test_forward_rejects_bad_shapes() -> None:
    m = _make(dtype=torch.float32)
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.randn(2, 5, 31))
    with pytest.raises(ValueError, match="mask must have shape"):
        m(torch.randn(2, 5, 32), torch.ones(2, 6, dtype=torch.bool))
