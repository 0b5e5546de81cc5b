"""The one place that chooses how the compute-heavy primitives run.

Every module calls the primitives through this seam (``ssd_scan``, ``causal_conv1d``, and
the optional fused ops of :func:`fast_path`), never a kernel library directly. The
pure-PyTorch implementation is the reference and is always registered; the CUDA fast paths
(mamba-ssm, causal-conv1d, flash-attn; ``ldarnet/model/kernels_cuda.py``) register
themselves here when they can run, so switching implementation never touches the model
code, and equivalence tests can compare backends one to one.

Choosing the backend (docs/cuda.md):

- ``LDARNET_KERNELS=torch|auto|cuda`` in the environment, read when the first primitive
  runs (default ``auto``);
- :func:`configure` (what a CLI flag calls) or :func:`set_backend`, at any time.

``auto`` picks ``cuda`` only when it is available (a CUDA device and importable kernel
packages), else ``torch``. Asking for ``cuda`` where it cannot run is an error that says
why. The choice is resolved once and cached: the CPU hot path pays one attribute lookup,
never an import attempt or a device probe per call. Optional backends are imported only
when a choice could select them (``auto``/``cuda``), and ``kernels_cuda`` itself imports no
kernel package unless ``torch.cuda.is_available()``, so importing ldarnet on a CPU machine
stays as cheap as before.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from ldarnet.model.network.conv import causal_depthwise_conv1d
from ldarnet.model.network.ssd import ssd_chunked

ENV_VAR = "LDARNET_KERNELS"
CHOICES = ("auto", "torch", "cuda")
# Optional backends and the module whose import registers them (if they can run here).
_OPTIONAL_MODULES = {"cuda": "ldarnet.model.kernels_cuda"}
# Fused ops a backend may provide on top of the two primitives (None = use the reference).
FAST_PATHS = ("varlen_attention", "rms_norm", "gated_rms_norm")


@dataclass(frozen=True)
class Backend:
    """A named set of primitive implementations and a probe saying if it can run here.

    ``ssd_scan`` and ``causal_conv1d`` are required and must accept every input the
    reference accepts (a fast backend falls back to the reference for inputs its kernels
    do not take, e.g. CPU tensors or float64). The fused ops are optional: a model
    module asks :func:`fast_path` and runs its reference code when it gets ``None``.
    """

    name: str
    ssd_scan: Callable
    causal_conv1d: Callable
    is_available: Callable[[], bool]
    varlen_attention: Callable | None = None
    rms_norm: Callable | None = None
    gated_rms_norm: Callable | None = None


_REGISTRY: dict[str, Backend] = {
    "torch": Backend(
        name="torch",
        ssd_scan=ssd_chunked,
        causal_conv1d=causal_depthwise_conv1d,
        is_available=lambda: True,
    ),
}
# Preference order for "auto": fast paths first, the reference last.
_PREFERENCE = ["cuda", "torch"]
# The backend in use; None until the first primitive call (or configure/set_backend).
_active: Backend | None = None
# Optional backend modules already imported (each is tried once per process).
_imported: set[str] = set()


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend; used by optional CUDA modules at import time."""
    _REGISTRY[backend.name] = backend


def _import_optional(name: str) -> None:
    """Import the module that registers optional backend ``name`` (once per process)."""
    if name in _imported or name not in _OPTIONAL_MODULES:
        return
    _imported.add(name)
    importlib.import_module(_OPTIONAL_MODULES[name])


def _unavailable_reason(name: str) -> str:
    """Why optional backend ``name`` is not registered, as its module reports it."""
    module = importlib.import_module(_OPTIONAL_MODULES[name])
    reason = getattr(module, "UNAVAILABLE_REASON", None)
    return reason or "it did not register"


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine (imports optional ones once)."""
    for name in _OPTIONAL_MODULES:
        _import_optional(name)
    return [name for name, b in _REGISTRY.items() if b.is_available()]


def set_backend(name: str = "auto") -> str:
    """Select the backend by name (``auto`` = fastest available); returns the chosen one.

    Raises ``ValueError`` for an unknown name and ``RuntimeError`` (saying why and what to
    do) for a known backend that cannot run here, e.g. ``cuda`` on a CPU-only machine.
    """
    global _active
    if name == "auto":
        for candidate in _PREFERENCE:
            _import_optional(candidate)
        name = next(n for n in _PREFERENCE if n in _REGISTRY and _REGISTRY[n].is_available())
    else:
        _import_optional(name)
        if name not in _REGISTRY:
            if name in _OPTIONAL_MODULES:
                raise RuntimeError(
                    f"kernel backend {name!r} cannot run here: {_unavailable_reason(name)}. "
                    "It needs a CUDA GPU and the kernel packages (pip install 'ldarnet[cuda]', "
                    f"docs/cuda.md); use {ENV_VAR}=torch or auto"
                )
            raise ValueError(
                f"unknown kernel backend {name!r}; choose one of "
                f"{', '.join(sorted({*CHOICES, *_REGISTRY}))}"
            )
        if not _REGISTRY[name].is_available():
            raise RuntimeError(
                f"kernel backend {name!r} cannot run here (needs CUDA and its kernel packages: "
                "pip install 'ldarnet[cuda]' on a GPU machine); use 'torch' or 'auto'"
            )
    _active = _REGISTRY[name]
    return name


def configure(name: str | None = None) -> str:
    """Apply a user's choice (``torch``, ``auto`` or ``cuda``); returns the backend chosen.

    ``None`` means "whatever ``LDARNET_KERNELS`` says" (default ``auto``). This is what a
    command-line flag should call once at start-up, so that a bad value fails there and
    not in the middle of the first forward pass.
    """
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
        where = f"{ENV_VAR}={name!r}"
    else:
        where = repr(name)
    if name not in CHOICES and name not in _REGISTRY:
        raise ValueError(f"kernel backend {where} is not one of {', '.join(CHOICES)}")
    return set_backend(name)


def _resolve() -> Backend:
    """The active backend, choosing it from the environment on first use."""
    if _active is None:
        configure(None)
    assert _active is not None
    return _active


def active_backend() -> str:
    """Name of the backend in use (resolved from ``LDARNET_KERNELS`` on first call)."""
    return _resolve().name


def fast_path(op: str) -> Callable | None:
    """The active backend's fused ``op`` (one of :data:`FAST_PATHS`), or None.

    Callers check cheap conditions (``tensor.is_cuda``, dtype) *before* asking, so the CPU
    path never gets here.
    """
    return getattr(_active or _resolve(), op)


def ssd_scan(x, dt, A, B, C, chunk_size: int, D=None):
    """Run the SSD scan with the active backend (same signature as ``ssd_chunked``)."""
    return (_active or _resolve()).ssd_scan(x, dt, A, B, C, chunk_size, D)


def causal_conv1d(x, weight, bias):
    """Causal depthwise conv with the active backend: x (b, l, c) -> (b, l, c)."""
    return (_active or _resolve()).causal_conv1d(x, weight, bias)
