"""The ``cuda`` backend's wrappers with mamba-ssm's real Triton kernels, on CPU (interpreter).

The tier of ``make test-kernels`` (docs/cuda.md): triton and mamba-ssm (pure Python) are
installed into .venv, and mamba-ssm's kernels run under Triton's interpreter on CPU tensors
(tests/triton_interpreter.py). Without those packages every test here is skipped with the
reason, so the default ``make test`` needs none of them.

What is driven is the backend's OWN code: :func:`ldarnet.model.kernels_cuda.make_backend`
(the function ``register`` builds the GPU backend with) assembles the wrappers around the
interpreted kernels with a device gate that admits CPU tensors; no argument mapping is
repeated here. Every kernel is wrapped in a call counter, so a wrapper that silently fell
back to the reference could not pass. The references are the project's pure-PyTorch path
evaluated in float64, and mamba-ssm's own ``Mamba2`` module as an independent oracle for
the mixers.

Tolerances, relative to the largest reference magnitude: 1e-4 for every comparison. The
interpreter evaluates ``tl.dot`` in true float32 (numpy), unlike a GPU's TF32, so the
kernels agree with float64 to ~1e-6 here (measured: 6e-8 to 1.2e-6); a wrong argument
mapping (B and C swapped, D dropped, a wrong chunk size or head split) moves outputs by
O(1). Shapes are tiny because the interpreter runs every program instance in Python: the
whole module takes about 35 s on one core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import triton_interpreter
from conftest import MODELS
from ldarnet.model import kernels
from ldarnet.model.config import SSMConfig, load_model_config
from ldarnet.model.network.bimamba import BiMamba2
from ldarnet.model.network.dynamic_chunking import LearnedBoundaries, chunk, dechunk
from ldarnet.model.network.mamba2 import Mamba2
from ldarnet.model.network.norm import GatedRMSNorm, rms_norm
from ldarnet.model.network.ssd import ssd_chunked

_SKIP = triton_interpreter.skip_reason()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=f"Triton-interpreter tier: {_SKIP}")

TOL = 1e-4
F64 = torch.float64


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    diff = (got.double() - ref.double()).abs().max().item()
    scale = ref.double().abs().max().item()
    return diff / scale if scale > 0 else diff


class Counted:
    """A kernel function that counts its calls (proof the wrapper did not fall back)."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture(scope="module")
def interpreted():
    return triton_interpreter.load()


@pytest.fixture(autouse=True)
def _cpu_kernel_env():
    with triton_interpreter.cpu_kernel_env():
        yield


@pytest.fixture
def ops(interpreted) -> dict[str, Counted]:
    return {
        "ssd": Counted(interpreted.mamba_chunk_scan_combined),
        "rms_norm": Counted(interpreted.rms_norm_fn),
        "gated_rms_norm": Counted(interpreted.rmsnorm_fn),
    }


@pytest.fixture
def backend(ops) -> kernels.Backend:
    """The cuda backend's wrappers around the interpreted kernels, admitting CPU tensors."""
    from ldarnet.model import kernels_cuda

    return kernels_cuda.make_backend(ops, name="cuda-interpreted",
                                     use_kernels=lambda *tensors: True,
                                     is_available=lambda: True)


@pytest.fixture
def active_backend(backend, monkeypatch) -> kernels.Backend:
    """The interpreted backend selected for the model code (restored after the test)."""
    monkeypatch.setattr(kernels, "_active", backend)
    return backend


# ============================================================================== SSD scan


def _ssd_inputs(b, length, h, p, g, n, d_shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=gen)
    dt = F.softplus(torch.randn(b, length, h, generator=gen) - 1.0)  # positive, as Mamba2's
    A = -torch.exp(torch.rand(h, generator=gen))
    B = torch.randn(b, length, g, n, generator=gen)
    C = torch.randn(b, length, g, n, generator=gen)
    D = torch.randn(h if d_shape == "h" else (h, p), generator=gen)
    return [x, dt, A, B, C, D]


SSD_CASES = [
    # b, length, h, p, g, n, chunk, D shape
    pytest.param(2, 50, 4, 16, 2, 8, 16, "h", id="two-groups-len50-chunk16"),
    pytest.param(1, 37, 2, 16, 1, 16, 32, "hp", id="D-per-channel-len37-chunk32"),
    pytest.param(2, 24, 2, 8, 1, 4, 8, "h", id="len-multiple-of-chunk8"),
    pytest.param(1, 45, 1, 256, 1, 1, 16, "h", id="wide-head-split4-dstate1"),
    pytest.param(1, 20, 2, 192, 1, 4, 8, "hp", id="two-wide-heads-split3-D-per-channel"),
]


