"""The one place that chooses how the compute-heavy primitives run.

Every module calls the primitives through this seam (``ssd_scan``, ``causal_conv1d``), never a
kernel library directly. The pure-PyTorch implementation is the reference and is
always registered; CUDA fast paths (mamba-ssm, causal-conv1d, flash-attn) register
themselves here when importable on a GPU machine, so switching implementation never
touches the model code, and equivalence tests can compare backends one to one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ldarnet.model.conv import causal_depthwise_conv1d
from ldarnet.model.ssd import ssd_chunked


@dataclass(frozen=True)
class Backend:
    """A named set of primitive implementations and a probe saying if it can run here."""

    name: str
    ssd_scan: Callable
    causal_conv1d: Callable
    is_available: Callable[[], bool]


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
_active = "torch"


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend; used by optional CUDA modules at import time."""
    _REGISTRY[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the registered backends that can run on this machine."""
    return [name for name, b in _REGISTRY.items() if b.is_available()]


def set_backend(name: str = "auto") -> str:
    """Select the backend by name (``auto`` = fastest available); returns the chosen one."""
    global _active
    if name == "auto":
        name = next(n for n in _PREFERENCE if n in _REGISTRY and _REGISTRY[n].is_available())
    elif name not in _REGISTRY:
        raise ValueError(
            f"unknown kernel backend {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        )
    elif not _REGISTRY[name].is_available():
        raise RuntimeError(
            f"kernel backend {name!r} cannot run here (needs CUDA and its kernel packages: "
            "pip install 'ldarnet[cuda]' on a GPU machine); use 'torch' or 'auto'"
        )
    _active = name
    return name


def active_backend() -> str:
    """Name of the backend in use."""
    return _active


def ssd_scan(x, dt, A, B, C, chunk_size: int, D=None):
    """Run the SSD scan with the active backend (same signature as ``ssd_chunked``)."""
    return _REGISTRY[_active].ssd_scan(x, dt, A, B, C, chunk_size, D)


def causal_conv1d(x, weight, bias):
    """Causal depthwise conv with the active backend: x (b, l, c) -> (b, l, c)."""
    return _REGISTRY[_active].causal_conv1d(x, weight, bias)
