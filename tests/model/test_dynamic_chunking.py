"""Router, chunk, dechunk, STE and ratio loss against direct loop implementations."""

from __future__ import annotations

import math

import pytest
import torch

from ldarnet.model.network.dynamic_chunking import (
    FixedGridBoundaries,
    LearnedBoundaries,
    RandomBoundaries,
    RoutingModule,
    boundary_density,
    boundary_probability,
    chunk,
    dechunk,
    ratio_loss,
    straight_through,
)

F64 = torch.float64


def _mask(lengths: list[int]) -> torch.Tensor:
    return torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]


# ---------------------------------------------------------------------------- router
def _router_loop(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    b, length, _ = q.shape
    p = torch.zeros(b, length, dtype=F64)
    for i in range(b):
        for t in range(length):
            if t == 0:
                p[i, t] = 1.0
                continue
            qa, qb = q[i, t - 1] / q[i, t - 1].norm(), q[i, t] / q[i, t].norm()
            ka, kb = k[i, t - 1] / k[i, t - 1].norm(), k[i, t] / k[i, t].norm()
            s = 0.5 * (qa @ kb + qb @ ka)
            p[i, t] = min(max((1 - s) / 2, 0.0), 1.0)
    return p


def test_boundary_probability_matches_loop() -> None:
    q = torch.randn(3, 17, 8, dtype=F64)
    k = torch.randn(3, 17, 8, dtype=F64)
    torch.testing.assert_close(boundary_probability(q, k), _router_loop(q, k))


def test_router_identity_init_and_decisions() -> None:
    router = RoutingModule(6, LearnedBoundaries()).double()
    assert torch.equal(router.q_proj_layer.weight, torch.eye(6, dtype=F64))
    # identical neighbours -> p = 0, opposite -> p = 1, orthogonal -> p = 0.5 (tie: no boundary)
    e = torch.tensor([[[1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0], [-1.0, 0, 0, 0, 0, 0],
                       [0, 1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]]], dtype=F64)
    mask = torch.tensor([[True, True, True, True, False]])
    out = router(e, mask)
    expected = torch.tensor([[1.0, 0.0, 1.0, 0.5, 0.0]], dtype=F64)
    torch.testing.assert_close(out.boundary_prob, expected)
    assert out.boundary_mask.tolist() == [[True, False, True, False, False]]
    torch.testing.assert_close(out.confidence.squeeze(-1),
                               torch.tensor([[1.0, 1.0, 1.0, 0.5, 1.0]], dtype=F64))


def test_padding_is_never_a_boundary_and_position_zero_always_is() -> None:
    p = torch.rand(4, 12)
    mask = _mask([12, 5, 1, 8])
    for selector in (LearnedBoundaries(), FixedGridBoundaries(3), RandomBoundaries(0.5)):
        b = selector.select(p, mask)
        assert not (b & ~mask).any(), selector.name
        assert b[:, 0].all(), selector.name


def test_fixed_grid_positions() -> None:
    b = FixedGridBoundaries(4).select(torch.zeros(1, 10), _mask([10]))
    assert b[0].nonzero().flatten().tolist() == [0, 4, 8]


# ----------------------------------------------------------------------------- chunk
def test_chunk_gathers_boundaries_in_order() -> None:
    hidden = torch.arange(2 * 6, dtype=F64).view(2, 6, 1)
    b = torch.tensor([[1, 0, 1, 1, 0, 0], [1, 0, 0, 0, 1, 0]], dtype=torch.bool)
    z, cmask, order = chunk(hidden, b)
    assert order[0].tolist() == [0, 2, 3]
    assert order[1, :2].tolist() == [0, 4]
    assert z[0, :, 0].tolist() == [0.0, 2.0, 3.0]
    assert z[1, :2, 0].tolist() == [6.0, 10.0]
    assert cmask.tolist() == [[True, True, True], [True, True, False]]


# --------------------------------------------------------------------------- dechunk
def _dechunk_loop(z, b, p, mask) -> torch.Tensor:
    """Spec 2.3 literally: per row, EMA over that row's chunks, then plug back."""
    out = torch.zeros(b.shape[0], b.shape[1], z.shape[-1], dtype=F64)
    for i in range(b.shape[0]):
        pos = [t for t in range(b.shape[1]) if b[i, t]]
        n = len(pos)
        P = [min(max(float(p[i, t]), 1e-4), 1 - 1e-4) for t in pos]
        fwd, bwd = [None] * n, [None] * n
        state = torch.zeros(z.shape[-1], dtype=F64)
        for j in range(n):
            state = P[j] * z[i, j] + (1 - P[j]) * state
            fwd[j] = state
        state = torch.zeros(z.shape[-1], dtype=F64)
        for j in reversed(range(n)):
            state = P[j] * z[i, j] + (1 - P[j]) * state
            bwd[j] = state
        count = -1
        for t in range(b.shape[1]):
            count += int(b[i, t])
            if mask[i, t]:
                out[i, t] = 0.5 * (fwd[count] + bwd[count])
    return out


def _random_routing(lengths: list[int], d: int = 5):
    mask = _mask(lengths)
    p = torch.rand(len(lengths), max(lengths), dtype=F64)
    p[:, 0] = 1.0
    b = LearnedBoundaries().select(p, mask)
    hidden = torch.randn(len(lengths), max(lengths), d, dtype=F64)
    return hidden, p, b, mask


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_dechunk_matches_loop(chunk_size: int) -> None:
    hidden, p, b, mask = _random_routing([23, 40, 9])
    z, cmask, order = chunk(hidden, b)
    backbone_out = torch.randn_like(z)
    got = dechunk(backbone_out, b, p, order, cmask, mask, chunk_size)
    torch.testing.assert_close(got, _dechunk_loop(backbone_out, b, p, mask), atol=1e-12, rtol=0)


def test_dechunk_ignores_padded_chunk_slots() -> None:
    hidden, p, b, mask = _random_routing([30, 12])
    z, cmask, order = chunk(hidden, b)
    out = torch.randn_like(z)
    ref = dechunk(out, b, p, order, cmask, mask, 8)
    out2 = out.clone()
    out2[~cmask] = 1e6
    torch.testing.assert_close(dechunk(out2, b, p, order, cmask, mask, 8), ref, atol=0, rtol=0)


def test_gradients_reach_router_through_ema_and_ste() -> None:
    hidden, p, b, mask = _random_routing([20, 20], d=3)
    p = p.clone().requires_grad_(True)
    z, cmask, order = chunk(hidden, b)
    out = torch.randn_like(z)
    # through the EMA only
    dechunk(out, b, p, order, cmask, mask, 8).pow(2).sum().backward()
    ema_grad = p.grad.clone()
    assert ema_grad[b].abs().sum() > 0  # boundary probabilities shape the EMA
    # through the STE only
    c = torch.rand(2, 20, 1, dtype=F64, requires_grad=True)
    u = torch.randn(2, 20, 3, dtype=F64)
    weighted = u * straight_through(c)
    torch.testing.assert_close(weighted, u, atol=0, rtol=0)  # forward value exactly 1
    upstream = torch.randn_like(u)
    (weighted * upstream).sum().backward()
    torch.testing.assert_close(c.grad, (upstream * u).sum(-1, keepdim=True))


# ------------------------------------------------------------------------ ratio loss
def _ratio_loop(b, p, mask, n) -> float:
    sel, prob, count = 0.0, 0.0, 0
    for i in range(b.shape[0]):
        for t in range(b.shape[1]):
            if mask[i, t]:
                count += 1
                sel += float(b[i, t])
                prob += float(p[i, t])
    f, g = sel / count, prob / count
    return n / (n - 1) * ((n - 1) * f * g + (1 - f) * (1 - g))


def test_ratio_loss_matches_loop_and_pools_over_batch() -> None:
    _, p, b, mask = _random_routing([15, 33, 4])
    for n in (2.0, 4.0, 6.5):
        got = ratio_loss(b, p, mask, n)
        assert math.isclose(float(got), _ratio_loop(b, p, mask, n), rel_tol=1e-12)


def test_ratio_loss_is_one_at_target() -> None:
    n = 4
    b = torch.zeros(2, 8, dtype=torch.bool)
    b[:, ::4] = True  # F = 1/4
    p = torch.full((2, 8), 0.25, dtype=F64)  # G = 1/4
    mask = torch.ones(2, 8, dtype=torch.bool)
    assert math.isclose(float(ratio_loss(b, p, mask, n)), 1.0, rel_tol=1e-12)
    assert float(boundary_density(b, mask)) == 0.25


def test_ratio_loss_gradient_pushes_towards_target() -> None:
    mask = torch.ones(1, 8, dtype=torch.bool)
    too_many = torch.ones(1, 8, dtype=torch.bool)  # F = 1 > 1/N
    p = torch.full((1, 8), 0.6, dtype=F64, requires_grad=True)
    ratio_loss(too_many, p, mask, 4).backward()
    assert (p.grad > 0).all()  # descent lowers p
    too_few = torch.zeros(1, 8, dtype=torch.bool)
    too_few[0, 0] = True  # F = 1/8 < 1/N
    p2 = torch.full((1, 8), 0.1, dtype=F64, requires_grad=True)
    ratio_loss(too_few, p2, mask, 4).backward()
    assert (p2.grad < 0).all()  # descent raises p
