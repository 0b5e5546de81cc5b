"""The FLOPs-matched ablation's commands (workflow/rules/ablation.smk).

ablation-budget (an arm's steps from the learned arm's logged FLOPs) → pretrain --budget
→ ablation-flops (what every arm spent); the table is ``ablation-table`` (report).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ldarnet.cli.options import write_result


def _cmd_ablation_budget(args: argparse.Namespace) -> int:
    from ldarnet.ablation.budget import arm_budget

    budget = arm_budget(args.reference, args.arm_config, args.config, match=args.match)
    write_result(args.out, budget)
    print(f"{args.out}: {budget['arm']} trains {budget['steps']} steps "
          f"({budget['expected_ratio']:.3f} x the reference's FLOPs expected)")
    return 0


def _cmd_ablation_flops(args: argparse.Namespace) -> int:
    from ldarnet.ablation.accounting import flops_table
    from ldarnet.foundation.errors import UserError
    from ldarnet.foundation.tables import write_tsv

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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The ablation commands."""
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
