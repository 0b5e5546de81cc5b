"""Weights you can trust: safetensors files that are byte-reproducible and verified on load.

Every weights file ldarnet writes (``model.safetensors`` of a run, the resumable states,
the interop exports) goes through :func:`save_tensors`, and every one it reads through
:func:`load_tensors`:

* **Byte-reproducible.** The safetensors library writes the header's metadata from a
  hash map whose order changes from process to process (the map of tied weights came
  out in a different order every run), so two identical runs gave different files.
  Here the header is written by us: JSON with sorted keys, tensors in name order, the
  standard layout (8-byte little-endian header length, header padded with spaces to a
  multiple of 8, then the raw little-endian tensor bytes). Any safetensors reader reads
  the file; identical tensors give identical files, comparable by checksum.
* **Checksummed.** The metadata holds the SHA-256 of every tensor (``ldarnet.sha256``:
  ``{name: digest}`` over dtype, shape and bytes); loading recomputes them and a
  mismatch names the tensor (a flipped bit, a file patched by hand, a bad copy).
* **Finite.** A weight tensor holding NaN or infinity is refused, with its name, both
  when written (a diverged run must not produce a model file) and when read (a damaged
  file must not produce all-NaN embeddings or a classifier crash far downstream).
* **Tied weights** (the same storage under several names, e.g. an LM head tied to the
  embedding) are stored once; ``ldarnet.tied`` records ``{dropped name: kept name}``.

No pickle is ever involved: only safetensors bytes and JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import torch

from ldarnet.foundation.atomic import temp_path
from ldarnet.foundation.errors import InputError, MissingInputError, note

FORMAT_KEY = "ldarnet.format"
FORMAT = "ldarnet-safetensors-1"
DIGESTS_KEY = "ldarnet.sha256"
TIED_KEY = "ldarnet.tied"
# the keys the safetensors/HF tooling reads ("format": "pt" marks PyTorch tensors)
_STANDARD_METADATA = {"format": "pt"}
_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


class WeightsError(InputError):
    """A weights file that is missing, damaged, not finite, or does not fit the model."""


def _raw(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor (contiguous, on the CPU, no copy if possible)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8)


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (what the file must give back)."""
    digest = hashlib.sha256()
    digest.update(f"{_DTYPES.get(tensor.dtype, str(tensor.dtype))}{list(tensor.shape)}".encode())
    digest.update(_raw(tensor).numpy().data)
    return digest.hexdigest()


def check_finite(tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse a floating-point tensor holding NaN or infinity, naming it."""
    for name in sorted(tensors):
        tensor = tensors[name]
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            kinds = ("NaN" if bool(torch.isnan(tensor).any()) else "") + (
                "/inf" if bool(torch.isinf(tensor).any()) else "")
            raise WeightsError(f"{where}: tensor {name!r} holds {bad:,} non-finite value(s) "
                               f"({kinds.strip('/')}); these weights are unusable (a diverged "
                               "run or a damaged file): retrain, or restore the file")


def untie(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors with each tied tensor kept once (the first of its names in sorted order).

    Tied = the very same tensor under several names (same memory, shape, strides and
    dtype); distinct views of one storage are distinct data and are all kept. Returns
    the tensors to store and ``{dropped name: kept name}``.
    """
    groups: dict[tuple, list[str]] = {}
    for name in sorted(state):
        tensor = state[name]
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        key = (str(tensor.device), tensor.data_ptr(), tuple(tensor.shape), tensor.stride(),
               tensor.dtype)
        groups.setdefault(key, []).append(name)
    tied: dict[str, str] = {}
    for names in groups.values():
        tied.update({n: names[0] for n in names[1:]})
    kept = {name: tensor for name, tensor in state.items() if name not in tied}
    return kept, tied


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | Path,
                 metadata: Mapping[str, str] | None = None, tied: Mapping[str, str] | None = None,
                 finite: bool = True, target: str | Path | None = None) -> None:
    """Write ``tensors`` to ``path`` (the caller makes it atomic) with digests in the header.

    ``finite=False`` skips the finiteness check (optimizer state may hold anything the
    optimizer keeps); digests are always recorded. ``target`` is the file the caller
    will rename ``path`` to, named in messages.
    """
    path = Path(path)
    names = sorted(tensors)
    if finite:
        check_finite(tensors, f"refusing to write {target or path}")
    header: dict[str, object] = {}
    offset = 0
    for name in names:
        tensor = tensors[name]
        if tensor.dtype not in _DTYPES:
            raise WeightsError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors "
                               "cannot store")
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    meta = {**_STANDARD_METADATA, **(metadata or {}), FORMAT_KEY: FORMAT,
            DIGESTS_KEY: json.dumps({n: tensor_sha256(tensors[n]) for n in names},
                                    sort_keys=True, separators=(",", ":"))}
    if tied:
        meta[TIED_KEY] = json.dumps(dict(tied), sort_keys=True, separators=(",", ":"))
    header["__metadata__"] = {k: str(meta[k]) for k in sorted(meta)}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for name in names:
            fh.write(_raw(tensors[name]).numpy().data)
        fh.flush()
        os.fsync(fh.fileno())


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (empty when it has none)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"cannot read weights {path} (truncated, corrupt, or not a "
                           f"safetensors file): {err}") from None


