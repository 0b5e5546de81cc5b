"""mamba-ssm's Triton kernels on CPU tensors, under Triton's interpreter (test-only harness).

The ``cuda`` backend's SSD scan and fused norms are Triton kernels, and Triton can execute
a kernel in its interpreter (``TRITON_INTERPRET=1``: every program instance runs as numpy
code on the host). That makes the kernels — not stand-ins — testable on every machine.
What the harness needs, and why:

- ``TRITON_INTERPRET=1`` in the environment *before triton is first imported*: triton's
  own library of ``@triton.jit`` helpers is decorated at its import, and a kernel that
  calls a compiled helper fails in the interpreter ("Cannot call @triton.jit'd outside
  of the scope of a kernel"). The switch is therefore per process: the tier runs in its
  own pytest process (``make test-kernels`` sets the variable), and :data:`READY` is
  False in any other process;
- ``triton.autotune`` keeps one config while mamba-ssm's modules are imported:
  benchmarking several needs a GPU driver ("0 active drivers"). Configs differ only in
  tiling (block sizes, warps, stages), not in what is computed; the one with the smallest
  tiles is kept, because the interpreter pays for every element of a tile (half the
  time of the first config at these shapes);
- ``torch.cuda.device(index)`` is entered by the kernels' Python wrappers with
  ``x.device.index``, which is None for CPU tensors, and ``torch.cuda.get_device_properties``
  is asked for the SM count that sizes the backward's work split. For CPU devices the
  shims give a no-op context and an H100's 132 SMs (a count the kernels run with on a
  GPU); CUDA devices still go to the real functions. They are installed only for the
  duration of a test (:func:`cpu_kernel_env`);
- the package's ``__init__`` is not run: it only re-exports conveniences (the language
  model, which needs ``transformers``, and the selective-scan CUDA extension); the modules
  under test are imported from the installed package as they are.

The project itself never does any of this: its ``cuda`` backend registers only with a real
CUDA device and refuses while ``TRITON_INTERPRET`` is set (ldarnet/model/kernels_cuda.py).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

# An H100's streaming multiprocessors: what the backward kernels size their splits for.
SM_COUNT = 132
PACKAGES = ("triton", "mamba_ssm", "einops", "huggingface_hub")
INSTALL_HINT = ("`make test-kernels` installs triton, mamba-ssm (pure Python) and "
                "huggingface_hub into .venv and runs this tier in its own process")
# The interpreter is chosen per process, before triton's first import (module docstring).
READY = os.environ.get("TRITON_INTERPRET", "") == "1"


@dataclass(frozen=True)
class InterpretedKernels:
    """mamba-ssm's functions and its Mamba2 module, loaded under the interpreter."""

    mamba_chunk_scan_combined: Any
    rms_norm_fn: Any
    rmsnorm_fn: Any
    mamba2_module: types.ModuleType  # mamba_ssm.modules.mamba2 (Mamba2, causal_conv1d_fn)


def skip_reason() -> str | None:
    """Why the tier cannot run in this process, or None if it can."""
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed; {INSTALL_HINT}"
    if not READY:
        return f"needs TRITON_INTERPRET=1 from the start of the process; {INSTALL_HINT}"
    return None


_loaded: InterpretedKernels | None = None


def load() -> InterpretedKernels:
    """Import mamba-ssm's kernels as interpreted functions (once per process)."""
    global _loaded
    if _loaded is None:
        _loaded = _load()
    return _loaded


def _load() -> InterpretedKernels:
    if not READY:
        raise RuntimeError("TRITON_INTERPRET=1 must be set before the process starts")
    import triton

    saved_autotune = triton.autotune
    spec = importlib.util.find_spec("mamba_ssm")
    assert spec is not None and spec.submodule_search_locations is not None

    def one_config(configs, *args, **kwargs):
        return saved_autotune([min(configs, key=_block_volume)], *args, **kwargs)

    package = types.ModuleType("mamba_ssm")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules.setdefault("mamba_ssm", package)
    triton.autotune = one_config
    try:
        ssd = importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
        layer_norm = importlib.import_module("mamba_ssm.ops.triton.layer_norm")
        gated = importlib.import_module("mamba_ssm.ops.triton.layernorm_gated")
        mamba2 = importlib.import_module("mamba_ssm.modules.mamba2")
    finally:
        triton.autotune = saved_autotune
    return InterpretedKernels(
        mamba_chunk_scan_combined=ssd.mamba_chunk_scan_combined,
        rms_norm_fn=layer_norm.rms_norm_fn,
        rmsnorm_fn=gated.rmsnorm_fn,
        mamba2_module=mamba2,
    )


def _block_volume(config) -> int:
    """Product of a config's tile sizes: the interpreter's cost per program grows with it."""
    volume = 1
    for key, value in config.kwargs.items():
        if key.startswith("BLOCK_"):
            volume *= value
    return volume


@contextlib.contextmanager
def cpu_kernel_env() -> Iterator[None]:
    """The CPU device shims of the kernels' Python wrappers, for the duration of a test."""
    real_device = torch.cuda.device
    real_properties = torch.cuda.get_device_properties

    def device(index):
        return contextlib.nullcontext() if index is None else real_device(index)

    def get_device_properties(device=None):
        if isinstance(device, torch.device) and device.type == "cpu":
            return types.SimpleNamespace(multi_processor_count=SM_COUNT)
        return real_properties(device)

    torch.cuda.device = device
    torch.cuda.get_device_properties = get_device_properties
    try:
        yield
    finally:
        torch.cuda.device = real_device
        torch.cuda.get_device_properties = real_properties
