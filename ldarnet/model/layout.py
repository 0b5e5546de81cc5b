"""The layout grammar of a hierarchical LDARNet (spec 1.2).

A stage layout is a list: ``[encoder, inner_stage, decoder]`` for a chunking stage or
``[main]`` for the innermost stage. Each string is a sequence of ``<letter><count>``
tokens, letters from ``m`` (BiMamba-2), ``M`` (BiMamba-2 + SwiGLU), ``t`` (attention),
``T`` (attention + SwiGLU). Parsing is kept apart from module construction so that
configs can be validated (and FLOPs counted) without building a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldarnet.foundation.errors import InputError

_TOKEN = re.compile(r"([mMtT])(\d+)")


class LayoutError(InputError):
    """An ``arch_layout`` that does not follow the grammar."""


@dataclass(frozen=True)
class LayerSpec:
    """One residual layer: its mixer kind and whether it carries a SwiGLU MLP."""

    mixer: str  # "mamba" or "attention"
    mlp: bool

    @property
    def height(self) -> int:
        """Residual additions of this layer (used for depth-scaled init, spec 1.8)."""
        return 2 if self.mlp else 1


def parse_layout_string(text: str, where: str = "arch_layout") -> list[LayerSpec]:
    """Expand a layout string such as ``"m3t1"`` into one :class:`LayerSpec` per layer."""
    if not isinstance(text, str) or not text:
        raise LayoutError(f"{where}: expected a non-empty layout string like 'm3t1', got {text!r}")
    pos = 0
    layers: list[LayerSpec] = []
    for match in _TOKEN.finditer(text):
        if match.start() != pos:
            break
        letter, count = match.group(1), int(match.group(2))
        if count <= 0:
            raise LayoutError(f"{where}: layer count must be positive in token {match.group(0)!r}")
        mixer = "mamba" if letter in "mM" else "attention"
        layers.extend(LayerSpec(mixer=mixer, mlp=letter.isupper()) for _ in range(count))
        pos = match.end()
    if pos != len(text):
        raise LayoutError(
            f"{where}: cannot parse {text!r} at character {pos} ({text[pos:]!r}); tokens are "
            "<letter><count> with letters m (BiMamba-2), M (BiMamba-2+SwiGLU), "
            "t (attention), T (attention+SwiGLU), e.g. 'm3t1'"
        )
    return layers


def layout_height(layers: list[LayerSpec]) -> int:
    """Total residual additions of a stack."""
    return sum(layer.height for layer in layers)


def layout_depth(layout: list) -> int:
    """Number of stages of a nested layout (1 for a plain stack)."""
    validate_layout(layout)
    depth = 1
    while len(layout) == 3:
        depth += 1
        layout = layout[1]
    return depth


def validate_layout(layout: object, where: str = "arch_layout") -> None:
    """Check the nesting and every string of a layout, raising :class:`LayoutError`."""
    if not isinstance(layout, list) or len(layout) not in (1, 3):
        raise LayoutError(
            f"{where}: a stage layout is [main] or [encoder, [inner...], decoder], got {layout!r}"
        )
    if len(layout) == 1:
        parse_layout_string(layout[0], f"{where}[0]")
        return
    parse_layout_string(layout[0], f"{where}[0] (encoder)")
    validate_layout(layout[1], f"{where}[1]")
    parse_layout_string(layout[2], f"{where}[2] (decoder)")
