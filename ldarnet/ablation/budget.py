"""How many optimizer steps an ablation arm trains so that its compute equals the learned arm's.

The learned model's compression changes during training (few boundaries at first, about
1/N once the ratio loss has done its work), so its compute per step is not constant. The
pretraining loop logs the cumulative FLOPs it actually spent, batch by batch, from the
padded compressed length of each batch (ldarnet/train/pretrain.py). An arm whose
boundaries do not depend on the data costs the same every step, so its step count for a
given budget is known before it starts, and its learning-rate schedule can be laid out
for exactly that many steps:

    steps_arm = round(FLOPs_learned / FLOPs_per_step_arm)

Fixed grid: every window of length L has exactly ceil(L / S) chunks. Random: the padded
compressed length of a micro-batch is the largest of its rows' 1 + Binomial(L - 1, 1/S)
counts, estimated by drawing (seeded) boundaries with the arm's own selector. The
accounting after training (ldarnet.ablation.accounting) compares the FLOPs actually spent.
With ``match: steps`` the arm simply trains the learned arm's number of steps.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch

from ldarnet.foundation.errors import InputError
from ldarnet.model.config import ModelConfig, load_model_config
from ldarnet.model.flops import training_step_flops
from ldarnet.model.network.dynamic_chunking import make_selector
from ldarnet.train.train_config import load_train_config

MATCHES = ("flops", "steps")


class BudgetError(InputError):
    """A reference run or arm that cannot be matched."""


def read_train_log(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a pretraining run's train_log.csv, as numbers."""
    path = Path(run_dir) / "train_log.csv"
    if not path.is_file():
        raise BudgetError(f"{path} does not exist; the reference arm must finish pretraining "
                          "before an ablation arm can be matched to it")
    with open(path, newline="") as fh:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows or "flops" not in rows[-1]:
        raise BudgetError(f"{path} has no rows with a 'flops' column; rerun the reference "
                          "pretraining with this version of ldarnet pretrain")
    return rows


def compressed_length(cfg: ModelConfig, length: int, micro_batch: int, draws: int = 64,
                      seed: int = 0) -> float:
    """Expected padded compressed length of one micro-batch of an arm (stage 0 only)."""
    kind = cfg.routing.boundaries
    if kind == "fixed_grid":
        return float(math.ceil(length / cfg.routing.grid_stride))
    if kind != "random":
        raise BudgetError(f"model {cfg.name!r} has learned boundaries: its compute per step "
                          "depends on training; it is the reference, not an arm")
    selector = make_selector(cfg.routing)
    mask = torch.ones(micro_batch, length, dtype=torch.bool)
    prob = torch.zeros(micro_batch, length)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        counts = [int(selector.select(prob, mask).sum(dim=1).max()) for _ in range(draws)]
    finally:
        torch.random.set_rng_state(generator_state)
    return sum(counts) / len(counts)


def arm_budget(reference_run: str | Path, arm_config: str | Path, train_config: str | Path,
               match: str = "flops") -> dict[str, Any]:
    """The step budget of one arm, with every number it was derived from."""
    if match not in MATCHES:
        raise BudgetError(f"match={match!r}; choose one of {', '.join(MATCHES)}")
    rows = read_train_log(reference_run)
    reference_steps, reference_flops = int(rows[-1]["step"]), rows[-1]["flops"]
    cfg = load_model_config(arm_config)
    train = load_train_config(train_config)
    m = compressed_length(cfg, train.seq_len, train.micro_batch)
    per_step = training_step_flops(cfg, train.seq_len, train.effective_batch, [round(m)])
    flops_steps = max(1, round(reference_flops / per_step))
    steps = flops_steps if match == "flops" else reference_steps
    return {
        "arm": cfg.name, "boundaries": cfg.routing.boundaries, "match": match,
        "reference_run": str(reference_run), "reference_steps": reference_steps,
        "reference_flops": reference_flops, "arm_compressed_length": m,
        "arm_flops_per_step": float(per_step), "steps": steps,
        "expected_flops": float(per_step) * steps,
        "expected_ratio": float(per_step) * steps / reference_flops,
    }
