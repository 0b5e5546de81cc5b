"""The figure beside each results table: our score per task next to the reference points.

A table of "47.4 ± 5.9 | 81.7 ± 0.8 | 79.4 (Caduceus-Ph)" is read one cell at a time; the
figure shows at a glance where this run sits relative to the release and to the best
published models, and how wide its interval is. One row per (task, model), so ablation arms
or several seeds of pretraining line up under each other. Tasks that are not the official
benchmark (proxy, derived, slice data) carry their data label in the tick text, so a demo
figure can never be mistaken for the paper's.

NT tables plot MCC×100 (the paper's metric); the Genomic Benchmarks table plots accuracy,
the metric its published baselines report (config/baselines/gb.tsv). The NT summary plots
win counts of this run and of the release by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ldarnet.foundation.figures import save_figure

# (row key of the value, row key of its half-width or None, legend label, marker, colour)
NT_SERIES = [
    ("release_mcc_x100", "release_ci95_x100", "release (spec §7)", "s", "tab:blue"),
    ("best_small_mcc_x100", None, "best published < 300M", "^", "tab:orange"),
    ("best_overall_mcc_x100", None, "best published overall", "D", "tab:red"),
]
GB_SERIES = [
    ("gb_cnn_accuracy", None, "GB CNN baseline", "s", "tab:blue"),
    ("best_published_accuracy", None, "best published", "D", "tab:red"),
]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def _label(row: Mapping) -> str:
    data = "" if row.get("data", "official") == "official" else f" ({row['data']})"
    return f"{row['task']}{data} · {row['model']}"


def plot_eval_rows(path: str | Path, rows: Sequence[Mapping], title: str,
                   metric: str = "mcc") -> None:
    """Dot plot: this run's mean ± 95 % CI per (task, model) and the reference markers.

    ``metric`` is ``mcc`` (NT tables, MCC×100) or ``accuracy`` (Genomic Benchmarks, %).
    """
    import matplotlib.pyplot as plt

    ours_key, ci_key = f"{metric}_x100", f"{metric}_ci95_x100"
    series = NT_SERIES if metric == "mcc" else GB_SERIES
    n = max(1, len(rows))
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.42 * n))
    ys = list(range(n))[::-1]  # first row at the top, as in the table
    for y, row in zip(ys, rows, strict=True):
        ci = row.get(ci_key)
        ax.errorbar(row[ours_key], y, xerr=ci if _finite(ci) else None, fmt="o", color="black",
                    capsize=3, label="this run (mean ± 95 % CI)" if y == ys[0] else None)
        for key, half, label, marker, colour in series:
            value = row.get(key)
            if not _finite(value):
                continue
            width = row.get(half) if half else None
            ax.errorbar(value, y, xerr=width if _finite(width) else None, fmt=marker,
                        color=colour, alpha=0.8, capsize=2, label=label)
    ax.set_yticks(ys, [_label(r) for r in rows])
    ax.set_xlabel("MCC × 100" if metric == "mcc" else "accuracy %")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one legend entry per series
    ax.legend(unique.values(), unique.keys(), loc="upper center", fontsize=7,
              bbox_to_anchor=(0.5, -0.12 - 0.25 / n), ncol=2, frameon=False)
    save_figure(fig, path)


def plot_win_counts(path: str | Path, summary: Sequence[Mapping], title: str) -> None:
    """Bars: tasks won against the best published < 300M and overall, per result set."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    width = 0.38
    for i, row in enumerate(summary):
        offset = (i - (len(summary) - 1) / 2) * width
        counts = [row["best_small"], row["best_overall"]]
        bars = ax.bar([x + offset for x in (0, 1)], counts, width,
                      label=f"{row['results']} ({row['official_tasks']} official tasks)")
        ax.bar_label(bars, fmt="%d", fontsize=8)
    ax.set_xticks([0, 1], ["wins vs best < 300M", "wins vs best overall"])
    ax.set_ylabel("NT tasks won")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    save_figure(fig, path)
