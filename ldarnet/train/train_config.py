"""Pretraining configuration (``config/pretrain/*.yaml``), validated up front.

The budget is given either in optimizer steps or in tokens; tokens are converted with
the effective batch × sequence length. The paper's budget (config/pretrain/paper.yaml):
~300 B bases at 512 sequences × 4,096 bases = 2,097,152 tokens per step → 143,052 steps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldarnet.foundation.errors import InputError
from ldarnet.foundation.yaml_config import check_fields, read_yaml


class TrainConfigError(InputError):
    """A pretraining config that cannot describe a run."""


@dataclass(frozen=True)
class PretrainConfig:
    """Hyper-parameters of ``ldarnet pretrain`` (defaults = the paper, spec 3.5)."""

    effective_batch: int = 512
    micro_batch: int = 32
    seq_len: int = 4096
    steps: int | None = None
    tokens: float | None = 300.0e9
    lr: float = 5.0e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1.0e-8
    grad_clip: float = 1.0
    warmup_fraction: float = 0.1
    decay_fraction: float = 0.2
    final_lr_fraction: float = 0.05
    alpha_ratio: float = 0.03
    mlm_probability: float = 0.15
    reverse_complement_p: float = 0.5
    val_interval: int = 1000
    val_windows: int = 512
    log_interval: int = 10
    checkpoint_interval: int = 1000
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU; or fp32 / bf16

    def __post_init__(self) -> None:
        validate(self)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the run (from ``steps`` or the token budget)."""
        if self.steps is not None:
            return self.steps
        return math.ceil(float(self.tokens) / (self.effective_batch * self.seq_len))

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per rank per optimizer step."""
        per_step = self.micro_batch * world_size
        if self.effective_batch % per_step:
            raise TrainConfigError(
                f"effective_batch={self.effective_batch} is not divisible by micro_batch "
                f"({self.micro_batch}) x world size ({world_size}); change micro_batch or the "
                "number of GPUs"
            )
        return self.effective_batch // per_step

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


def validate(cfg: PretrainConfig) -> None:
    """One message naming the field for every impossible value."""
    for name in ("effective_batch", "micro_batch", "seq_len", "val_interval", "val_windows",
                 "log_interval", "checkpoint_interval"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise TrainConfigError(f"{name} must be a positive integer, got {value!r}")
    if (cfg.steps is None) == (cfg.tokens is None):
        raise TrainConfigError("set exactly one of 'steps' and 'tokens' (the training budget)")
    if cfg.steps is not None and (not isinstance(cfg.steps, int) or cfg.steps < 3):
        raise TrainConfigError(f"steps must be an integer >= 3, got {cfg.steps!r}")
    if cfg.tokens is not None and not float(cfg.tokens) > 0:
        raise TrainConfigError(f"tokens must be > 0, got {cfg.tokens!r}")
    if cfg.effective_batch % cfg.micro_batch:
        raise TrainConfigError(
            f"effective_batch={cfg.effective_batch} is not divisible by "
            f"micro_batch={cfg.micro_batch}"
        )
    for name in ("lr", "eps", "grad_clip"):
        if not getattr(cfg, name) > 0:
            raise TrainConfigError(f"{name} must be > 0, got {getattr(cfg, name)!r}")
    for name in ("weight_decay", "alpha_ratio"):
        if getattr(cfg, name) < 0:
            raise TrainConfigError(f"{name} must be >= 0, got {getattr(cfg, name)!r}")
    for name in ("warmup_fraction", "decay_fraction", "final_lr_fraction", "mlm_probability",
                 "reverse_complement_p"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise TrainConfigError(f"{name} must be in [0, 1], got {getattr(cfg, name)!r}")
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise TrainConfigError(f"betas must be two values in [0, 1), got {cfg.betas!r}")
    if cfg.precision not in ("auto", "fp32", "bf16"):
        raise TrainConfigError(f"precision must be auto, fp32 or bf16, got {cfg.precision!r}")


def train_config_from_dict(data: dict[str, Any], source: str = "pretrain config") -> PretrainConfig:
    """Build a validated config; unknown keys and wrong types are named."""
    if not isinstance(data, dict):
        raise TrainConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(sorted(known))}"
        )
    check_fields(data, PretrainConfig, source, TrainConfigError)
    data = dict(data)
    if "steps" in data and "tokens" not in data:
        data["tokens"] = None  # a step budget replaces the default token budget
    if "betas" in data:
        data["betas"] = tuple(data["betas"])
    try:
        return PretrainConfig(**data)
    except TrainConfigError as err:
        raise TrainConfigError(f"{source}: {err}") from None


def load_train_config(path: str | Path) -> PretrainConfig:
    """Read ``config/pretrain/*.yaml``."""
    data = read_yaml(path, "pretrain config", TrainConfigError)
    return train_config_from_dict(data, str(path))
