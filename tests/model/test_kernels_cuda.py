"""The kernel backend switch, and the CUDA fast paths against the pure-PyTorch reference.

Two kinds of tests live here:

- CPU tests (always run): the registry and the ``LDARNET_KERNELS`` switch behave; asking
  for ``cuda`` where it cannot run is a clear error; importing ``kernels_cuda`` without a
  GPU or kernel packages registers nothing and raises nothing; the production gate sends
  CPU tensors to the reference and never registers under ``TRITON_INTERPRET``; and the
  backend's own wrappers (``make_backend``: layout changes, head splitting, unpad →
  varlen → repad) are driven with references of the kernels' documented semantics and
  input checks in place of the extension functions. mamba-ssm's real Triton kernels run
  through the same wrappers on CPU in tests/model/test_kernels_interpreter.py
  (``make test-kernels``); only the CUDA extensions and compiled GPU code stay unverified
  on a CPU machine.
- GPU tests (skipped unless CUDA and the kernel packages are present): every fast kernel
  against the reference on the same GPU, padded variable-length batches, and the tiny
  model's logits and gradients between backends.

Tolerances are relative to the largest reference magnitude, ``max|got - ref| <= tol *
max|ref|``, and state why they are what they are:

- float32, SSD scan: 3e-3. mamba-ssm's Triton kernels use ``tl.dot`` whose float32
  inputs run as TF32 (10-bit mantissa, ~5e-4 relative per product) on Ampere and newer,
  and a scan accumulates a few hundred such products per output.
- float32, conv / norms: 1e-5 (no matmul: float32 arithmetic in a different order).
- bfloat16 (all kernels): 3e-2. Inputs and outputs are bf16 (8-bit mantissa, one rounding
  = 4e-3 relative); the kernels round some intermediates (states, the masked C·B·decay
  matrix) to bf16 before their matmuls where the reference keeps float32.
- whole model, float32: 1e-2 (TF32 scan error through ~10 layers); bf16 autocast: 5e-2.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ldarnet.model import kernels
from ldarnet.model.config import load_model_config
from ldarnet.model.network.attention import SlidingWindowAttention
from ldarnet.model.network.conv import causal_depthwise_conv1d
from ldarnet.model.network.ssd import ssd_chunked

ROOT = Path(__file__).resolve().parents[2]


def _cuda_backend_ready() -> bool:
    if not torch.cuda.is_available():
        return False
    from ldarnet.model import kernels_cuda

    return kernels_cuda.available()


needs_cuda = pytest.mark.skipif(
    not _cuda_backend_ready(),
    reason="needs a CUDA GPU with mamba-ssm and causal-conv1d importable (docs/cuda.md)",
)


@pytest.fixture(autouse=True)
def _restore_backend():
    """Every test leaves the process-wide backend choice as it found it."""
    saved = kernels._active
    yield
    kernels._active = saved


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """max|got - ref| / max|ref| in float32 (0 for an all-zero reference and result)."""
    diff = (got.float() - ref.float()).abs().max().item()
    scale = ref.float().abs().max().item()
    return diff / scale if scale > 0 else diff


# ============================================================================ CPU tests


def _fake_backend(name: str = "cuda") -> kernels.Backend:
    """A registered, available backend that computes with the reference functions."""
    return kernels.Backend(name=name, ssd_scan=ssd_chunked,
                           causal_conv1d=causal_depthwise_conv1d, is_available=lambda: True)


def test_env_torch_forces_reference_even_when_a_fast_backend_exists(monkeypatch) -> None:
    monkeypatch.setitem(kernels._REGISTRY, "cuda", _fake_backend())
    monkeypatch.setenv(kernels.ENV_VAR, "torch")
    assert kernels.configure() == "torch"
    assert kernels.active_backend() == "torch"
    monkeypatch.setenv(kernels.ENV_VAR, "auto")
    assert kernels.configure() == "cuda"  # auto prefers the fast path when it can run
    assert kernels.configure("torch") == "torch"


def test_env_var_is_read_on_first_use(monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "torch")
    kernels._active = None
    x = torch.randn(1, 5, 3)
    out = kernels.causal_conv1d(x, torch.randn(3, 1, 4), torch.randn(3))
    assert out.shape == x.shape
    assert kernels.active_backend() == "torch"


def test_auto_falls_back_to_torch_when_cuda_is_unavailable(monkeypatch) -> None:
    monkeypatch.setitem(kernels._REGISTRY, "cuda",
                        dataclasses.replace(_fake_backend(), is_available=lambda: False))
    assert kernels.configure("auto") == "torch"


def test_invalid_choice_is_a_clear_error(monkeypatch) -> None:
    with pytest.raises(ValueError, match="not one of auto, torch, cuda"):
        kernels.configure("triton")
    monkeypatch.setenv(kernels.ENV_VAR, "fast")
    kernels._active = None
    with pytest.raises(ValueError, match="LDARNET_KERNELS='fast'"):
        kernels.active_backend()


@pytest.mark.skipif(_cuda_backend_ready(), reason="the CUDA backend can run here")
def test_asking_for_cuda_where_it_cannot_run_says_why(monkeypatch) -> None:
    with pytest.raises(RuntimeError, match=r"'cuda' cannot run here: .*LDARNET_KERNELS=torch"):
        kernels.configure("cuda")
    monkeypatch.setenv(kernels.ENV_VAR, "cuda")
    kernels._active = None
    with pytest.raises(RuntimeError, match="cannot run here"):
        kernels.ssd_scan(torch.randn(1, 4, 1, 2), torch.rand(1, 4, 1), -torch.ones(1),
                         torch.randn(1, 4, 1, 3), torch.randn(1, 4, 1, 3), 4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_importing_kernels_cuda_without_gpu_registers_nothing() -> None:
    from ldarnet.model import kernels_cuda

    importlib.reload(kernels_cuda)  # runs the import-time registration again
    assert "cuda" not in kernels._REGISTRY
    assert not kernels_cuda.available()
    assert "torch.cuda.is_available() is False" in kernels_cuda.UNAVAILABLE_REASON
    assert kernels.available_backends() == ["torch"]
    # No kernel package was even imported on the way.
    assert not any(m.split(".")[0] in ("mamba_ssm", "causal_conv1d", "flash_attn")
                   for m in sys.modules)


def test_forced_torch_in_a_fresh_process_imports_no_optional_module() -> None:
    code = (
        "import sys\n"
        "import torch\n"
        "from ldarnet.model.config import load_model_config\n"
        "from ldarnet.model.network.ldarnet import LDARNet\n"
        "from ldarnet.model import kernels\n"
        "m = LDARNet(load_model_config('config/models/ldarnet-tiny.yaml'))\n"
        "m(torch.randint(0, 4, (1, 64)))\n"
        "print(kernels.active_backend(), 'ldarnet.model.kernels_cuda' in sys.modules)\n"
    )
    env = {**os.environ, kernels.ENV_VAR: "torch"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == ["torch", "False"]


# -- the production gate (runs on CPU)


class _Recorder:
    """A kernel function that records its calls and computes with ``fn``."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.fn(*args, **kwargs)


