"""The downstream results tables: this run next to the release and the published baselines.

Every row says which data it was computed on (``official`` NT/GB data, a ``proxy`` copy of
the benchmark, a task ``derived`` from GENCODE, or a genome ``slice``), because a demo
number on proxy data is not comparable with the paper's. Wins are only counted on
official data; the rule is written into the table's notes so a reader can recount it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ldarnet.foundation.atomic import write_text
from ldarnet.foundation.csv_table import read_csv_rows
from ldarnet.foundation.errors import InputError
from ldarnet.foundation.tables import markdown_table, write_tsv
from ldarnet.tasks.registry import TaskSpec

WIN_RULE = (
    "A task counts as a win when this run's mean MCCx100, rounded to one decimal, is >= "
    "the best published model of the class (ties count, as in the release's README); only "
    "tasks run on the official NT data are counted."
)
NT_GROUP_TITLES = {
    "histone": "Histone marks (NT, 10 tasks)",
    "promoters": "Promoters (NT)",
    "enhancers": "Enhancers (NT)",
    "splice": "Splice sites (NT)",
}
# The results tables, the one list of them: the workflow's targets and wildcard, and the
# choices of `ldarnet eval-table`, come from here.
NT_TABLES = tuple(NT_GROUP_TITLES)
TABLES = (*NT_TABLES, "genomic_benchmarks", "nt_summary")


class TableError(InputError):
    """A baseline file or a summary that cannot be rendered."""


def _read_tsv(path: str | Path, required: Sequence[str]) -> list[dict[str, str]]:
    return [row for _, row in read_csv_rows(path, required, TableError, delimiter="\t")]


def load_nt_baselines(path: str | Path) -> dict[str, dict[str, str]]:
    """config/baselines/nt.tsv by task: the release's numbers and the best published models."""
    rows = _read_tsv(path, ["task", "release_mcc_x100", "release_ci95_x100",
                            "best_small_mcc_x100", "best_small_model",
                            "best_overall_mcc_x100", "best_overall_model"])
    return {row["task"]: row for row in rows}


def load_gb_baselines(path: str | Path) -> list[dict[str, str]]:
    """config/baselines/gb.tsv: published Genomic Benchmarks numbers with their protocols."""
    return _read_tsv(path, ["task", "model", "metric", "value", "source"])


def _x100(stats: Mapping[str, float], key: str) -> float:
    value = stats[key]
    return float("nan") if value is None else 100.0 * float(value)


def _pm(mean: float, ci: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.1f}" if math.isnan(ci) else f"{mean:.1f} ± {ci:.1f}"


def _common(summary: Mapping, spec: TaskSpec) -> dict:
    test = summary["test"]
    sel = summary["selected"]
    return {
        "task": spec.name, "label": spec.label, "data": summary["kind"],
        "model": summary["model"], "runs": test["mcc"]["n"],
        "seeds": len(summary["seeds"]), "lr": sel["lr"], "batch_size": sel["batch_size"],
        "mcc_x100": _x100(test["mcc"], "mean"), "mcc_ci95_x100": _x100(test["mcc"], "ci95"),
        "accuracy_x100": _x100(test["accuracy"], "mean"),
        "accuracy_ci95_x100": _x100(test["accuracy"], "ci95"),
        "f1_x100": _x100(test["f1"], "mean"), "auroc_x100": _x100(test["auroc"], "mean"),
    }


def _win(ours: float, best: str, official: bool) -> str:
    if not official:
        return "n/a"
    return "yes" if round(ours, 1) >= float(best) else "no"


def nt_rows(summaries: Sequence[Mapping], registry: Mapping[str, TaskSpec],
            baselines: Mapping[str, Mapping[str, str]]) -> list[dict]:
    """One row per (task, model) of NT tasks, with the release's and the best published MCC."""
    rows = []
    for summary in summaries:
        spec = registry[summary["task"]]
        row = _common(summary, spec)
        base = baselines.get(spec.name)
        if base is None:
            raise TableError(f"no baseline row for NT task {spec.name} in the NT baselines")
        official = summary["kind"] == "official"
        row.update({
            "release_mcc_x100": float(base["release_mcc_x100"]),
            "release_ci95_x100": float(base["release_ci95_x100"]),
            "release_lr": base.get("release_lr", ""), "release_bs": base.get("release_bs", ""),
            "best_small_mcc_x100": float(base["best_small_mcc_x100"]),
            "best_small_model": base["best_small_model"],
            "best_overall_mcc_x100": float(base["best_overall_mcc_x100"]),
            "best_overall_model": base["best_overall_model"],
            "best_small": _win(row["mcc_x100"], base["best_small_mcc_x100"], official),
            "best_overall": _win(row["mcc_x100"], base["best_overall_mcc_x100"], official),
        })
        rows.append(row)
    return rows


def _published_accuracy(rows: Sequence[Mapping[str, str]], task: str) -> tuple[dict, dict]:
    """(the GB authors' PyTorch CNN, the best fine-tuned accuracy) of ``task``, in percent."""
    cnn: dict = {}
    best: dict = {}
    for row in rows:
        if row["task"] != task or not row["metric"].startswith("accuracy"):
            continue
        try:
            value = float(row["value"])
        except ValueError:
            continue  # 'NA' cells: not published
        percent = value * 100.0 if "fraction" in row["metric"] else value
        entry = {"value": percent, "model": row["model"], "source": row["source"].split()[0]}
        if row["model"] == "CNN (GB PyTorch baseline)":
            cnn = entry
        if not best or percent > best["value"]:
            best = entry
    return cnn, best


