"""The ablation table and figure: learned vs fixed-grid vs random boundaries, per task.

Every arm is fine-tuned with the same protocol, folds and seeds, so its runs pair with
the learned arm's on (seed, fold): the same training/validation split, the same test
set, the same head initialisation and data order. The difference in MCC is therefore
analysed as paired: mean of the per-(seed, fold) differences in percentage points, its
95 % t-interval, and a paired t-test p-value (two-sided). Pretraining FLOPs and the
compression each arm trained at come from results/ablation/flops.tsv.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ldarnet.report.eval_tables import TableError, write_table


def paired_difference(reference: Sequence[Mapping], arm: Sequence[Mapping]) -> dict[str, float]:
    """Reference − arm MCC×100 over the (seed, fold) runs both have."""
    ref = {(r["seed"], r["fold"]): r["mcc"] for r in reference}
    other = {(r["seed"], r["fold"]): r["mcc"] for r in arm}
    keys = sorted(set(ref) & set(other))
    if not keys:
        raise TableError("no (seed, fold) run in common: the arms were not evaluated with "
                         "the same seeds and folds")
    diff = 100.0 * (np.array([ref[k] for k in keys]) - np.array([other[k] for k in keys]))
    n = len(diff)
    mean = float(diff.mean())
    if n < 2:
        return {"n_pairs": n, "diff_pp": mean, "diff_ci95_pp": math.nan, "p_value": math.nan}
    sd = float(diff.std(ddof=1))
    ci = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    # identical differences in every pair: the t statistic is undefined, the answer is not
    exact = 1.0 if mean == 0.0 else 0.0
    p = exact if sd == 0.0 else float(stats.ttest_1samp(diff, 0.0).pvalue)
    return {"n_pairs": n, "diff_pp": mean, "diff_ci95_pp": ci, "p_value": p}


def ablation_rows(summaries: Sequence[Mapping], flops: Sequence[Mapping],
                  reference: str) -> list[dict[str, Any]]:
    """One row per (task, arm); the reference arm's row has no difference."""
    by_task: dict[str, dict[str, Mapping]] = {}
    for s in summaries:
        by_task.setdefault(s["task"], {})[s["model"]] = s
    accounts = {row["arm"]: row for row in flops}
    rows = []
    for task, arms in by_task.items():
        if reference not in arms:
            raise TableError(f"task {task}: no summary of the reference arm {reference!r}")
        for name in [reference, *sorted(a for a in arms if a != reference)]:
            s = arms[name]
            mcc = s["test"]["mcc"]
            acc = accounts.get(name, {})
            row: dict[str, Any] = {
                "task": task, "arm": name, "boundaries": acc.get("boundaries", ""),
                "data": s["kind"], "runs": mcc["n"],
                "mcc_x100": 100.0 * mcc["mean"], "mcc_ci95_x100": 100.0 * mcc["ci95"],
                "pretrain_flops": float(acc.get("training_flops", math.nan)),
                "flops_vs_reference": float(acc.get("flops_vs_reference", math.nan)),
                "compression": float(acc.get("val_compression", math.nan)),
            }
            if name == reference:
                row.update(n_pairs="", diff_pp=math.nan, diff_ci95_pp=math.nan,
                           p_value=math.nan)
            else:
                row.update(paired_difference(arms[reference]["runs"], s["runs"]))
            rows.append(row)
    return rows


MD_COLUMNS = [("task", "task"), ("arm", "arm"), ("boundaries", "boundaries"),
              ("data", "data"), ("runs", "runs"), ("mcc", "MCC×100"),
              ("diff", "learned − arm (pp)"), ("p", "paired p"), ("flops", "pretrain FLOPs"),
              ("ratio", "FLOPs vs learned"), ("compression", "bases / chunk")]


def _cells(row: Mapping) -> dict[str, str]:
    def num(value: float, fmt: str) -> str:
        return "" if isinstance(value, str) or math.isnan(value) else format(value, fmt)

    diff = "" if math.isnan(row["diff_pp"]) else (
        f"{row['diff_pp']:+.1f}" + ("" if math.isnan(row["diff_ci95_pp"])
                                    else f" ± {row['diff_ci95_pp']:.1f}"))
    return {"task": row["task"], "arm": row["arm"], "boundaries": row["boundaries"],
            "data": row["data"], "runs": str(row["runs"]),
            "mcc": f"{row['mcc_x100']:.1f}" + ("" if math.isnan(row["mcc_ci95_x100"])
                                              else f" ± {row['mcc_ci95_x100']:.1f}"),
            "diff": diff, "p": num(row["p_value"], ".3g"), "flops": num(row["pretrain_flops"],
                                                                        ".3e"),
            "ratio": num(row["flops_vs_reference"], ".3f"),
            "compression": num(row["compression"], ".2f")}


def write_ablation(path: str | Path, rows: list[dict], notes: Sequence[str]) -> None:
    """results/tables/ablation.tsv (+ .md) from the rows of :func:`ablation_rows`."""
    write_table(path, rows, "FLOPs-matched ablation: learned vs fixed-grid vs random "
                "boundaries", notes, MD_COLUMNS, cells=_cells)


def plot_ablation(path: str | Path, rows: Sequence[Mapping]) -> None:
    """MCC×100 ± 95 % CI of every arm, one group of points per task."""
    import matplotlib.pyplot as plt

    from ldarnet.foundation.figures import save_figure

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) + 2.0), 3.2))
    width = 0.8 / max(len(arms), 1)
    for j, arm in enumerate(arms):
        xs, ys, es = [], [], []
        for i, task in enumerate(tasks):
            for r in rows:
                if r["task"] == task and r["arm"] == arm:
                    xs.append(i + (j - (len(arms) - 1) / 2) * width)
                    ys.append(r["mcc_x100"])
                    es.append(0.0 if math.isnan(r["mcc_ci95_x100"]) else r["mcc_ci95_x100"])
        ax.errorbar(xs, ys, yerr=es, fmt="o", capsize=3, label=arm)
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(tasks) - 0.4)
    ax.set_ylabel("test MCC × 100 (mean ± 95 % CI)")
    ax.set_title("Boundary ablation at matched pretraining FLOPs")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.legend(frameon=False, fontsize=8)
    save_figure(fig, path)
