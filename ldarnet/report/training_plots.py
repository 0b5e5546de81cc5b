"""Figures written next to a pretraining checkpoint: loss curves and learned boundaries."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ldarnet.foundation.figures import save_figure

_BASE_COLOURS = {0: "#2ca02c", 1: "#1f77b4", 2: "#ff7f0e", 3: "#d62728", 4: "#7f7f7f"}


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def plot_curves(train_log: Path, val_log: Path, out: Path) -> None:
    """MLM loss (train and validation), ratio loss, boundary density and LR against step."""
    train, val = _read(Path(train_log)), _read(Path(val_log))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    ax = axes[0, 0]
    if train:
        ax.plot(train["step"], train["mlm"], label="train MLM", lw=1)
    if val:
        ax.plot(val["step"], val["val_mlm"], "o-", label="validation MLM", ms=3)
    ax.axhline(np.log(4), color="grey", ls=":", lw=1, label="uniform guess (ln 4)")
    ax.set_ylabel("cross-entropy (nats)")
    ax.legend(fontsize=8)
    if train:
        axes[0, 1].plot(train["step"], train["ratio"], lw=1)
        axes[1, 0].plot(train["step"], train["density"], lw=1, label="train")
        axes[1, 1].plot(train["step"], train["lr"], lw=1)
    if val:
        axes[1, 0].plot(val["step"], val["val_density"], "o-", ms=3, label="validation")
    axes[0, 1].set_ylabel("ratio loss")
    axes[1, 0].axhline(0.25, color="grey", ls=":", lw=1, label="target 1/N")
    axes[1, 0].set_ylabel("boundary density")
    axes[1, 0].legend(fontsize=8)
    axes[1, 1].set_ylabel("learning rate (base)")
    for a in axes[1]:
        a.set_xlabel("optimizer step")
    fig.suptitle("LDARNet pretraining")
    fig.tight_layout()
    save_figure(fig, out, dpi=120)


def plot_boundaries(tokens: np.ndarray, prob: np.ndarray, boundary: np.ndarray, out: Path,
                    span: int = 200) -> None:
    """Boundary probability along a validation window, with the chosen boundaries."""
    n = min(span, len(tokens))
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.plot(x, prob[:n], color="black", lw=1, label="boundary probability p")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.vlines(x[boundary[:n].astype(bool)], 0, 1, color="tab:red", alpha=0.35, lw=1,
              label="boundary")
    for i in range(n):
        ax.text(i, -0.08, "ACGTN??"[int(tokens[i])], ha="center", va="top", fontsize=5,
                color=_BASE_COLOURS.get(int(tokens[i]), "black"), family="monospace")
    ax.set_ylim(-0.15, 1.02)
    ax.set_xlim(-1, n)
    ax.set_xlabel("position in the first validation window")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, out, dpi=120)