def gb_rows(summaries: Sequence[Mapping], registry: Mapping[str, TaskSpec],
            baselines: Sequence[Mapping[str, str]]) -> list[dict]:
    """GB rows: accuracy (what GB papers publish) and MCC, next to the published accuracy."""
    rows = []
    for summary in summaries:
        spec = registry[summary["task"]]
        row = _common(summary, spec)
        cnn, best = _published_accuracy(baselines, spec.name)
        row.update({
            "gb_cnn_accuracy": cnn.get("value", float("nan")),
            "best_published_accuracy": best.get("value", float("nan")),
            "best_published_model": best.get("model", ""),
            "best_published_source": best.get("source", ""),
        })
        rows.append(row)
    return rows


def count_wins(rows: Sequence[Mapping]) -> dict[str, int]:
    """Wins among < 300M models and overall, over rows on official data (WIN_RULE)."""
    official = [r for r in rows if r["data"] == "official"]
    return {"tasks": len(rows), "official_tasks": len(official),
            "best_small": sum(r["best_small"] == "yes" for r in official),
            "best_overall": sum(r["best_overall"] == "yes" for r in official)}


def release_wins(baselines: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """The same rule applied to the release's own numbers (15 and 9 of 18 in its README)."""
    small = sum(float(b["release_mcc_x100"]) >= float(b["best_small_mcc_x100"])
                for b in baselines.values())
    overall = sum(float(b["release_mcc_x100"]) >= float(b["best_overall_mcc_x100"])
                  for b in baselines.values())
    return {"tasks": len(baselines), "best_small": small, "best_overall": overall}


def nt_summary_rows(rows: Sequence[Mapping],
                    baselines: Mapping[str, Mapping[str, str]]) -> list[dict]:
    """The NT summary: win counts of this run and of the release, by the same rule."""
    ours = count_wins(rows)
    release = release_wins(baselines)
    return [
        {"results": "this run", "tasks": ours["tasks"], "official_tasks": ours["official_tasks"],
         "best_small": ours["best_small"], "best_overall": ours["best_overall"]},
        {"results": "release (README numbers)", "tasks": release["tasks"],
         "official_tasks": release["tasks"], "best_small": release["best_small"],
         "best_overall": release["best_overall"]},
    ]


MD_NT_COLUMNS = [
    ("task", "task"), ("data", "data"), ("model", "model"), ("runs", "runs"),
    ("selected", "lr / bs"), ("mcc", "MCC×100"), ("release", "release MCC×100"),
    ("small", "best <300M (other)"), ("overall", "best overall (other)"),
    ("best_small", "best <300M?"), ("best_overall", "best overall?"),
]
MD_GB_COLUMNS = [
    ("task", "task"), ("data", "data"), ("model", "model"), ("runs", "runs"),
    ("selected", "lr / bs"), ("acc", "accuracy %"), ("mcc", "MCC×100"),
    ("cnn", "GB CNN accuracy %"), ("best", "best published accuracy %"),
]


def _md_cells(row: Mapping) -> dict[str, str]:
    cells = {"task": row["task"], "data": row["data"], "model": row["model"],
             "runs": str(row["runs"]), "selected": f"{row['lr']:g} / {row['batch_size']}",
             "mcc": _pm(row["mcc_x100"], row["mcc_ci95_x100"]),
             "acc": _pm(row["accuracy_x100"], row["accuracy_ci95_x100"])}
    if "release_mcc_x100" in row:
        cells.update({
            "release": _pm(row["release_mcc_x100"], row["release_ci95_x100"]),
            "small": f"{row['best_small_mcc_x100']:.1f} ({row['best_small_model']})",
            "overall": f"{row['best_overall_mcc_x100']:.1f} ({row['best_overall_model']})",
            "best_small": row["best_small"], "best_overall": row["best_overall"],
        })
    if "gb_cnn_accuracy" in row:
        best = row["best_published_accuracy"]
        cells.update({
            "cnn": "n/a" if math.isnan(row["gb_cnn_accuracy"]) else
            f"{row['gb_cnn_accuracy']:.1f}",
            "best": "n/a" if math.isnan(best) else
            f"{best:.1f} ({row['best_published_model']}; {row['best_published_source']})",
        })
    return cells


def write_table(path: str | Path, rows: list[dict], title: str, notes: Sequence[str],
                markdown_columns: Sequence[tuple[str, str]] | None = None,
                cells: Callable[[Mapping], dict[str, str]] | None = None) -> None:
    """``path`` (.tsv, every numeric column) and a .md beside it (title, table, notes).

    ``markdown_columns`` are (cell key, heading) pairs of the readable table; ``cells``
    turns a row into those formatted cells (default: the NT/GB formatting).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(path, rows)
    if markdown_columns:
        cells = cells or _md_cells
        md_rows = [{head: cells(r)[key] for key, head in markdown_columns} for r in rows]
        body = markdown_table(md_rows, [head for _, head in markdown_columns])
    else:
        body = markdown_table(rows)
    text = f"# {title}\n\n{body}\n" + "".join(f"- {note}\n" for note in notes)
    write_text(path.with_suffix(".md"), text)


def data_notes(rows: Sequence[Mapping], notes_by_task: Mapping[str, str]) -> list[str]:
    """One note per task whose data is not the official benchmark (what it is instead)."""
    out = []
    for row in rows:
        if row["data"] != "official":
            out.append(f"{row['task']}: {row['data']} data — "
                       f"{notes_by_task.get(row['task'], '') or 'see results/tasks/'}")
    return sorted(set(out))
