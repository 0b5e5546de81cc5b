"""Figures of the boundary-alignment analysis: anchored profiles with ±2 SEM bands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ldarnet.report.figures import save_figure


@dataclass
class Curve:
    """One profile to draw: mean and SEM per offset, with its label and sample size."""

    label: str
    offsets: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n: int


def plot_profiles(panels: dict[str, list[Curve]], path: str | Path, title: str,
                  ylabel: str = "mean boundary probability",
                  xlabel: str = "offset from anchor (nt, transcript orientation)") -> None:
    """One panel per anchor kind (two per row); each curve with a ±2 SEM band; 0 marked."""
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, curves) in zip(axes.flat, panels.items(), strict=False):
        for curve in curves:
            line, = ax.plot(curve.offsets, curve.mean, lw=1.4,
                            label=f"{curve.label} (n={curve.n:,})")
            ax.fill_between(curve.offsets, curve.mean - 2 * curve.sem,
                            curve.mean + 2 * curve.sem, color=line.get_color(), alpha=0.2,
                            lw=0)
        ax.axvline(0, color="grey", ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