def test_registered_cuda_backend_sends_cpu_tensors_to_the_reference(monkeypatch) -> None:
    """``register`` gates on CUDA tensors: with a CUDA device reported and the kernels
    importable, CPU tensors still never reach a kernel."""
    from ldarnet.model import kernels_cuda

    ssd, conv = _Recorder(flash_free_ssd_reference), _Recorder(causal_conv1d_fn_reference)
    monkeypatch.delitem(kernels._REGISTRY, "cuda", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(kernels_cuda, "import_kernels",
                        lambda: ({"ssd": ssd, "conv": conv}, None))
    monkeypatch.setattr(kernels_cuda, "UNAVAILABLE_REASON", "not probed yet")
    assert kernels_cuda.register()
    backend = kernels._REGISTRY["cuda"]
    x = torch.randn(1, 16, 2, 8)
    backend.ssd_scan(x, torch.rand(1, 16, 2), -torch.ones(2), torch.randn(1, 16, 1, 4),
                     torch.randn(1, 16, 1, 4), 8)
    backend.causal_conv1d(torch.randn(1, 16, 8), torch.randn(8, 1, 4), torch.randn(8))
    assert ssd.calls == [] and conv.calls == []


def test_triton_interpreter_is_never_a_production_backend(monkeypatch) -> None:
    """Even with a CUDA device, TRITON_INTERPRET set means: no cuda backend, and why."""
    from ldarnet.model import kernels_cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    ops, reason = kernels_cuda._probe()
    assert ops == {} and "TRITON_INTERPRET is set" in reason


# -- argument mapping against references of the kernels' documented semantics (CPU)
#
# Each reference below implements what its kernel is documented to compute AND checks
# the input conditions the kernel enforces, so a wrapper that passes a layout, dtype or
# argument the real kernel would refuse fails here too:
# - mamba_chunk_scan_combined (mamba-ssm 2.x, ssd_combined.py): shapes asserted by its
#   forward; dt_bias/dt_softplus/dt_limit as documented;
# - causal_conv1d_fn (causal-conv1d 1.5, causal_conv1d_interface.py and the TORCH_CHECKs of
#   csrc/causal_conv1d.cpp): x (batch, dim, seqlen) with unit stride in time or channels
#   (the interface copies anything else), weight (dim, width), width 2..4, bias in the
#   weight's dtype; "channel last" (x.stride(1) == 1) needs dim, x.stride(0) and
#   x.stride(2) multiples of 8; output in x's dtype;
# - flash_attn_varlen_func (flash-attn 2.x): q, k, v (total, heads, head_dim) with unit
#   last stride, head_dim <= 256, cu_seqlens int32 (batch + 1,) from 0 to total,
#   max_seqlen >= every length; query i of a sequence sees key j of the same sequence iff
#   i - left <= j <= i + right for window_size (left, right), -1 = unbounded (for equal
#   query and key lengths); softmax_scale defaults to head_dim ** -0.5.


def flash_free_ssd_reference(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None,
                             initial_states=None, seq_idx=None, cu_seqlens=None,
                             dt_softplus=False, dt_limit=(0.0, float("inf")),
                             return_final_states=False, return_varlen_states=False):
    """``mamba_chunk_scan_combined``'s documented contract, computed by ``ssd_chunked``."""
    b, length, h, p = x.shape
    g, n = B.shape[2:]
    assert h % g == 0 and B.shape == C.shape == (b, length, g, n)
    assert dt.shape == (b, length, h) and A.shape == (h,)
    assert D is None or D.shape in ((h,), (h, p))
    assert z is None and initial_states is None and seq_idx is None and cu_seqlens is None
    assert not return_final_states and not return_varlen_states
    if dt_bias is not None:
        dt = dt + dt_bias
    if dt_softplus:
        dt = F.softplus(dt)
    dt = dt.clamp(*dt_limit)
    return ssd_chunked(x, dt, A, B, C, chunk_size, D)


def causal_conv1d_fn_reference(x, weight, bias=None, seq_idx=None, initial_states=None,
                               return_final_states=False, final_states_out=None,
                               activation=None, layouts=None):
    """``causal_conv1d_fn``'s documented contract and input checks (see above)."""
    kernel_dtypes = (torch.float32, torch.float16, torch.bfloat16)
    assert seq_idx is None and initial_states is None and not return_final_states
    assert activation in (None, "silu", "swish")
    _, dim, seqlen = x.shape
    width = weight.shape[-1]
    assert weight.shape == (dim, width) and 2 <= width <= 4
    assert x.dtype in kernel_dtypes and weight.dtype in kernel_dtypes
    if x.stride(2) != 1 and x.stride(1) != 1:
        x = x.contiguous()  # what the Python interface does
    channel_last = x.stride(1) == 1 and x.stride(2) > 1
    if channel_last:
        assert dim % 8 == 0, "causal_conv1d only supports channel dimension divisible by 8"
        assert x.stride(2) % 8 == 0 and x.stride(0) % 8 == 0, \
            "channel last layout requires x.stride(0) and x.stride(2) multiples of 8"
    if bias is not None:
        assert bias.dtype == weight.dtype and bias.shape == (dim,) and bias.stride(-1) == 1
    if layouts is not None:
        layouts.append(("channel_last" if channel_last else "contiguous", x))
    out = F.conv1d(x.to(weight.dtype), weight.unsqueeze(1), bias, padding=width - 1,
                   groups=dim)[..., :seqlen]
    if activation is not None:
        out = F.silu(out)
    return out.to(x.dtype)


def flash_attn_varlen_func_reference(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                     max_seqlen_k, dropout_p=0.0, softmax_scale=None,
                                     causal=False, window_size=(-1, -1), softcap=0.0,
                                     alibi_slopes=None, deterministic=False,
                                     return_attn_probs=False, block_table=None):
    """``flash_attn_varlen_func``'s documented contract and input checks (see above).

    Any float dtype is accepted so the comparison can be exact in float64; fp16/bf16 is
    the attention module's gate (tests/model/test_kernels_cuda.py GPU tests run the real one).
    """
    assert dropout_p == 0.0 and softcap == 0.0 and alibi_slopes is None
    assert block_table is None and not return_attn_probs
    total, heads, head_dim = q.shape
    assert k.shape == v.shape == (cu_seqlens_k[-1].item(), heads, head_dim)
    assert all(t.stride(-1) == 1 for t in (q, k, v)) and head_dim <= 256
    for cu, total_len, max_len in ((cu_seqlens_q, total, max_seqlen_q),
                                   (cu_seqlens_k, k.shape[0], max_seqlen_k)):
        assert cu.dtype == torch.int32 and cu.dim() == 1 and cu[0].item() == 0
        assert cu[-1].item() == total_len
        assert int((cu[1:] - cu[:-1]).max()) <= max_len
    scale = head_dim ** -0.5 if softmax_scale is None else softmax_scale
    left, right = window_size
    outs = []
    cu_q, cu_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for (q0, q1), (k0, k1) in zip(itertools.pairwise(cu_q), itertools.pairwise(cu_k),
                                  strict=True):
        i = torch.arange(q1 - q0)[:, None] + (k1 - k0) - (q1 - q0)  # bottom-right aligned
        j = torch.arange(k1 - k0)[None, :]
        allowed = torch.ones(q1 - q0, k1 - k0, dtype=torch.bool)
        if left >= 0:
            allowed &= j >= i - left
        if right >= 0:
            allowed &= j <= i + right
        if causal:
            allowed &= j <= i
        scores = torch.einsum("qhd,khd->hqk", q[q0:q1], k[k0:k1]) * scale
        probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
        outs.append(torch.einsum("hqk,khd->qhd", probs, v[k0:k1]))
    return torch.cat(outs, dim=0)


def _reference_backend(**ops) -> kernels.Backend:
    """The cuda backend's own wrappers (``make_backend``) around reference kernels, with a
    device gate that admits CPU tensors."""
    from ldarnet.model import kernels_cuda

    return kernels_cuda.make_backend(ops, name="cuda-reference",
                                     use_kernels=lambda *tensors: True,
                                     is_available=lambda: True)


@pytest.mark.parametrize(("h", "p", "g", "n", "d_shape"), [
    (4, 16, 2, 8, "h"), (1, 512, 1, 1, "h"), (2, 256, 1, 4, "h"), (2, 192, 1, 4, "hp"),
])
def test_ssd_wrapper_maps_arguments_and_splits_wide_heads(h, p, g, n, d_shape) -> None:
    kernel = _Recorder(flash_free_ssd_reference)
    backend = _reference_backend(ssd=kernel)
    b, length = 2, 70
    x = torch.randn(b, length, h, p, dtype=torch.float64)
    dt = torch.rand(b, length, h, dtype=torch.float64) * 0.5 + 0.01
    A = -torch.rand(h, dtype=torch.float64) - 0.1
    B = torch.randn(b, length, g, n, dtype=torch.float64)
    C = torch.randn(b, length, g, n, dtype=torch.float64)
    D = torch.randn(h if d_shape == "h" else (h, p), dtype=torch.float64)
    # float64 is outside the kernels' dtypes: run the wrapper on float32 copies.
    args32 = [t.float() for t in (x, dt, A, B, C)]
    got = backend.ssd_scan(*args32, 32, D.float())
    assert len(kernel.calls) == 1
    (kx, *_), kwargs = kernel.calls[0]
    assert kx.shape[-1] <= 128 and kwargs["dt_bias"] is None and not kwargs["dt_softplus"]
    ref = ssd_chunked(x, dt, A, B, C, 32, D)
    assert got.shape == ref.shape and got.dtype == torch.float32
    assert _rel_err(got, ref) < 1e-4


@pytest.mark.parametrize(("channels", "extra", "layout"), [
    (1280, 1040, "channel_last"),  # 110M stage 0: xBC viewed in zxbcdt, passed as is
    (24, 3, "channel_last"),  # row stride 27: copied to a contiguous channel-last layout
    (20, 3, "contiguous"),  # 20 channels: row stride not a multiple of 8
    (13, 0, "contiguous"),
    (36, 4, "contiguous"),  # row stride 40 but 36 channels: not channel-last-able
])
def test_conv_wrapper_layouts_match_reference(channels, extra, layout) -> None:
    layouts: list = []
    kernel = _Recorder(lambda *a, **kw: causal_conv1d_fn_reference(*a, layouts=layouts, **kw))
    backend = _reference_backend(conv=kernel)
    full = torch.randn(2, 37, channels + extra, requires_grad=True)
    x = full[..., extra:]  # a split view like Mamba2's xBC: non-unit row stride
    weight = torch.randn(channels, 1, 4, requires_grad=True)
    bias = torch.randn(channels, requires_grad=True)
    got = backend.causal_conv1d(x, weight, bias)
    assert len(kernel.calls) == 1
    (used, passed), = layouts
    assert used == layout
    if layout == "channel_last" and x.stride(1) % 8 == 0:
        assert passed.data_ptr() == x.data_ptr()  # the view itself, no copy
    ref = causal_depthwise_conv1d(x, weight, bias)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(got.square().sum(), (full, weight, bias))
    ref_grads = torch.autograd.grad(ref.square().sum(), (full, weight, bias))
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("window", [3, -1])
@pytest.mark.parametrize("lengths", [[50, 50], [50, 31, 7]])
def test_varlen_attention_mapping_matches_reference(window, lengths) -> None:
    """unpad -> the cuda wrapper's flash-attn call -> repad equals the module's reference
    path (blockwise SDPA over the padded batch)."""
    kernel = _Recorder(flash_attn_varlen_func_reference)
    backend = _reference_backend(attention=kernel)
    m = SlidingWindowAttention(32, 4, 8, window).double()
    L = max(lengths)
    x = torch.randn(len(lengths), L, 32, dtype=torch.float64)
    mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]
    ref = m(x, mask)
    qkv = m.Wqkv(x).view(len(lengths), L, 3, m.num_heads, m.head_dim)
    q, k, v = qkv.unbind(dim=2)
    q, k = m.rotary_emb(q, k)
    out = m._varlen_attention(backend.varlen_attention, q, k, v,
                              None if all(n == L for n in lengths) else mask)
    got = m.out_proj(out.reshape(len(lengths), L, 32))
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10)
    assert torch.all(out[~mask] == 0)
    (args, kwargs), = kernel.calls
    assert args[3].tolist() == [0, *itertools.accumulate(lengths)]
    assert kwargs["window_size"] == (window, window) and kwargs["causal"] is False


