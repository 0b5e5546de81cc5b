"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

Layout of a run directory::

    model.safetensors, config.json     the final model (the workflow's output)
    state/latest.json                  {"step": N, "dir": "step_00000N"}, replaced atomically
    state/step_00000N/model.safetensors, optimizer.safetensors, meta.json

A resumable state is written into ``step_N.tmp/`` and renamed to ``step_N/`` once
complete, then ``latest.json`` is replaced: a crash at any moment leaves the previous
state intact and never a half-written one. The optimizer's moments and step counts are
saved as tensors, so a resumed run continues bit for bit. Data position, learning rate
and random draws are pure functions of the step and seed, so no other state is needed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ldarnet.foundation.atomic import write_json
from ldarnet.model.weights import (
    WeightsError,
    load_model_file,
    load_tensors,
    make_shareable,
    save_module,
    save_tensors,
    unwrap,
)

# A checkpoint that is missing, truncated, damaged or from another run: the one error of
# weights files (ldarnet.model.weights), under the name the training code has always used.
CheckpointError = WeightsError


def _optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    names = {id(p): n for n, p in unwrap(model).named_parameters()}
    tensors = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                tensors[f"{names[id(p)]}::{key}"] = torch.as_tensor(value).detach().cpu()
    return tensors


def _restore_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       tensors: dict[str, torch.Tensor]) -> None:
    params = dict(unwrap(model).named_parameters())
    state: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, field = key.split("::", 1)
        if name not in params:
            raise CheckpointError(f"optimizer state names parameter {name!r} that the model lacks")
        state.setdefault(name, {})[field] = value
    on_device = bool(optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
    for name, fields in state.items():
        p = params[name]
        optimizer.state[p] = {
            k: (v.to(p.device) if k != "step" or on_device else v) for k, v in fields.items()
        }


def save_state(run_dir: str | Path, step: int, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, meta: dict[str, Any], keep: int = 1) -> Path:
    """Write the resumable state of ``step`` and point ``latest.json`` at it."""
    state_dir = Path(run_dir) / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = state_dir / name
    tmp = state_dir / f"{name}.tmp"
    for stale in state_dir.glob("step_*.tmp"):  # a state write killed mid-way, any step
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    save_module(unwrap(model), tmp / "model.safetensors")
    save_tensors(_optimizer_tensors(model, optimizer), tmp / "optimizer.safetensors",
                 finite=False)
    for written in ("model.safetensors", "optimizer.safetensors"):
        make_shareable(tmp / written)
    (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json(state_dir / "latest.json", {"step": step, "dir": name})
    older = sorted(p for p in state_dir.glob("step_*") if p.is_dir() and p.name != name
                   and not p.name.endswith(".tmp"))
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_state(run_dir: str | Path) -> Path | None:
    """The directory of the newest complete state, or None for a fresh run."""
    pointer = Path(run_dir) / "state" / "latest.json"
    if not pointer.exists():
        return None
    try:
        target = Path(run_dir) / "state" / json.loads(pointer.read_text())["dir"]
    except (json.JSONDecodeError, KeyError) as err:
        raise CheckpointError(f"{pointer} is corrupt ({err}); delete {pointer.parent} to start "
                              "over") from None
    if not target.is_dir():
        raise CheckpointError(f"{pointer} points to missing {target}; delete {pointer.parent} "
                              "to start over")
    return target


def read_state_meta(state_dir: Path) -> dict[str, Any]:
    """The meta.json of a saved state (its run identity, step, FLOPs)."""
    meta_path = state_dir / "meta.json"
    try:
        return json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {meta_path} is unreadable ({err}); delete "
                              f"{state_dir.parent} to start over") from None


def load_state(state_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               expected: dict[str, Any]) -> dict[str, Any]:
    """Restore model and optimizer from ``state_dir``; return its meta (``step``, ...).

    Another run's state is refused.

    ``expected`` holds the identity of this run (model config, training config, seed,
    data); any difference is listed in the error instead of silently mixing two runs.
    """
    meta = read_state_meta(state_dir)
    different = sorted(k for k, v in expected.items() if meta.get(k) != v)
    if different:
        raise CheckpointError(
            f"checkpoint in {state_dir.parent.parent} belongs to another run: "
            f"{', '.join(different)} differ(s) from this command. Use a new output directory, "
            f"or delete {state_dir.parent} to start over"
        )
    load_model_file(model, state_dir / "model.safetensors")
    try:
        tensors, _ = load_tensors(state_dir / "optimizer.safetensors", finite=False)
    except WeightsError as err:
        raise CheckpointError(f"optimizer state in {state_dir} is truncated or corrupt: {err}; "
                              f"delete {state_dir.parent} to start over") from None
    _restore_optimizer(model, optimizer, tensors)
    return meta
