"""Figures and files of the boundary analyses: anchored profiles with ±2 SEM bands, logos.

The analyses (:mod:`ldarnet.analysis`) return data; everything they show is drawn here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ldarnet.analysis.results import AnchoredAnalysis, BoundaryLogo, Curve
from ldarnet.foundation.atomic import write_json
from ldarnet.foundation.figures import save_figure
from ldarnet.foundation.tables import write_tsv


def write_anchored_analysis(result: AnchoredAnalysis, out_dir: str | Path) -> dict:
    """The files of an anchored-profile analysis: profiles and statistics TSV, figure,
    logo (motifs), summary JSON (written last); returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tsv(out_dir / f"{result.name}_profiles.tsv", result.profiles)
    write_tsv(out_dir / f"{result.name}_stats.tsv", result.stats)
    if result.figure is not None:
        extra = {} if result.figure.xlabel is None else {"xlabel": result.figure.xlabel}
        plot_profiles(result.figure.panels, out_dir / f"{result.name}_profiles.png",
                      result.figure.title, **extra)
    if result.logo is not None:
        plot_boundary_logo(result.logo, out_dir / "boundary_logo.png")
    write_json(out_dir / f"{result.name}_summary.json", result.summary)
    return result.summary


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


def plot_boundary_logo(logo: BoundaryLogo, path: str | Path, left: int = 6, right: int = 6
                       ) -> None:
    """Information-content logo of the bases around hard boundaries (cut before offset 0)."""
    import logomaker
    import pandas as pd

    sequence, boundary = logo.sequence, logo.boundary
    counts = np.zeros((left + right, 4))
    index = {b: i for i, b in enumerate("ACGT")}
    for t in np.flatnonzero(boundary):
        window = sequence[t - left : t + right]
        if t - left < 0 or len(window) != left + right or "N" in window:
            continue
        for j, base in enumerate(window):
            counts[j, index[base]] += 1
    frame = pd.DataFrame(counts, columns=list("ACGT"), index=range(-left, right))
    info = logomaker.transform_matrix(frame + 0.5, from_type="counts", to_type="information")
    fig, ax = plt.subplots(figsize=(6, 2.4))
    logomaker.Logo(info, ax=ax)
    ax.axvline(-0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("position relative to a boundary (the new token starts at 0)")
    ax.set_ylabel("bits")
    ax.set_title(f"Sequence at learned boundaries in promoters (n={int(counts[0].sum()):,})")
    save_figure(fig, path)


def plot_density(values: dict[tuple[str, str], list[float]], tasks: list[str],
                 out: str | Path) -> None:
    """Box plots of the per-sequence boundary density, per task and class."""
    fig, ax = plt.subplots(figsize=(max(6, 1.9 * len(tasks)), 3.8))
    positions, data, colours, names, groups = [], [], [], [], []
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    x = 0.0
    for task in tasks:
        labels = sorted(label for t, label in values if t == task)
        start = x
        for i, label in enumerate(labels):
            positions.append(x)
            data.append(values[(task, label)])
            colours.append(palette[i % len(palette)])
            names.append(f"{label}\n(n={len(values[(task, label)])})")
            x += 0.8
        groups.append(((start + x - 0.8) / 2, task.replace("_", " ")))
        x += 0.8
    boxes = ax.boxplot(data, positions=positions, widths=0.6, patch_artist=True,
                       showfliers=False)
    for patch, colour in zip(boxes["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
        patch.set_alpha(0.5)
    ax.set_xticks(positions, names, fontsize=6)
    top = max(max(d) for d in data)
    for centre, task in groups:
        ax.text(centre, top * 1.04, task, ha="center", va="bottom", fontsize=7)
    ax.set_ylim(top=top * 1.15)
    ax.set_ylabel("boundary density (1 / compression)")
    ax.set_title("Learned boundary density per task and class")
    fig.tight_layout()
    save_figure(fig, out)