def test_varlen_attention_declines_masks_it_cannot_pack() -> None:
    kernel = _Recorder(flash_attn_varlen_func_reference)
    backend = _reference_backend(attention=kernel)
    m = SlidingWindowAttention(16, 2, 8, 2)
    q = k = v = torch.randn(2, 6, 2, 8)
    left_padded = torch.tensor([[False, True, True, True, True, True], [True] * 6])
    empty_row = torch.tensor([[False] * 6, [True] * 6])
    assert m._varlen_attention(backend.varlen_attention, q, k, v, left_padded) is None
    assert m._varlen_attention(backend.varlen_attention, q, k, v, empty_row) is None
    assert kernel.calls == []


# ============================================================================ GPU tests

FP32_SCAN, FP32_EXACTISH, BF16, MODEL_FP32, MODEL_BF16 = 3e-3, 1e-5, 3e-2, 1e-2, 5e-2


@pytest.fixture
def cuda_backend():
    kernels.set_backend("cuda")
    return kernels._REGISTRY["cuda"]


def _ssd_inputs(b, length, h, p, g, n, dtype, requires_grad=True):
    dev = "cuda"
    x = torch.randn(b, length, h, p, device=dev, dtype=dtype)
    dt = F.softplus(torch.randn(b, length, h, device=dev) - 2)  # positive, float32
    A = -torch.exp(torch.rand(h, device=dev) * 2)
    B = torch.randn(b, length, g, n, device=dev, dtype=dtype)
    C = torch.randn(b, length, g, n, device=dev, dtype=dtype)
    D = torch.randn(h, device=dev)
    return [t.requires_grad_(requires_grad) for t in (x, dt, A, B, C, D)]


