"""BiMamba-2: tied projections, padding exactness, reversal symmetry."""

from __future__ import annotations

import copy

import torch

from ldarnet.model.config import SSMConfig
from ldarnet.model.network.bimamba import BiMamba2, row_reversal_index

SSM = SSMConfig(d_state=8, headdim=8, chunk_size=8)


def _mixer(reverse_padding: str = "exact") -> BiMamba2:
    m = BiMamba2(16, SSM, reverse_padding=reverse_padding).double()
    with torch.no_grad():  # make the two directions clearly different
        for p in m.bwd.parameters():
            if p is not m.fwd.in_proj.weight and p is not m.fwd.out_proj.weight:
                p.add_(torch.randn_like(p) * 0.3)
    return m


def _batch(lengths: list[int], d: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(lengths)
    x = torch.randn(len(lengths), length, d, dtype=torch.float64)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return x, mask


def test_projections_are_shared_and_counted_once() -> None:
    m = BiMamba2(512, SSMConfig())
    assert m.fwd.in_proj.weight is m.bwd.in_proj.weight
    assert m.fwd.out_proj.weight is m.bwd.out_proj.weight
    assert m.fwd.conv1d.weight is not m.bwd.conv1d.weight
    assert sum(p.numel() for p in m.parameters()) == 1_727_072  # spec 1.9
    keys = set(m.state_dict())
    assert {"fwd.in_proj.weight", "bwd.in_proj.weight", "fwd.out_proj.weight",
            "bwd.out_proj.weight", "fwd.A_log", "bwd.dt_bias", "fwd.norm.weight"} <= keys


def test_row_reversal_index_is_an_involution() -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    idx = row_reversal_index(mask)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    assert torch.equal(idx.gather(1, idx), torch.arange(5).expand(3, 5))


def test_padding_exact_alone_vs_batched() -> None:
    m = _mixer()
    x, mask = _batch([13, 20, 7])
    batched = m(x, mask)
    for i, n in enumerate([13, 20, 7]):
        alone = m(x[i : i + 1, :n], mask[i : i + 1, :n])
        torch.testing.assert_close(batched[i : i + 1, :n], alone, atol=1e-12, rtol=0)
    assert batched[0, 13:].abs().max() == 0  # padded outputs are zero


def test_padding_values_never_leak() -> None:
    m = _mixer()
    x, mask = _batch([9, 16])
    out = m(x, mask)
    x2 = x.clone()
    x2[0, 9:] = torch.randn(7, 16, dtype=torch.float64) * 100
    torch.testing.assert_close(m(x2, mask)[0, :9], out[0, :9], atol=0, rtol=0)


def test_release_mode_leaks_padding_into_reverse_scan() -> None:
    """The switch reproduces the release's quirk (spec 1.4): shorter rows change."""
    m = _mixer("release")
    x, mask = _batch([9, 16])
    batched = m(x, mask)[0, :9]
    alone = m(x[:1, :9], mask[:1, :9])[0]
    assert (batched - alone).abs().max() > 1e-6


def _swap_directions(m: BiMamba2) -> BiMamba2:
    swapped = copy.deepcopy(m)
    with torch.no_grad():
        for name in ("conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight"):
            fwd = swapped.fwd.get_parameter(name)
            bwd = swapped.bwd.get_parameter(name)
            tmp = fwd.clone()
            fwd.copy_(bwd)
            bwd.copy_(tmp)
    return swapped


def test_reversed_input_gives_reversed_output_with_swapped_directions() -> None:
    m = _mixer()
    swapped = _swap_directions(m)
    x = torch.randn(2, 19, 16, dtype=torch.float64)
    torch.testing.assert_close(swapped(x.flip(1)), m(x).flip(1), atol=1e-12, rtol=0)
    # with padding: reversal happens within each row's length
    x, mask = _batch([11, 19])
    idx = row_reversal_index(mask).unsqueeze(-1).expand(-1, -1, 16)
    expected = m(x, mask).gather(1, idx)
    torch.testing.assert_close(swapped(x.gather(1, idx), mask), expected, atol=1e-12, rtol=0)


def test_gradients_reach_both_directions() -> None:
    m = _mixer()
    x, mask = _batch([10, 12])
    m(x, mask).pow(2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert m.bwd.A_log.grad.abs().sum() > 0