def load_tensors(path: str | Path, finite: bool = True) -> tuple[dict[str, torch.Tensor],
                                                                  dict[str, str]]:
    """Tensors and metadata of a weights file, verified against its recorded digests.

    A file written before digests were recorded is read with a note (it cannot be
    verified); a mismatch, a non-finite weight (unless ``finite=False``) or a file
    safetensors cannot parse is a :class:`WeightsError` naming the file and the tensor.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"weights file {path} does not exist")
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise WeightsError(f"cannot read weights {path} (truncated, corrupt, or not a "
                           f"safetensors file): {err}") from None
    recorded = metadata.get(DIGESTS_KEY)
    if recorded is None:
        note(f"{path}: no tensor checksums recorded (written by another tool or an older "
             "ldarnet); the weights cannot be verified")
    else:
        try:
            digests = json.loads(recorded)
        except json.JSONDecodeError:
            raise WeightsError(f"{path}: the checksum record {DIGESTS_KEY} in its header is "
                               "damaged; restore the file from the run that wrote it") from None
        if sorted(digests) != sorted(tensors):
            missing = sorted(set(digests) ^ set(tensors))[:5]
            raise WeightsError(f"{path}: tensors and recorded checksums disagree on names "
                               f"({', '.join(missing)}); the file is damaged")
        for name in sorted(tensors):
            if tensor_sha256(tensors[name]) != digests[name]:
                raise WeightsError(
                    f"{path}: tensor {name!r} does not match its recorded sha256; the file "
                    "is damaged (bad copy, disk error or edited): restore it from the run "
                    "that wrote it")
    if finite:
        check_finite(tensors, str(path))
    return tensors, metadata


def save_module(model: torch.nn.Module, path: str | Path,
                metadata: Mapping[str, str] | None = None,
                target: str | Path | None = None) -> None:
    """A module's state (tied tensors once) with :func:`save_tensors`."""
    kept, tied = untie(model.state_dict())
    save_tensors(kept, path, metadata=metadata, tied=tied, target=target)


def load_module(model: torch.nn.Module, path: str | Path) -> None:
    """Load a verified weights file into ``model``; names must match exactly.

    Tied parameters are satisfied by the one name the file holds for their storage.
    """
    tensors, _ = load_tensors(path)
    state = model.state_dict()
    _, tied = untie(state)
    groups: dict[str, set[str]] = {}
    for dropped, kept in tied.items():
        groups.setdefault(kept, {kept}).add(dropped)
        groups[dropped] = groups[kept]
    unexpected = sorted(set(tensors) - set(state))
    covered = set(tensors)
    for name in list(covered):
        covered |= groups.get(name, set())
    missing = sorted(set(state) - covered)
    if missing or unexpected:
        raise WeightsError(
            f"model weights {path} do not fit this architecture: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}")
    for name, tensor in tensors.items():
        if state[name].shape != tensor.shape:
            raise WeightsError(
                f"model weights {path} do not fit this architecture: tensor {name!r} has shape "
                f"{tuple(tensor.shape)} in the file, {tuple(state[name].shape)} in the model")
    model.load_state_dict(tensors, strict=False)


def make_shareable(path: Path) -> None:
    """Give a weights file the mode a plain ``open`` would have (0666 - umask).

    safetensors creates its files readable by the owner only (0600); weights in a shared
    project directory must be readable by the project's group like every other output.
    (save_tensors writes with a plain ``open``; this keeps the guarantee explicit.)
    """
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)

def save_model_file(model: torch.nn.Module, path: str | Path) -> None:
    """Model weights to safetensors atomically (tied parameters stored once).

    Byte-reproducible, with the sha256 of every tensor in the header, and refused when a
    weight is not finite (:func:`save_module`).
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        save_module(unwrap(model), tmp, target=path)
        make_shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

def load_model_file(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights saved by :func:`save_model_file`, verified; a mismatch is a clear error."""
    load_module(unwrap(model), path)

def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model