@needs_cuda
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, FP32_SCAN), (torch.bfloat16, BF16)])
@pytest.mark.parametrize(
    ("b", "length", "h", "p", "g", "n", "chunk"),
    [
        (2, 1000, 8, 64, 1, 64, 256),  # length not a multiple of the chunk
        (1, 512, 4, 32, 2, 16, 64),  # two groups
        (2, 300, 1, 512, 1, 1, 256),  # the dechunk EMA: one wide head, d_state 1
    ],
)
def test_ssd_kernel_matches_reference(cuda_backend, dtype, tol, b, length, h, p, g, n,
                                      chunk) -> None:
    inputs = _ssd_inputs(b, length, h, p, g, n, dtype)
    x, dt, A, B, C, D = inputs
    got = cuda_backend.ssd_scan(x, dt, A, B, C, chunk, D)
    ref = ssd_chunked(x, dt, A, B, C, chunk, D)
    assert got.dtype == ref.dtype == dtype
    assert _rel_err(got, ref) < tol
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((got * w).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * w).sum(), inputs)
    for name, a, r in zip(["x", "dt", "A", "B", "C", "D"], grads, ref_grads, strict=True):
        assert _rel_err(a, r) < 3 * tol, name  # gradients sum more products: 3x looser


@needs_cuda
def test_ssd_kernel_padding_is_exact(cuda_backend) -> None:
    """Right padding with garbage (positive dt, non-zero x) never reaches valid outputs,
    and leading zero-input padding leaves the state at exactly zero."""
    lengths = [700, 256, 33]
    x, dt, A, B, C, D = _ssd_inputs(3, 700, 4, 64, 1, 32, torch.float32, requires_grad=False)
    batched = cuda_backend.ssd_scan(x, dt, A, B, C, 256, D)
    for i, n in enumerate(lengths):
        alone = cuda_backend.ssd_scan(*(t[i : i + 1, :n] for t in (x, dt)), A,
                                      *(t[i : i + 1, :n] for t in (B, C)), 256, D)
        assert _rel_err(batched[i : i + 1, :n], alone) < 1e-4  # accumulation order only
    pad = 100  # the dechunk EMA's flipped rows: zero input first, any positive dt
    xp = torch.cat([torch.zeros_like(x[:, :pad]), x], dim=1)
    dtp = torch.cat([torch.rand_like(dt[:, :pad]) + 0.1, dt], dim=1)
    Bp, Cp = (torch.cat([torch.randn_like(t[:, :pad]), t], dim=1) for t in (B, C))
    shifted = cuda_backend.ssd_scan(xp, dtp, A, Bp, Cp, 256, None)
    assert torch.all(shifted[:, :pad] == 0)
    # Different chunk alignment: equal up to the kernel's own rounding.
    assert _rel_err(shifted[:, pad:], cuda_backend.ssd_scan(x, dt, A, B, C, 256, None)) \
        < FP32_SCAN


