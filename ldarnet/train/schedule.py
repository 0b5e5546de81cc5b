"""The warmup-stable-decay (WSD) learning-rate schedule of pretraining (spec 3.5).

Over T optimizer steps: W = ⌊warmup·T⌋ steps of linear warm-up, S steps at the base
rate, then D = ⌊decay·T⌋ steps of inverse-square-root decay to ``final`` (5 %) of it::

    s < W:        f = (s + 1) / W
    W ≤ s < W+S:  f = 1
    otherwise:    τ = s − (W + S) + 1 ∈ [1, D],
                  f = 1 − (1 − final) · (1 − τ^(-1/2)) / (1 − D^(-1/2))

so f(τ = 1) = 1 and f(τ = D) = final. The decay is front-loaded (f ≈ 0.5 by τ = 4 for
large D), exactly as in the release. The factor is a pure function of the step, so a
resumed run needs no scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WSDSchedule:
    """LR factor f(step) for ``total_steps`` optimizer steps."""

    total_steps: int
    warmup_fraction: float = 0.1
    decay_fraction: float = 0.2
    final_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.total_steps < 3:
            raise ValueError(f"WSD schedule needs at least 3 steps, got {self.total_steps}")
        if self.warmup_fraction + self.decay_fraction > 1:
            raise ValueError("warmup_fraction + decay_fraction must not exceed 1")

    @property
    def warmup_steps(self) -> int:
        return max(1, math.floor(self.warmup_fraction * self.total_steps))

    @property
    def decay_steps(self) -> int:
        return max(1, math.floor(self.decay_fraction * self.total_steps))

    @property
    def stable_steps(self) -> int:
        return self.total_steps - self.warmup_steps - self.decay_steps

    def factor(self, step: int) -> float:
        """Multiplier of the base LR at optimizer step ``step`` (0-based)."""
        w, s, d = self.warmup_steps, self.stable_steps, self.decay_steps
        if step < w:
            return (step + 1) / w
        if step < w + s:
            return 1.0
        tau = min(step - (w + s) + 1, d)
        if d == 1:
            return self.final_fraction
        progress = (1.0 - tau**-0.5) / (1.0 - d**-0.5)
        return 1.0 - (1.0 - self.final_fraction) * progress
