"""Shared figure plumbing: a non-interactive backend and atomic saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt

from ldarnet.foundation.atomic import temp_path


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 150) -> None:
    """Write a figure atomically (format from the suffix: png, svg, pdf) and close it."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