@needs_cuda
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, FP32_EXACTISH), (torch.bfloat16, BF16)])
@pytest.mark.parametrize(("channels", "extra", "k"), [
    (1280, 1040, 4),  # 110M stage 0: a channel-last view of zxbcdt, passed as is
    (96, 68, 4),  # tiny: row stride 164, copied to a contiguous channel-last layout
    (36, 0, 2),  # channels not a multiple of 8: plain (b, c, l) layout
    (40, 0, 3),
])
def test_conv_kernel_matches_reference(cuda_backend, dtype, tol, channels, extra, k) -> None:
    full = torch.randn(2, 513, channels + extra, device="cuda", dtype=dtype, requires_grad=True)
    x = full[..., extra:]  # like Mamba2's xBC split out of zxbcdt
    weight = torch.randn(channels, 1, k, device="cuda", requires_grad=True)
    bias = torch.randn(channels, device="cuda", requires_grad=True)
    got = cuda_backend.causal_conv1d(x, weight, bias)
    ref = causal_depthwise_conv1d(x, weight, bias)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert _rel_err(got, ref) < tol
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((got * w).sum(), (full, weight, bias))
    ref_grads = torch.autograd.grad((ref * w).sum(), (full, weight, bias))
    for a, r in zip(grads, ref_grads, strict=True):
        assert _rel_err(a, r) < max(tol, 1e-4)