@pytest.mark.parametrize(("b", "length", "h", "p", "g", "n", "chunk_size", "d_shape"),
                         SSD_CASES)
def test_ssd_wrapper_runs_the_kernel_and_matches_reference(
        backend, ops, b, length, h, p, g, n, chunk_size, d_shape) -> None:
    inputs = _ssd_inputs(b, length, h, p, g, n, d_shape)
    got = backend.ssd_scan(*inputs[:5], chunk_size, inputs[5])
    assert ops["ssd"].calls == 1
    ref = ssd_chunked(*(t.double() for t in inputs[:5]), chunk_size, inputs[5].double())
    assert got.shape == ref.shape and got.dtype == torch.float32
    err = _rel_err(got, ref)
    assert err < TOL, f"SSD kernel via wrapper vs reference: relative error {err:.1e}"


@pytest.mark.parametrize(("b", "length", "h", "p", "g", "n", "chunk_size", "d_shape"), [
    pytest.param(2, 21, 4, 8, 2, 4, 16, "h", id="two-groups-len21-chunk16"),
    pytest.param(1, 12, 2, 192, 1, 4, 8, "hp", id="two-wide-heads-split3-D-per-channel"),
])
def test_ssd_wrapper_gradients_match_reference(
        backend, ops, b, length, h, p, g, n, chunk_size, d_shape) -> None:
    inputs = [t.requires_grad_() for t in _ssd_inputs(b, length, h, p, g, n, d_shape)]
    got = backend.ssd_scan(*inputs[:5], chunk_size, inputs[5])
    assert ops["ssd"].calls == 1
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((got * weights).sum(), inputs)
    inputs64 = [t.detach().double().requires_grad_() for t in inputs]
    ref = ssd_chunked(*inputs64[:5], chunk_size, inputs64[5])
    ref_grads = torch.autograd.grad((ref * weights.double()).sum(), inputs64)
    for name, a, r in zip(["x", "dt", "A", "B", "C", "D"], grads, ref_grads, strict=True):
        err = _rel_err(a, r)
        assert err < TOL, f"gradient of {name}: relative error {err:.1e}"


def test_ssd_wrapper_padding_is_exact(backend, ops) -> None:
    """Right padding holding garbage never reaches valid outputs; leading zero-input
    padding with positive dt leaves the state at exactly zero (the dechunk EMA's rows)."""
    x, dt, A, B, C, D = _ssd_inputs(2, 40, 2, 16, 1, 8, "h")
    lengths = [40, 19]
    batched = backend.ssd_scan(x, dt, A, B, C, 16, D)
    alone = backend.ssd_scan(x[1:, :19], dt[1:, :19], A, B[1:, :19], C[1:, :19], 16, D)
    for i, n in enumerate(lengths):
        row = batched[i : i + 1, :n]
        ref = alone if i == 1 else row
        assert _rel_err(row, ref) < 1e-6  # accumulation order only
    pad = 11
    xp = torch.cat([torch.zeros_like(x[:, :pad]), x], dim=1)
    dtp = torch.cat([torch.rand_like(dt[:, :pad]) + 0.1, dt], dim=1)
    Bp, Cp = (torch.cat([torch.randn_like(t[:, :pad]), t], dim=1) for t in (B, C))
    shifted = backend.ssd_scan(xp, dtp, A, Bp, Cp, 16, None)
    assert torch.all(shifted[:, :pad] == 0)
    err = _rel_err(shifted[:, pad:], ssd_chunked(x, dt, A, B, C, 16, None))
    assert err < TOL, f"leading zero padding changed the valid outputs: {err:.1e}"
    assert ops["ssd"].calls == 3


def test_ssd_wrapper_sends_what_the_kernel_does_not_take_to_the_reference(backend,
                                                                        ops) -> None:
    x, dt, A, B, C, D = _ssd_inputs(1, 12, 2, 8, 1, 4, "h")
    out = backend.ssd_scan(x.double(), dt.double(), A.double(), B.double(), C.double(), 8,
                           D.double())
    assert out.dtype == F64
    backend.ssd_scan(x, dt, A, B, C, 6, D)  # chunk size not a power of two
    assert ops["ssd"].calls == 0


# ========================================================================== dechunk EMA


