"""The one error type of the fine-tuning stack, so the CLI can report it in one line."""

from __future__ import annotations

from ldarnet.foundation.errors import InputError


class EvaluationError(InputError):
    """Evaluation inputs or settings that cannot run (bad fold, empty grid, bad config)."""