@needs_cuda
@pytest.mark.parametrize("window", [15, -1])
@pytest.mark.parametrize("lengths", [[300, 300], [300, 129, 5]])
def test_flash_attention_matches_reference(window, lengths) -> None:
    if kernels._REGISTRY["cuda"].varlen_attention is None:
        pytest.skip("flash-attn is not installed")
    m = SlidingWindowAttention(128, 4, 16, window).cuda()
    L = max(lengths)
    x = torch.randn(len(lengths), L, 128, device="cuda", requires_grad=True)
    mask = torch.arange(L, device="cuda")[None, :] < torch.tensor(lengths, device="cuda")[:, None]
    results = {}
    for name in ("torch", "cuda"):
        kernels.set_backend(name)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = m(x, mask)
        grads = torch.autograd.grad(out.float().square().sum(), (x, m.Wqkv.weight))
        results[name] = (out, grads)
    (ref, ref_grads), (got, grads) = results["torch"], results["cuda"]
    assert torch.all(got[~mask] == 0)
    assert _rel_err(got, ref) < BF16
    for a, r in zip(grads, ref_grads, strict=True):
        assert _rel_err(a, r) < BF16


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_norms_match_reference(dtype) -> None:
    from ldarnet.model.network.norm import GatedRMSNorm, RMSNorm

    tol = FP32_EXACTISH * 10 if dtype == torch.float32 else BF16
    x = torch.randn(4, 100, 256, device="cuda", dtype=dtype)
    z = torch.randn_like(x)
    for module, args in ((RMSNorm(256).cuda(), (x,)),
                         (GatedRMSNorm(256, group_size=128).cuda(), (x, z))):
        with torch.no_grad():
            module.weight.normal_(1.0, 0.1)
        kernels.set_backend("torch")
        ref = module(*args)
        kernels.set_backend("cuda")
        got = module(*args)
        assert got.dtype == ref.dtype == dtype
        assert _rel_err(got, ref) < tol


