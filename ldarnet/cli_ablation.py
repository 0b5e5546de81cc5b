"""The ``ldarnet`` sub-commands of the FLOPs-matched ablation (one per workflow rule).

ablation-budget (steps of an arm from the learned arm's logged FLOPs) → pretrain --budget
→ ablation-flops (what every arm actually spent) → ablation-table (paired comparison).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from ldarnet.cli_eval import read_result, write_result


def _cmd_ablation_budget(args: argparse.Namespace) -> int:
    from ldarnet.ablation.budget import arm_budget

    budget = arm_budget(args.reference, args.arm_config, args.config, match=args.match)
    write_result(args.out, budget)
    print(f"{args.out}: {budget['arm']} trains {budget['steps']} steps "
          f"({budget['expected_ratio']:.3f} x the reference's FLOPs expected)")
    return 0


def _cmd_ablation_flops(args: argparse.Namespace) -> int:
    from ldarnet.ablation.accounting import flops_table
    from ldarnet.errors import UserError
    from ldarnet.report.tables import write_tsv

    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep:
            raise UserError(f"--runs {item!r}: write NAME=RUN_DIR")
        runs[name] = path
    rows = flops_table(runs, args.reference)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(args.out, rows)
    for row in rows:
        print(f"{row['arm']}: {row['steps']} steps, {row['training_flops']:.3e} FLOPs "
              f"({row['flops_vs_reference']:.3f} x {args.reference})")
    return 0


def _cmd_ablation_table(args: argparse.Namespace) -> int:
    from ldarnet.report.ablation_table import ablation_rows, plot_ablation, write_ablation

    summaries = [read_result(p) for p in args.summaries]
    with open(args.flops, newline="") as fh:
        flops = list(csv.DictReader(fh, delimiter="\t"))
    rows = ablation_rows(summaries, flops, args.reference)
    notes = [
        "learned − arm: mean of the paired differences over (seed, fold) runs, in MCC "
        "percentage points, with its 95 % t-interval; paired p: two-sided t-test on them.",
        f"Pretraining compute of every arm matched to {args.reference}'s logged FLOPs "
        "(results/ablation/flops.tsv); bases / chunk: validation compression at the end of "
        "pretraining.",
    ]
    if any(r["data"] != "official" for r in rows):
        notes.append("Rows marked proxy / derived / slice were not computed on the official "
                     "benchmark data (docs/evaluation.md).")
    write_ablation(args.out, rows, notes)
    if args.figure:
        plot_ablation(args.figure, rows)
    print(json.dumps({"rows": len(rows), "out": args.out}))
    return 0


def add_ablation_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ablation sub-commands on the ``ldarnet`` parser."""
    p = sub.add_parser("ablation-budget",
                       help="pretraining steps of an ablation arm at the learned arm's FLOPs")
    p.add_argument("--reference", required=True, help="the learned arm's pretraining run dir")
    p.add_argument("--arm-config", required=True, help="model config YAML of the arm")
    p.add_argument("--config", required=True, help="pretraining config YAML")
    p.add_argument("--match", choices=["flops", "steps"], default="flops")
    p.add_argument("--out", required=True, help="budget JSON (read by pretrain --budget)")
    p.set_defaults(func=_cmd_ablation_budget)

    p = sub.add_parser("ablation-flops", help="FLOPs each arm spent in pretraining (TSV)")
    p.add_argument("--runs", nargs="+", required=True, help="NAME=RUN_DIR of every arm")
    p.add_argument("--reference", required=True, help="NAME of the learned arm")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_ablation_flops)

    p = sub.add_parser("ablation-table", help="the ablation table (TSV + Markdown) and figure")
    p.add_argument("--summaries", nargs="+", required=True, help="eval-summary JSON files")
    p.add_argument("--flops", required=True, help="ablation-flops TSV")
    p.add_argument("--reference", required=True, help="NAME of the learned arm")
    p.add_argument("--out", required=True, help="table .tsv (a .md is written beside it)")
    p.add_argument("--figure", default=None, help="figure (.png/.svg/.pdf)")
    p.set_defaults(func=_cmd_ablation_table)
