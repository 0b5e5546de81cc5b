"""The compute accounting of the ablation: what each arm actually spent in pretraining.

Written to results/ablation/flops.tsv so that a reader can check the match without
trusting the budget: every arm's steps, its cumulative training FLOPs as logged batch by
batch (from the padded compressed length of each batch), the ratio to the learned arm,
and the compression it trained at (tokens per chunk on the validation split).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ldarnet.ablation.budget import BudgetError, read_train_log


def _last_row(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: float(v) for k, v in rows[-1].items()} if rows else {}


def run_accounting(run_dir: str | Path) -> dict[str, Any]:
    """Steps, FLOPs and compression of one finished pretraining run."""
    run_dir = Path(run_dir)
    rows = read_train_log(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    model = config.get("model_config", {})
    val = _last_row(run_dir / "val_log.csv")
    densities = [r["density"] for r in rows if "density" in r]
    return {
        "boundaries": model.get("routing", {}).get("boundaries", "learned"),
        "steps": int(rows[-1]["step"]),
        "training_flops": rows[-1]["flops"],
        "train_density_mean": sum(densities) / len(densities) if densities else float("nan"),
        "val_compression": val.get("val_compression", float("nan")),
        "val_mlm": val.get("val_mlm", float("nan")),
    }


def flops_table(runs: Mapping[str, str | Path], reference: str) -> list[dict[str, Any]]:
    """One row per arm (name → run directory), FLOPs relative to ``reference``."""
    if reference not in runs:
        raise BudgetError(f"reference arm {reference!r} is not among the runs {list(runs)}")
    accounts = {name: run_accounting(path) for name, path in runs.items()}
    ref_flops = accounts[reference]["training_flops"]
    return [{"arm": name, "run": str(runs[name]), **acc,
             "flops_vs_reference": acc["training_flops"] / ref_flops}
            for name, acc in accounts.items()]
