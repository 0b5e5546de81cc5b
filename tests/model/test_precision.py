"""Precision under bf16 autocast: what docs/model.md says runs in float32 does.

Each check runs the component under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (the
``precision: bf16`` setting on CPU; CUDA autocast casts the same op classes), takes the
inputs the component actually received, recomputes it in float64 without autocast, and
bounds the difference well below what bf16 arithmetic gives:

- bf16 keeps 8 significant bits, so one rounding is ~4e-3 relative and a bf16 matmul in
  the dechunk EMA or the router projections moves the result by 1e-3 to 1e-2;
- float32 (24 bits) over these short sums stays below 1e-6 relative.

The tolerance 1e-5 separates the two by two orders of magnitude either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import MODELS
from ldarnet.model.config import load_model_config
from ldarnet.model.network import stage as stage_module
from ldarnet.model.network.dynamic_chunking import (
    LearnedBoundaries,
    RoutingModule,
    boundary_probability,
    chunk,
    dechunk,
)
from ldarnet.model.network.ldarnet import LDARNet

FP32_TOL = 1e-5
F64 = torch.float64


def _bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    scale = ref.abs().max().item()
    return (got.double() - ref.double()).abs().max().item() / max(scale, 1e-30)


def _double(value):
    return value.double() if torch.is_tensor(value) and value.is_floating_point() else value


def _ids(lengths: list[int], pad: int = 6) -> torch.Tensor:
    ids = torch.randint(0, 4, (len(lengths), max(lengths)))
    for i, n in enumerate(lengths):
        ids[i, n:] = pad
    return ids


def _learned_tiny_model() -> LDARNet:
    """The tiny model with learned boundaries and random projections: p spreads over (0, 1)."""
    model = LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml"))
    with torch.no_grad():  # identity router projections would give p of raw cosines only
        for layer in (model.hierarchy.routing_module.q_proj_layer,
                      model.hierarchy.routing_module.k_proj_layer):
            layer.weight.add_(0.3 * torch.randn_like(layer.weight))
    return model


def test_dechunk_runs_in_float32_under_bf16_autocast() -> None:
    """The EMA's products (SSD matmuls of the torch path) must not be autocast to bf16."""
    lengths = [300, 217]
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    p = torch.rand(len(lengths), max(lengths))
    p[:, 0] = 1.0
    boundary = LearnedBoundaries().select(p, mask)
    hidden = torch.randn(len(lengths), max(lengths), 32)
    _, cmask, order = chunk(hidden, boundary)
    backbone_out = torch.randn(len(lengths), cmask.shape[1], 32)
    args = (backbone_out, boundary, p, order, cmask, mask, 32)
    with _bf16_autocast():
        got = dechunk(*args)
    assert got.dtype == torch.float32
    err = _rel_err(got, dechunk(*(_double(a) for a in args)))
    assert err < FP32_TOL, f"dechunk under bf16 autocast: relative error {err:.1e}"


def test_model_dechunk_and_router_are_float32_under_bf16_autocast(monkeypatch) -> None:
    """In the tiny model with learned boundaries: the dechunk output and the router's p are
    what float64 computes from the same inputs, to float32 accuracy."""
    model = _learned_tiny_model()
    calls = []

    def recording_dechunk(*args):
        out = dechunk(*args)
        calls.append((args, out))
        return out

    monkeypatch.setattr(stage_module, "dechunk", recording_dechunk)
    router = model.hierarchy.routing_module
    seen = []
    router.register_forward_hook(lambda mod, args, out: seen.append((args[0], out)))
    ids = _ids([300, 181])
    with _bf16_autocast():
        model(ids)
    (args, out), = calls
    assert args[2][model.padding_mask(ids)].float().std().item() > 0.05  # p is spread out
    err = _rel_err(out, dechunk(*(_double(a) for a in args)))
    assert err < FP32_TOL, f"model's dechunk under bf16 autocast: relative error {err:.1e}"

    (hidden, routed), = seen
    h64 = hidden.double()
    p64 = boundary_probability(F.linear(h64, router.q_proj_layer.weight.double()),
                               F.linear(h64, router.k_proj_layer.weight.double()))
    assert routed.boundary_prob.dtype == torch.float32
    err = (routed.boundary_prob.double() - p64).abs().max().item()
    assert err < FP32_TOL, f"model's router p under bf16 autocast: error {err:.1e}"


def test_router_projections_float32_under_autocast() -> None:
    router = RoutingModule(64, LearnedBoundaries())
    with torch.no_grad():
        router.q_proj_layer.weight.add_(0.3 * torch.randn(64, 64))
        router.k_proj_layer.weight.add_(0.3 * torch.randn(64, 64))
    hidden = torch.randn(3, 200, 64)
    mask = torch.ones(3, 200, dtype=torch.bool)
    with _bf16_autocast():
        got = router(hidden, mask)
    ref = router.double()(hidden.double(), mask)
    err = (got.boundary_prob.double() - ref.boundary_prob).abs().max().item()
    assert err < FP32_TOL, f"router p under bf16 autocast: error {err:.1e}"
    assert torch.equal(got.boundary_mask, ref.boundary_mask)


def test_router_float32_guard_is_bit_identical_without_autocast() -> None:
    """Without autocast the float32 guard changes nothing: the same bits as plain calls."""
    router = _learned_tiny_model().hierarchy.routing_module
    hidden = torch.randn(2, 50, 32)
    got = router(hidden, torch.ones(2, 50, dtype=torch.bool)).boundary_prob
    assert torch.equal(got, boundary_probability(router.q_proj_layer(hidden),
                                                 router.k_proj_layer(hidden)))


# The precision table of docs/model.md ("Precision"): the dtype each component returns
# under bf16 autocast on the torch path. bf16 entries are what autocast makes of their
# matmuls; float32 entries are the guarded ones (and the fp32 residual stream).
AUTOCAST_OUTPUT_DTYPES = {
    "Embedding": torch.float32,
    "RMSNorm": torch.float32,  # pre-norms and final norms read the fp32 residual stream
    "BiMamba2": torch.bfloat16,
    "GatedRMSNorm": torch.bfloat16,  # float32 statistics, output in the mixer's dtype
    "SlidingWindowAttention": torch.bfloat16,
    "SwiGLU": torch.bfloat16,
    "Stack": torch.float32,
    "RoutingModule": torch.float32,
    "Stage": torch.float32,
}


def test_component_dtypes_under_bf16_autocast_are_the_documented_ones() -> None:
    model = _learned_tiny_model()
    seen: dict[str, set] = {}

    def record(module, args, out):
        value = out.boundary_prob if hasattr(out, "boundary_prob") else out
        value = value[0] if isinstance(value, tuple) else value
        seen.setdefault(type(module).__name__, set()).add(value.dtype)

    for module in model.modules():
        if type(module).__name__ in AUTOCAST_OUTPUT_DTYPES:
            module.register_forward_hook(record)
    model.hierarchy.residual_proj.register_forward_hook(
        lambda m, a, out: seen.setdefault("residual_proj", set()).add(out.dtype))
    model.lm_head.register_forward_hook(
        lambda m, a, out: seen.setdefault("lm_head", set()).add(out.dtype))
    with _bf16_autocast():
        model(_ids([90, 64]))
    expected = {name: {dtype} for name, dtype in AUTOCAST_OUTPUT_DTYPES.items()}
    expected |= {"residual_proj": {torch.float32}, "lm_head": {torch.bfloat16}}
    assert seen == expected
