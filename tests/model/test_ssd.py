"""The chunked SSD scan against the literal recurrence."""

from __future__ import annotations

import pytest
import torch

from ldarnet.model.network.ssd import ssd_chunked, ssd_sequential


def _inputs(b: int, length: int, h: int, p: int, g: int, n: int, requires_grad: bool = False):
    f64 = torch.float64
    x = torch.randn(b, length, h, p, dtype=f64, requires_grad=requires_grad)
    dt = (torch.rand(b, length, h, dtype=f64) * 0.9 + 0.05).requires_grad_(requires_grad)
    A = (-torch.rand(h, dtype=f64) * 4 - 0.1).requires_grad_(requires_grad)
    B = torch.randn(b, length, g, n, dtype=f64, requires_grad=requires_grad)
    C = torch.randn(b, length, g, n, dtype=f64, requires_grad=requires_grad)
    D = torch.randn(h, dtype=f64, requires_grad=requires_grad)
    return x, dt, A, B, C, D


@pytest.mark.parametrize(
    ("b", "length", "h", "p", "g", "n", "chunk"),
    [
        (1, 1, 1, 1, 1, 1, 4),
        (2, 37, 4, 3, 2, 5, 8),  # length not a multiple of the chunk
        (2, 64, 4, 8, 1, 16, 16),  # exact multiple
        (3, 50, 6, 2, 3, 4, 7),  # odd chunk size
        (1, 33, 2, 4, 1, 8, 64),  # chunk larger than the sequence
        (2, 29, 4, 4, 2, 3, 1),  # chunk of one = pure state passing
    ],
)
def test_chunked_matches_sequential_float64(b, length, h, p, g, n, chunk) -> None:
    x, dt, A, B, C, D = _inputs(b, length, h, p, g, n)
    expected = ssd_sequential(x, dt, A, B, C, D)
    got = ssd_chunked(x, dt, A, B, C, chunk, D)
    assert got.shape == (b, length, h, p)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def test_per_channel_skip_weight() -> None:
    """D of shape (h, p) (mamba-ssm's D_has_hdim) is y += D[h, c] * x[..., h, c]."""
    x, dt, A, B, C, _ = _inputs(2, 21, 3, 4, 1, 5)
    D = torch.randn(3, 4, dtype=torch.float64)
    expected = ssd_sequential(x, dt, A, B, C) + x * D
    torch.testing.assert_close(ssd_sequential(x, dt, A, B, C, D), expected)
    torch.testing.assert_close(ssd_chunked(x, dt, A, B, C, 8, D), expected,
                               atol=1e-10, rtol=1e-10)


def test_result_does_not_depend_on_chunk_size() -> None:
    x, dt, A, B, C, D = _inputs(2, 100, 4, 4, 2, 8)
    outs = [ssd_chunked(x, dt, A, B, C, q, D) for q in (3, 16, 25, 100, 256)]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-10, rtol=1e-10)


def test_gradients_match_sequential() -> None:
    inputs = _inputs(2, 21, 2, 3, 1, 4, requires_grad=True)
    ssd_sequential(*inputs).pow(2).sum().backward()
    expected = [t.grad.clone() for t in inputs]
    for t in inputs:
        t.grad = None
    x, dt, A, B, C, D = inputs
    ssd_chunked(x, dt, A, B, C, 5, D).pow(2).sum().backward()
    for t, g in zip(inputs, expected, strict=True):
        torch.testing.assert_close(t.grad, g, atol=1e-9, rtol=1e-9)


def test_scan_is_causal() -> None:
    x, dt, A, B, C, D = _inputs(1, 40, 2, 2, 1, 3)
    base = ssd_chunked(x, dt, A, B, C, 8, D)
    x2 = x.clone()
    x2[:, 25:] += 1.0
    changed = ssd_chunked(x2, dt, A, B, C, 8, D)
    torch.testing.assert_close(changed[:, :25], base[:, :25], atol=0, rtol=0)
    assert (changed[:, 25:] - base[:, 25:]).abs().max() > 1e-3


def test_float32_close_to_float64() -> None:
    x, dt, A, B, C, D = _inputs(2, 300, 4, 8, 1, 16)
    ref = ssd_sequential(x, dt, A, B, C, D)
    got = ssd_chunked(x.float(), dt.float(), A.float(), B.float(), C.float(), 64, D.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, atol=2e-4, rtol=1e-4)