def _tiny_fixed_grid():
    """The tiny model with boundaries on a fixed grid: the router's hard 0/1 decisions are
    discontinuous, so a last-bit difference could flip one with p ≈ 0.5 and change the
    logits legitimately; a fixed grid keeps chunk/dechunk in play without that."""
    cfg = load_model_config(ROOT / "config/models/ldarnet-tiny.yaml")
    return dataclasses.replace(
        cfg, routing=dataclasses.replace(cfg.routing, boundaries="fixed_grid", grid_stride=4))


def _model_run(model, ids, autocast: bool):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        logits = model(ids).logits
    logits.float().square().mean().backward()
    return logits.detach().float(), {n: p.grad.detach().clone()
                                     for n, p in model.named_parameters() if p.grad is not None}


@needs_cuda
@pytest.mark.parametrize(("autocast", "tol"), [(False, MODEL_FP32), (True, MODEL_BF16)])
def test_tiny_model_logits_and_gradients_agree_between_backends(autocast, tol) -> None:
    from ldarnet.model.network.ldarnet import LDARNet

    torch.manual_seed(0)
    model = LDARNet(_tiny_fixed_grid()).cuda()
    with torch.no_grad():  # wake the zero-initialised skip so every path carries signal
        model.hierarchy.residual_proj.weight.normal_(0, 0.1)
    ids = torch.randint(0, 4, (3, 512), device="cuda")
    ids[1, 400:] = 6  # padded rows: [PAD] = 6
    ids[2, 77:] = 6
    kernels.set_backend("torch")
    ref_logits, ref_grads = _model_run(model, ids, autocast)
    kernels.set_backend("cuda")
    logits, grads = _model_run(model, ids, autocast)
    assert _rel_err(logits, ref_logits) < tol
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        assert _rel_err(g, ref_grads[name]) < 3 * tol, name


@needs_cuda
def test_tiny_model_padding_exact_on_cuda_backend(cuda_backend) -> None:
    from ldarnet.model.network.ldarnet import LDARNet

    torch.manual_seed(0)
    model = LDARNet(_tiny_fixed_grid()).cuda().eval()
    lengths = [300, 512, 64]
    ids = torch.randint(0, 4, (3, 512), device="cuda")
    for i, n in enumerate(lengths):
        ids[i, n:] = 6
    with torch.no_grad():
        batched = model(ids).logits
        for i, n in enumerate(lengths):
            alone = model(ids[i : i + 1, :n]).logits
            assert _rel_err(batched[i : i + 1, :n], alone) < 1e-4
