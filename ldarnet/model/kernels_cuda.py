"""CUDA fast paths behind the kernel seam: mamba-ssm, causal-conv1d, flash-attn.

Importing this module registers a ``"cuda"`` backend in :mod:`ldarnet.model.kernels` when,
and only when, torch sees a CUDA device *and* mamba-ssm's SSD kernel and causal-conv1d
import. Otherwise it registers nothing, raises nothing, and :data:`UNAVAILABLE_REASON`
says why. No kernel package is imported without a CUDA device, so this is cheap on a CPU
machine. :mod:`ldarnet.model.kernels` imports this module lazily, the first time a
backend choice could select it (``auto``/``cuda``).

What the backend provides (docs/cuda.md):

- ``ssd_scan``: mamba-ssm's chunked SSD Triton kernel (``mamba_chunk_scan_combined``);
- ``causal_conv1d``: ``causal_conv1d.causal_conv1d_fn``;
- optional fused ops, each only if its import works: ``varlen_attention`` (flash-attn's
  ``flash_attn_varlen_func``, used by the sliding-window layer in fp16/bf16),
  ``rms_norm`` (mamba-ssm's Triton ``rms_norm_fn``) and ``gated_rms_norm`` (mamba-ssm's
  Triton ``layernorm_gated.rmsnorm_fn`` with the gate applied before the norm).

Every wrapper takes the reference's arguments and falls back to the reference for inputs
the kernels do not take (CPU tensors, float64, unsupported sizes), so selecting this
backend never changes what can be computed, only how.

Two layers, kept apart so that each can be tested on its own (docs/cuda.md):

- the **argument mapping** (``call_ssd``, ``call_conv``, ``call_varlen_attention``,
  ``call_rms_norm``, ``call_gated_rms_norm``) and the kernels' **input conditions**
  (``ssd_supported``, ``conv_supported``): how our arguments become a kernel call, for
  any kernel function passed in and tensors on any device;
- the **device gate**: :func:`make_backend` assembles the wrappers around a set of kernel
  functions and a predicate saying which tensors go to the kernels. :func:`register`, the
  only production caller, builds the ``cuda`` backend with the predicate "every tensor is
  on a CUDA device", and only when torch sees a CUDA device and the packages import.

The CPU test tier (tests/model/test_kernels_interpreter.py) builds a backend from the same
:func:`make_backend` with mamba-ssm's Triton kernels running under Triton's interpreter
and a predicate that accepts CPU tensors: the wrappers' own mapping meets the real
kernels on every machine. Nothing in the package builds such a backend, and
:func:`register` refuses to register while ``TRITON_INTERPRET`` is set, so a real run can
never end up on the interpreter.

Argument conventions of ``mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size, D=...)``
(mamba-ssm 2.x) and how ours map onto them:

- x (b, l, h, p), dt (b, l, h), A (h,), B and C (b, l, g, n), D (h,) or (h, p): the same
  shapes and the same recurrence ``S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T``,
  ``y_t = S_t C_t + D x_t`` (heads ``h`` share group ``h // (H/g)``, as in ours);
- our ``dt`` already has softplus applied by the caller (``Mamba2.mix``; the dechunk EMA
  builds a positive ``dt`` directly), so the kernel is called with ``dt_bias=None``,
  ``dt_softplus=False`` and the default ``dt_limit=(0, inf)``, which applies no clamp;
- ``A`` is passed as is (already ``-exp(A_log)``, negative, float32);
- the kernel returns ``x.dtype``, like ``ssd_chunked``; dt and the cumulative decays are
  float32 inside the kernel whatever the input dtype, but its float32 dot products run as
  TF32 on Ampere and newer (~1e-3 relative), the one systematic difference from the
  reference in float32 (tests/model/test_kernels_cuda.py states the tolerances).

Padding exactness (the property our variable-length batches rely on): a valid output
never depends on padded positions. (1) Right-padded rows put padding *after* the valid
tokens; the scan is causal inside and across chunks (the kernel masks ``s > t`` in the
intra-chunk form and only passes states forward), so whatever dt or input the padding
holds cannot reach an earlier position. BiMamba-2's exact reverse direction reverses each
row within its length, so padding stays last there too. (2) Where padding comes *first*
(the flipped sequence of the dechunk EMA), its input is exactly zero and the state starts
at zero, so every term the padding contributes is a product with zero: the state is still
exactly zero when the first valid token arrives, whatever its (finite, positive) dt. The
kernel evaluates the same terms (masked entries are selected away with ``where``, not
multiplied), so both properties hold for it as they do for ``ssd_chunked``; the padded
variable-length tests of tests/model/test_kernels_cuda.py check them on a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ldarnet.model import kernels
from ldarnet.model.network.conv import causal_depthwise_conv1d
from ldarnet.model.network.ssd import ssd_chunked

# Why the backend is not registered (None once it is).
UNAVAILABLE_REASON: str | None = "not probed yet"
_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# The dechunk EMA runs as ONE head whose channels are the model width (512/768). The
# kernels tile the head dimension, but the upstream H-Net dechunker (the configuration
# these kernels are exercised with) splits the width into heads of a few dozen channels
# sharing dt, A, B and C; doing the same is the identical recurrence and keeps every head
# in the tile sizes the kernels are tuned for.
_MAX_HEADDIM = 128
_SPLIT_HEADDIM = 64
# causal-conv1d's kernels exist for widths 2..4.
_CONV_WIDTHS = (2, 3, 4)
# The kernel functions, by role, as ``make_backend`` takes them.
OP_NAMES = ("ssd", "conv", "attention", "rms_norm", "gated_rms_norm")
# Triton's switch for its interpreter (values it reads as true).
_INTERPRET_ENV = "TRITON_INTERPRET"
_TRUE = ("1", "true", "yes", "on", "y")


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# ------------------------------------------------------------ input conditions and mapping


def ssd_supported(x: Tensor, chunk_size: int) -> bool:
    """Whether ``mamba_chunk_scan_combined`` takes this input (else: the reference)."""
    return x.dtype in _KERNEL_DTYPES and x.shape[1] > 0 and _is_power_of_two(chunk_size)


def call_ssd(kernel: Callable, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
             chunk_size: int, D: Tensor | None = None) -> Tensor:
    """``ssd_chunked``'s arguments as a ``mamba_chunk_scan_combined`` call.

    Same shapes and recurrence (module docstring); ``dt`` is already positive, so no bias,
    no softplus and the default no-clamp ``dt_limit``. A head wider than 128 channels whose
    width is a multiple of 64 (the dechunk EMA's single head) is split into heads of 64
    sharing dt, A, B and C: head i -> sub-heads i*split .. i*split+split-1, consecutive
    channels each; they stay in head i's group because
    (i*split + j) // (h*split/g) == i // (h/g).
    """
    b, length, h, p = x.shape
    split = 1
    if p > _MAX_HEADDIM and p % _SPLIT_HEADDIM == 0:
        split = p // _SPLIT_HEADDIM
        x = x.reshape(b, length, h * split, _SPLIT_HEADDIM)
        dt = dt.repeat_interleave(split, dim=2)
        A = A.repeat_interleave(split)
        if D is not None:
            D = D.repeat_interleave(split) if D.dim() == 1 else D.reshape(h * split, -1)
    y = kernel(x, dt, A, B, C, chunk_size, D=D, dt_bias=None, dt_softplus=False)
    return y.reshape(b, length, h, p) if split > 1 else y


def conv_supported(x: Tensor, weight: Tensor) -> bool:
    """Whether ``causal_conv1d_fn`` takes this input (else: the reference)."""
    return x.dtype in _KERNEL_DTYPES and weight.shape[-1] in _CONV_WIDTHS


def call_conv(kernel: Callable, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``causal_depthwise_conv1d``'s arguments as a ``causal_conv1d_fn`` call.

    causal-conv1d wants x as (b, c, l) and the weight as (c, k); ours are (b, l, c) and the
    ``nn.Conv1d`` weight (c, 1, k). ``x.transpose(1, 2)`` is a (b, c, l) *view* whose
    channels are contiguous, which the kernel accepts as its "channel-last" layout (as
    mamba-ssm's own Mamba2 calls it) when the conditions of :func:`_channel_last_ok`
    hold; otherwise the input is made contiguous first. Weight and bias are cast to x's
    dtype, as the reference does (the kernel wants the bias in the weight's dtype); no
    activation is fused because the seam returns the pre-activation output (the caller
    applies SiLU).
    """
    k = weight.shape[-1]
    if not _channel_last_ok(x):
        x = x.contiguous()
    xt = x.transpose(1, 2)
    if not _channel_last_ok(x):
        xt = xt.contiguous()  # plain (b, c, l) layout: always accepted
    w = weight.reshape(weight.shape[0], k).to(x.dtype)
    b = bias.to(x.dtype) if bias is not None else None
    return kernel(xt, w, b, activation=None).transpose(1, 2)


def _channel_last_ok(x: Tensor) -> bool:
    """Whether (b, l, c) ``x`` transposed is a (b, c, l) layout causal-conv1d accepts as is.

    Its channel-last kernel needs unit channel stride, a channel count and the strides of
    batch and time that are multiples of 8, and (it loads 8 elements at a time) a 16-byte
    aligned start.
    """
    return (x.stride(2) == 1 and x.shape[2] % 8 == 0 and x.stride(1) % 8 == 0
            and x.stride(0) % 8 == 0 and x.data_ptr() % 16 == 0)


def call_varlen_attention(kernel: Callable, q: Tensor, k: Tensor, v: Tensor,
                          cu_seqlens: Tensor, max_seqlen: int, window: int,
                          softmax_scale: float) -> Tensor:
    """Packed-sequence attention as a ``flash_attn_varlen_func`` call.

    q, k, v (total, heads, head_dim), fp16/bf16. Query i of a sequence sees key j of the
    same sequence iff ``|i - j| <= window`` (``window_size=(window, window)``; -1 =
    unbounded, i.e. global attention), non-causal, no dropout.
    """
    return kernel(
        q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen,
        dropout_p=0.0, softmax_scale=softmax_scale, causal=False,
        window_size=(window, window),
    )


def call_rms_norm(kernel: Callable, x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Fused ``x / rms(x) * weight`` (float32 statistics inside the kernel), in x.dtype."""
    return kernel(x, weight, None, eps=eps).to(x.dtype)


def call_gated_rms_norm(kernel: Callable, y: Tensor, z: Tensor, weight: Tensor, eps: float,
                        group_size: int) -> Tensor:
    """Fused ``RMSNorm(y * SiLU(z))`` per group of ``group_size`` channels, in y.dtype."""
    out = kernel(y, weight, None, z=z, eps=eps, group_size=group_size,
                 norm_before_gate=False)
    return out.to(y.dtype)


# --------------------------------------------------------------------- backend assembly


def make_backend(ops: Mapping[str, Callable], *, name: str,
                 use_kernels: Callable[..., bool],
                 is_available: Callable[[], bool]) -> kernels.Backend:
    """A backend whose primitives call ``ops`` (keys of :data:`OP_NAMES`) where they can.

    ``use_kernels(*tensors)`` is the device gate: tensors it rejects, and inputs a kernel
    does not take (``ssd_supported``/``conv_supported``), go to the reference. A missing
    ``ssd``/``conv`` op means the reference for that primitive; a missing fused op leaves
    that entry None (the model module then runs its reference code).
    """
    unknown = set(ops) - set(OP_NAMES)
    if unknown:
        raise ValueError(f"unknown kernel roles {sorted(unknown)}; expected {OP_NAMES}")
    ssd_kernel, conv_kernel = ops.get("ssd"), ops.get("conv")

    def ssd_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int,
                 D: Tensor | None = None) -> Tensor:
        """``ssd_chunked`` via mamba-ssm's chunked SSD kernel (same shapes, same maths)."""
        if ssd_kernel is not None and use_kernels(x, dt, A, B, C) \
                and ssd_supported(x, chunk_size):
            return call_ssd(ssd_kernel, x, dt, A, B, C, chunk_size, D)
        return ssd_chunked(x, dt, A, B, C, chunk_size, D)

    def causal_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """``causal_depthwise_conv1d`` via ``causal_conv1d_fn``: x (b, l, c) -> (b, l, c)."""
        if conv_kernel is not None and use_kernels(x, weight) and conv_supported(x, weight):
            return call_conv(conv_kernel, x, weight, bias)
        return causal_depthwise_conv1d(x, weight, bias)

    def bind(role: str, call: Callable) -> Callable | None:
        kernel = ops.get(role)
        if kernel is None:
            return None

        def fused(*args):
            return call(kernel, *args)

        fused.__doc__ = call.__doc__
        return fused

    return kernels.Backend(
        name=name,
        ssd_scan=ssd_scan,
        causal_conv1d=causal_conv1d,
        is_available=is_available,
        varlen_attention=bind("attention", call_varlen_attention),
        rms_norm=bind("rms_norm", call_rms_norm),
        gated_rms_norm=bind("gated_rms_norm", call_gated_rms_norm),
    )


# -------------------------------------------------------------------- the production gate


def _on_gpu(*tensors: Tensor) -> bool:
    return all(t.is_cuda for t in tensors)


def import_kernels() -> tuple[dict[str, Callable], str | None]:
    """The kernel functions that import here, and why the required ones do not (or None).

    Required: mamba-ssm's SSD kernel and causal-conv1d; the fused extras are independent,
    each missing one leaves its reference path in use. Imports only: whether the kernels
    can *run* is the caller's business (:func:`register` checks for a CUDA device first).
    """
    ops: dict[str, Callable] = {}
    try:
        from causal_conv1d import causal_conv1d_fn
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception as err:  # ImportError, or a wheel built for another torch/ABI
        return ops, (f"mamba-ssm / causal-conv1d cannot be imported ({type(err).__name__}: "
                     f"{err}); see docs/cuda.md for matching wheels")
    ops["ssd"] = mamba_chunk_scan_combined
    ops["conv"] = causal_conv1d_fn
    try:
        from flash_attn import flash_attn_varlen_func

        ops["attention"] = flash_attn_varlen_func
    except Exception:
        pass
    try:
        from mamba_ssm.ops.triton.layer_norm import rms_norm_fn

        ops["rms_norm"] = rms_norm_fn
    except Exception:
        pass
    try:
        from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn

        ops["gated_rms_norm"] = rmsnorm_fn
    except Exception:
        pass
    return ops, None


def _probe() -> tuple[dict[str, Callable], str | None]:
    """The kernels if they can run here, else the reason they cannot."""
    if not torch.cuda.is_available():
        return {}, "no CUDA device is visible to torch (torch.cuda.is_available() is False)"
    if os.environ.get(_INTERPRET_ENV, "0").strip().lower() in _TRUE:
        return {}, (f"{_INTERPRET_ENV} is set: Triton would emulate mamba-ssm's kernels in "
                    "its interpreter (a test device, orders of magnitude slower); unset it")
    return import_kernels()


def register() -> bool:
    """Register the ``cuda`` backend if it can run here; True if it is registered."""
    global UNAVAILABLE_REASON
    if "cuda" in kernels._REGISTRY:
        return True
    ops, UNAVAILABLE_REASON = _probe()
    if UNAVAILABLE_REASON is not None:
        return False
    kernels.register_backend(make_backend(
        ops, name="cuda", use_kernels=_on_gpu, is_available=torch.cuda.is_available))
    return True


def available() -> bool:
    """Whether the ``cuda`` backend is registered (CUDA device + kernel packages)."""
    return "cuda" in kernels._REGISTRY


register()
