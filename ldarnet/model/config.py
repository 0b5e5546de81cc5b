"""Model configuration: dataclasses, YAML loading, and validation with clear messages.

The fields mirror the release's configuration object (spec 1.1) so that a released
checkpoint's embedded config maps one to one. Per-stage values are lists indexed by
stage (0 = outer); a scalar applies to every stage. Everything is validated up front so
that a bad config fails with one message naming the field, before any tensor exists.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldarnet.foundation.errors import InputError
from ldarnet.foundation.yaml_config import check_fields, read_yaml
from ldarnet.model.layout import LayoutError, layout_depth, parse_layout_string, validate_layout

BOUNDARY_KINDS = ("learned", "fixed_grid", "random")
REVERSE_PADDING_MODES = ("exact", "release")


class ConfigError(InputError):
    """A model configuration that cannot describe a valid LDARNet."""


@dataclass(frozen=True)
class SSMConfig:
    """Mamba-2 settings (scalars: the same for every stage). Defaults = mamba-ssm 2.2.5."""

    d_state: int = 128
    d_conv: int = 4
    expand: int = 2
    headdim: int = 64
    ngroups: int = 1
    chunk_size: int = 256
    A_init_range: tuple[float, float] = (1.0, 16.0)
    dt_min: float = 1e-3
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4


@dataclass(frozen=True)
class AttentionConfig:
    """Attention settings, one value per stage (spec 1.5); window -1 means global."""

    num_heads: tuple[int, ...] = (16, 16)
    rotary_emb_dim: tuple[int, ...] = (32, 48)
    window_size: tuple[int, ...] = (1023, -1)
    block_size: int = 256


@dataclass(frozen=True)
class RoutingConfig:
    """Boundary selection and the ratio-loss target N per chunking stage (spec 2.1, 2.5).

    ``boundaries`` picks the strategy: the learned router (the paper's model), a fixed
    grid (one boundary every S = ``grid_stride`` positions) or random boundaries with
    probability 1/S (S = 4 = the default N, so every arm compresses ~4-fold). The router
    and its parameters exist in every case, so that the ablation models differ from
    LDARNet in boundary selection only; the non-learned arms use p = b and no ratio loss
    (docs/ablation.md). ``random_seed`` seeds the random arm's evaluation-mode draws
    (training draws come from the training loop's seeded global generator).
    """

    boundaries: str = "learned"
    target_ratio: tuple[float, ...] = (4.0,)
    grid_stride: int = 4
    random_seed: int = 0

    @property
    def learned(self) -> bool:
        """True when boundaries come from the router's probabilities (ratio loss on)."""
        return self.boundaries == "learned"


@dataclass(frozen=True)
class ModelConfig:
    """A complete LDARNet architecture (spec 1.1)."""

    name: str = "ldarnet"
    arch_layout: list = field(default_factory=lambda: ["m3t1", ["M10"], "m4"])
    d_model: tuple[int, ...] = (512, 768)
    d_intermediate: tuple[int, ...] = (0, 2560)
    vocab_size: int = 7
    pad_token_id: int = 6
    mask_token_id: int = 5
    ssm: SSMConfig = field(default_factory=SSMConfig)
    attn: AttentionConfig = field(default_factory=AttentionConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    # "exact": the reverse scan of BiMamba-2 sees only each row's own tokens (default);
    # "release": flip whole padded rows like the authors' release (padding leaks, spec 1.4).
    reverse_padding: str = "exact"
    residual_in_fp32: bool = True
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        validate_config(self)

    # ----------------------------------------------------------------- per-stage look-ups
    @property
    def num_stages(self) -> int:
        """Number of stages (1 outer + nested inner stages)."""
        return layout_depth(self.arch_layout)

    def attn_for_stage(self, stage: int) -> tuple[int, int, int]:
        """(num_heads, rotary_emb_dim, window_size) of ``stage``."""
        a = self.attn
        return a.num_heads[stage], a.rotary_emb_dim[stage], a.window_size[stage]

    def target_ratio_for_stage(self, stage: int) -> float:
        """Ratio-loss target N of chunking ``stage``; the last value is reused deeper."""
        ratios = self.routing.target_ratio
        return float(ratios[min(stage, len(ratios) - 1)])

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON/YAML form (tuples become lists) that :func:`config_from_dict` reads."""
        return _plain(dataclasses.asdict(self))


# ------------------------------------------------------------------------- loading
_SECTIONS = {"ssm": SSMConfig, "attn": AttentionConfig, "routing": RoutingConfig}


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _check_keys(data: dict, cls: type, where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(sorted(known))}"
        )


def _per_stage(value: Any, n: int, where: str, kind: type = int) -> tuple:
    """Broadcast a scalar to ``n`` stages, or check a list has one entry per stage."""
    values = list(value) if isinstance(value, list | tuple) else [value] * n
    if len(values) < n:
        raise ConfigError(f"{where}: needs one value per stage ({n}), got {value!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or (kind is int and v != int(v)):
            raise ConfigError(f"{where}[{i}]: expected "
                              f"{'an integer' if kind is int else 'a number'}, got {v!r}")
        out.append(kind(v))
    return tuple(out)


def config_from_dict(data: dict[str, Any], source: str = "model config") -> ModelConfig:
    """Build a validated :class:`ModelConfig` from plain data (YAML or checkpoint JSON)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    _check_keys(data, ModelConfig, source)
    check_fields(data, ModelConfig, source, ConfigError,
                 skip=("d_model", "d_intermediate", *_SECTIONS))
    data = dict(data)
    if "arch_layout" not in data:
        raise ConfigError(f"{source}: missing required key 'arch_layout' (e.g. [m3t1, [M10], m4])")
    try:
        stages = layout_depth(data["arch_layout"])
    except LayoutError as err:
        raise ConfigError(f"{source}: {err}") from None
    for key, cls in _SECTIONS.items():
        section = data.get(key, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {section!r}")
        _check_keys(section, cls, f"{source}: {key}")
        check_fields(section, cls, source, ConfigError, prefix=f"{key}.",
                     skip=("num_heads", "rotary_emb_dim", "window_size", "target_ratio"))
        section = dict(section)
        if key == "attn":
            for name in ("num_heads", "rotary_emb_dim", "window_size"):
                if name in section:
                    section[name] = _per_stage(section[name], stages, f"{source}: attn.{name}")
        if key == "routing" and "target_ratio" in section:
            section["target_ratio"] = _per_stage(
                section["target_ratio"], 1, f"{source}: routing.target_ratio", float
            )
        if key == "ssm" and "A_init_range" in section:
            section["A_init_range"] = tuple(float(v) for v in section["A_init_range"])
        data[key] = cls(**section)
    for name in ("d_model", "d_intermediate"):
        if name in data:
            data[name] = _per_stage(data[name], stages, f"{source}: {name}")
    try:
        return ModelConfig(**data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


BASE_KEY = "base"


def _merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_file_keys(data: dict, source: str) -> None:
    """Unknown keys of one file, reported against that file (before any merge)."""
    _check_keys({k: v for k, v in data.items() if k != BASE_KEY}, ModelConfig, source)
    for key, cls in _SECTIONS.items():
        if isinstance(data.get(key), dict):
            _check_keys(data[key], cls, f"{source}: {key}")


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The mapping of ``path`` with its ``base`` chain resolved and merged (base first)."""
    data = read_yaml(path, "model config (see config/models/ for examples)", ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    _check_file_keys(data, str(path))
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be the path of another model config YAML "
                          f"(relative to {path.parent}), got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, base_path))
        raise ConfigError(f"{path}: base chain forms a cycle ({cycle}); remove one base key")
    if not base_path.is_file():
        raise ConfigError(f"{path}: base {base!r} does not exist (looked for {base_path}; "
                          "base paths are relative to the file that names them)")
    return _merge(_read_with_bases(base_path, (*chain, base_path)), data)


def load_model_config(path: str | Path) -> ModelConfig:
    """Read a model config YAML file (``config/models/*.yaml``).

    A file may start from another with ``base: <path relative to this file>`` and
    override some fields: mappings (``ssm``, ``attn``, ``routing``) merge key by key,
    lists and scalars replace. The ablation arms are written this way so that they can
    never drift from the learned model they are compared with.
    """
    path = Path(path)
    data = _read_with_bases(path, (path.resolve(),))
    return config_from_dict(data, source=str(path))


# ---------------------------------------------------------------------- validation
def _positive(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")


def validate_config(cfg: ModelConfig) -> None:
    """Check every field; the message names the first offending field and how to fix it."""
    try:
        validate_layout(cfg.arch_layout)
    except LayoutError as err:
        raise ConfigError(str(err)) from None
    stages = cfg.num_stages
    for name in ("d_model", "d_intermediate"):
        values = getattr(cfg, name)
        if len(values) < stages:
            raise ConfigError(f"{name} needs one value per stage ({stages}), got {list(values)}")
    for s in range(stages):
        _positive(cfg.d_model[s], f"d_model[{s}]")
        if cfg.d_intermediate[s] < 0:
            raise ConfigError(f"d_intermediate[{s}] must be >= 0, got {cfg.d_intermediate[s]}")
        if s > 0 and cfg.d_model[s] < cfg.d_model[s - 1]:
            raise ConfigError(
                f"d_model[{s}]={cfg.d_model[s]} is smaller than d_model[{s - 1}]="
                f"{cfg.d_model[s - 1]}; inner stages widen (pad_dimension) and never narrow"
            )
    ssm = cfg.ssm
    for name in ("d_state", "d_conv", "expand", "headdim", "ngroups", "chunk_size"):
        _positive(getattr(ssm, name), f"ssm.{name}")
    lo, hi = ssm.A_init_range
    if not 0 < lo <= hi:
        raise ConfigError(f"ssm.A_init_range must satisfy 0 < low <= high, got {ssm.A_init_range}")
    if not 0 < ssm.dt_min <= ssm.dt_max:
        raise ConfigError(f"ssm.dt_min/dt_max must satisfy 0 < dt_min <= dt_max, got "
                          f"{ssm.dt_min}/{ssm.dt_max}")
    attn = cfg.attn
    for name in ("num_heads", "rotary_emb_dim", "window_size"):
        if len(getattr(attn, name)) < stages:
            raise ConfigError(f"attn.{name} needs one value per stage ({stages})")
    _positive(attn.block_size, "attn.block_size")
    layout = cfg.arch_layout
    for s in range(stages):
        strings = [layout[0]] if len(layout) == 1 else [layout[0], layout[2]]
        layers = [layer for text in strings for layer in parse_layout_string(text)]
        d = cfg.d_model[s]
        if any(layer.mixer == "mamba" for layer in layers):
            d_inner = ssm.expand * d
            if d_inner % ssm.headdim:
                raise ConfigError(
                    f"d_model[{s}]={d}: expand*d_model={d_inner} is not divisible by "
                    f"ssm.headdim={ssm.headdim}"
                )
            if d_inner % ssm.ngroups or (d_inner // ssm.headdim) % ssm.ngroups:
                raise ConfigError(f"d_model[{s}]={d}: ssm.ngroups={ssm.ngroups} must divide "
                                  "the inner width and the number of SSM heads")
        if any(layer.mixer == "attention" for layer in layers):
            heads, rot, window = cfg.attn_for_stage(s)
            _positive(heads, f"attn.num_heads[{s}]")
            if d % heads:
                raise ConfigError(
                    f"d_model[{s}]={d} is not divisible by attn.num_heads[{s}]={heads}"
                )
            if rot < 0 or rot % 2 or rot > d // heads:
                raise ConfigError(
                    f"attn.rotary_emb_dim[{s}]={rot} must be even and <= head dim {d // heads}"
                )
            if window < -1:
                raise ConfigError(f"attn.window_size[{s}]={window}: use -1 (global) or >= 0")
        if any(layer.mlp for layer in layers) and cfg.d_intermediate[s] <= 0:
            raise ConfigError(
                f"d_intermediate[{s}] must be > 0: stage {s} has SwiGLU (uppercase) layers"
            )
        if len(layout) == 3:
            layout = layout[1]
    if cfg.vocab_size < 7:
        raise ConfigError(f"vocab_size must be >= 7 (A C G T N [MASK] [PAD]), got {cfg.vocab_size}")
    for name in ("pad_token_id", "mask_token_id"):
        value = getattr(cfg, name)
        if not 0 <= value < cfg.vocab_size:
            raise ConfigError(f"{name}={value} is outside the vocabulary [0, {cfg.vocab_size})")
    routing = cfg.routing
    if routing.boundaries not in BOUNDARY_KINDS:
        raise ConfigError(
            f"routing.boundaries={routing.boundaries!r}; choose one of {', '.join(BOUNDARY_KINDS)}"
        )
    if not routing.target_ratio or any(
        not math.isfinite(n) or n <= 1 for n in routing.target_ratio
    ):
        raise ConfigError(f"routing.target_ratio values must be > 1, got {routing.target_ratio}")
    _positive(routing.grid_stride, "routing.grid_stride")
    seed = routing.random_seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"routing.random_seed must be an integer in [0, 2**63), got {seed!r}")
    if cfg.reverse_padding not in REVERSE_PADDING_MODES:
        raise ConfigError(
            f"reverse_padding={cfg.reverse_padding!r}; choose one of "
            f"{', '.join(REVERSE_PADDING_MODES)}"
        )
    if not cfg.norm_eps > 0:
        raise ConfigError(f"norm_eps must be > 0, got {cfg.norm_eps}")