def _routed_batch(lengths: list[int], d: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    p = torch.rand(len(lengths), max(lengths), generator=gen)
    p[:, 0] = 1.0
    boundary = LearnedBoundaries().select(p, mask)
    hidden = torch.randn(len(lengths), max(lengths), d, generator=gen)
    _, cmask, order = chunk(hidden, boundary)
    backbone_out = torch.randn(len(lengths), cmask.shape[1], d, generator=gen)
    return backbone_out, boundary, p, order, cmask, mask


@pytest.mark.parametrize(("d", "gradients"), [(32, True), (256, False)])
def test_dechunk_ema_through_the_kernel(active_backend, ops, d, gradients) -> None:
    """Learned boundaries, rows of different lengths: the flipped half of the EMA starts
    with padded (zero) chunk slots. d=256 takes the wide-head split."""
    args = list(_routed_batch([44, 25, 9], d))
    args[0].requires_grad_()
    args[2].requires_grad_()
    got = dechunk(*args, 16)
    assert ops["ssd"].calls == 1
    assert args[4].sum(1).tolist() != [args[4].shape[1]] * 3  # padded chunk slots exist
    args64 = [a.detach().double().requires_grad_() if a.is_floating_point() else a
              for a in args]
    ref = dechunk(*args64, 16)  # float64: the wrapper hands it to the reference
    assert ops["ssd"].calls == 1
    err = _rel_err(got, ref)
    assert err < TOL, f"dechunk EMA through the kernel: relative error {err:.1e}"
    if not gradients:
        return
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(2))
    grads = torch.autograd.grad((got * weights).sum(), (args[0], args[2]))
    ref_grads = torch.autograd.grad((ref * weights.double()).sum(), (args64[0], args64[2]))
    for name, a, r in zip(("backbone output", "boundary probability"), grads, ref_grads,
                          strict=True):
        err = _rel_err(a, r)
        assert err < TOL, f"dechunk gradient of the {name}: relative error {err:.1e}"


# ============================================================================ the norms


def _model_norm(config: str, ngroups: int | None = None) -> GatedRMSNorm:
    """The gated norm of a Mamba-2 layer of ``config`` (its group size), random weight."""
    ssm = load_model_config(MODELS / config).ssm
    if ngroups is not None:
        ssm = dataclasses.replace(ssm, ngroups=ngroups)
    norm = Mamba2(32, ssm).norm
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.2)
    return norm


@pytest.mark.parametrize(("config", "ngroups"), [("ldarnet-tiny.yaml", None),
                                                 ("ldarnet-tiny.yaml", 2)])
def test_gated_rms_norm_wrapper_with_the_models_group_size(backend, ops, config,
                                                           ngroups) -> None:
    norm = _model_norm(config, ngroups)
    width = norm.weight.shape[0]
    # z is a column slice of a wider projection output, as Mamba2.mix passes it.
    zxbcdt = torch.randn(2, 30, width * 2 + 5, requires_grad=True)
    z, y_src = zxbcdt[..., :width], zxbcdt[..., width : 2 * width]
    y = y_src * 1.5
    got = backend.gated_rms_norm(y, z, norm.weight, norm.eps, norm.group_size)
    assert ops["gated_rms_norm"].calls == 1
    assert got.dtype == y.dtype
    ref = norm(y.double(), z.double())  # the module's reference path (CPU)
    err = _rel_err(got, ref)
    assert err < TOL, f"gated RMSNorm (group {norm.group_size}): relative error {err:.1e}"
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(3))
    grads = torch.autograd.grad((got * weights).sum(), (zxbcdt, norm.weight))
    src64 = zxbcdt.detach().double().requires_grad_()
    w64 = norm.weight.detach().double().requires_grad_()
    ref_norm = GatedRMSNorm(width, norm.eps, norm.group_size).double()
    ref_norm.weight = torch.nn.Parameter(w64)
    ref = ref_norm(src64[..., width : 2 * width] * 1.5, src64[..., :width])
    ref_grads = torch.autograd.grad((ref * weights.double()).sum(), (src64, ref_norm.weight))
    for name, a, r in zip(("input", "weight"), grads, ref_grads, strict=True):
        err = _rel_err(a, r)
        assert err < TOL, f"gated RMSNorm gradient of the {name}: relative error {err:.1e}"


def test_gated_rms_norm_wrapper_keeps_bf16(backend, ops) -> None:
    norm = _model_norm("ldarnet-tiny.yaml")
    width = norm.weight.shape[0]
    y = torch.randn(2, 17, width).bfloat16()
    z = torch.randn(2, 17, width).bfloat16()
    got = backend.gated_rms_norm(y, z, norm.weight, norm.eps, norm.group_size)
    assert got.dtype == torch.bfloat16 and ops["gated_rms_norm"].calls == 1
    assert _rel_err(got, norm(y.double(), z.double())) < 2e-2  # bf16 output rounding


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_wrapper(backend, ops, dtype) -> None:
    x = torch.randn(3, 21, 64).to(dtype).requires_grad_()
    weight = torch.nn.Parameter(torch.randn(64) * 0.2 + 1.0)
    got = backend.rms_norm(x, weight, 1e-5)
    assert ops["rms_norm"].calls == 1 and got.dtype == dtype
    ref = rms_norm(x.detach().double(), weight.detach().double(), 1e-5)
    tol = TOL if dtype == torch.float32 else 2e-2
    assert _rel_err(got, ref) < tol
    if dtype == torch.float32:
        weights = torch.randn(got.shape)
        grads = torch.autograd.grad((got * weights).sum(), (x, weight))
        x64 = x.detach().double().requires_grad_()
        w64 = weight.detach().double().requires_grad_()
        ref_grads = torch.autograd.grad((rms_norm(x64, w64, 1e-5) * weights.double()).sum(),
                                        (x64, w64))
        for a, r in zip(grads, ref_grads, strict=True):
            assert _rel_err(a, r) < TOL


# =================================================== mamba-ssm's Mamba2 module as oracle


def _ssm(ngroups: int = 1) -> SSMConfig:
    return SSMConfig(d_state=8, d_conv=4, expand=2, headdim=16, ngroups=ngroups,
                     chunk_size=16)


def _randomise(module: torch.nn.Module) -> None:
    """Move every parameter off its initial value (D = 1, norm weight = 1 would hide a
    swapped or dropped parameter)."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))


def mamba_ssm_state_dict(ours: dict[str, torch.Tensor], prefix: str = "") -> dict:
    """Our Mamba-2 parameters under mamba-ssm's ``Mamba2`` names (the release's layout):
    the names are the same by construction (ldarnet/model/network/mamba2.py), so the map strips
    the direction prefix of BiMamba-2 and nothing else."""
    return {key[len(prefix):]: value for key, value in ours.items() if key.startswith(prefix)}


def _oracle(interpreted, d_model: int, ssm: SSMConfig, state: dict, monkeypatch):
    """mamba-ssm's Mamba2 (non-fused path, PyTorch conv) loaded with ``state``, strictly."""
    module = interpreted.mamba2_module
    # No causal-conv1d CUDA kernel on CPU: mamba-ssm then convolves with its own
    # nn.Conv1d (the same weights), which is the pure-PyTorch path of its forward.
    monkeypatch.setattr(module, "causal_conv1d_fn", None)
    oracle = module.Mamba2(d_model, d_state=ssm.d_state, d_conv=ssm.d_conv,
                           expand=ssm.expand, headdim=ssm.headdim, ngroups=ssm.ngroups,
                           chunk_size=ssm.chunk_size, use_mem_eff_path=False)
    oracle.load_state_dict(state, strict=True)
    return oracle


@pytest.mark.parametrize("ngroups", [1, 2])
def test_mamba2_matches_mamba_ssm_module(interpreted, monkeypatch, ngroups) -> None:
    ssm = _ssm(ngroups)
    ours = Mamba2(32, ssm)
    _randomise(ours)
    oracle = _oracle(interpreted, 32, ssm, mamba_ssm_state_dict(ours.state_dict()),
                     monkeypatch)
    x = torch.randn(2, 25, 32, requires_grad=True)
    got, ref = ours(x), oracle(x)
    err = _rel_err(got, ref)
    assert err < TOL, f"Mamba2 vs mamba-ssm's Mamba2: relative error {err:.1e}"
    weights = torch.randn(got.shape)
    ours_params = dict(ours.named_parameters())
    oracle_params = dict(oracle.named_parameters())
    assert ours_params.keys() == oracle_params.keys()
    names = sorted(ours_params)
    grads = torch.autograd.grad((got * weights).sum(), [x, *(ours_params[n] for n in names)])
    ref_grads = torch.autograd.grad((ref * weights).sum(),
                                    [x, *(oracle_params[n] for n in names)])
    for name, a, r in zip(["input", *names], grads, ref_grads, strict=True):
        err = _rel_err(a, r)
        assert err < TOL, f"gradient of {name}: relative error {err:.1e}"


def test_bimamba2_matches_two_mamba_ssm_modules(interpreted, monkeypatch) -> None:
    """BiMamba-2 = mean of mamba-ssm's Mamba2 on the sequence and on its reversal, with the
    ``fwd.``/``bwd.`` weights (projections tied); padded rows equal their rows alone."""
    ssm = _ssm()
    ours = BiMamba2(32, ssm)
    _randomise(ours)
    state = ours.state_dict()
    fwd = _oracle(interpreted, 32, ssm, mamba_ssm_state_dict(state, "fwd."), monkeypatch)
    bwd = _oracle(interpreted, 32, ssm, mamba_ssm_state_dict(state, "bwd."), monkeypatch)
    x = torch.randn(2, 24, 32, requires_grad=True)
    got = ours(x)
    ref = 0.5 * (fwd(x) + bwd(x.flip(1)).flip(1))
    err = _rel_err(got, ref)
    assert err < TOL, f"BiMamba2 vs two mamba-ssm Mamba2: relative error {err:.1e}"
    weights = torch.randn(got.shape)
    shared = ("in_proj.weight", "out_proj.weight")
    own = ("conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight")
    params = [ours.fwd.get_parameter(n) for n in shared]
    params += [getattr(ours, d).get_parameter(n) for d in ("fwd", "bwd") for n in own]
    grads = torch.autograd.grad((got * weights).sum(), [x, *params])
    oracle_params = [p for n in shared for p in (fwd.get_parameter(n), bwd.get_parameter(n))]
    oracle_params += [m.get_parameter(n) for m in (fwd, bwd) for n in own]
    ref_grads = list(torch.autograd.grad((ref * weights).sum(), [x, *oracle_params]))
    # A tied projection's gradient is the sum over both directions' copies.
    tied = [ref_grads[1 + 2 * i] + ref_grads[2 + 2 * i] for i in range(len(shared))]
    ref_grads = [ref_grads[0], *tied, *ref_grads[1 + 2 * len(shared):]]
    names = ["input", *shared, *(f"{d}.{n}" for d in ("fwd", "bwd") for n in own)]
    for name, a, r in zip(names, grads, ref_grads, strict=True):
        err = _rel_err(a, r)
        assert err < TOL, f"BiMamba2 gradient of {name}: relative error {err:.1e}"

    lengths = [24, 13]
    mask = torch.arange(24)[None, :] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        padded = ours(x, mask)
        for i, n in enumerate(lengths):
            row = x[i : i + 1, :n]
            alone = 0.5 * (fwd(row) + bwd(row.flip(1)).flip(1))
            err = _rel_err(padded[i : i + 1, :n], alone)
            assert err < TOL, f"padded row {i} (length {n}) vs the oracle alone: {err:.1e}"
        assert torch.all(padded[1, 13:] == 0)


def _broken_maps():
    def drop_d(state):
        return {k: v for k, v in state.items() if k != "D"}

    def reshape_d(state):
        return {**state, "D": state["D"].repeat_interleave(16)}  # (h,) -> (h*p,)

    def reversed_conv_taps(state):
        return {**state, "conv1d.weight": state["conv1d.weight"].flip(-1)}

    def a_log_as_a(state):
        return {**state, "A_log": -torch.exp(state["A_log"])}

    return [pytest.param(drop_d, id="drops-D"), pytest.param(reshape_d, id="reshapes-D"),
            pytest.param(reversed_conv_taps, id="reverses-conv-taps"),
            pytest.param(a_log_as_a, id="passes-A-for-A_log")]


@pytest.mark.parametrize("broken", _broken_maps())
def test_oracle_rejects_a_broken_key_map(interpreted, monkeypatch, broken) -> None:
    """The oracle is not blind: a map that loses, reshapes or rewrites a parameter either
    fails the strict load or moves the output far beyond the tolerance."""
    ssm = _ssm()
    ours = Mamba2(32, ssm)
    _randomise(ours)
    state = broken(mamba_ssm_state_dict(ours.state_dict()))
    try:
        oracle = _oracle(interpreted, 32, ssm, state, monkeypatch)
    except RuntimeError as err:  # missing key or size mismatch: the strict load says so
        assert "D" in str(err)
        return
    x = torch.randn(1, 20, 32)
    with torch.no_grad():
        assert _rel_err(oracle(x), ours(x)) > 100 * TOL
