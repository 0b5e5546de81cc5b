"""The ``ldarnet`` command: one sub-command per workflow step.

Each sub-command is a thin shell around a library function, so every step of the
Snakemake workflow can be run, debugged and tested on its own. Errors a user can fix
(bad config, missing file) are reported as one line on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from ldarnet.model.config import ConfigError, load_model_config


class UserError(Exception):
    """An error caused by the command's input; printed without a traceback."""


def _cmd_model_info(args: argparse.Namespace) -> int:
    from ldarnet.model.summary import model_summary

    summary = model_summary(load_model_config(args.config))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_smoke(args: argparse.Namespace) -> int:
    from ldarnet.smoke import run_smoke

    run_smoke(
        config=args.config, fasta=args.fasta, out=args.out, steps=args.steps,
        batch_size=args.batch_size, length=args.length, seed=args.seed,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ldarnet",
        description="LDARNet: hierarchical DNA language model with learned, dynamic tokenization.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("model-info", help="parameter counts and layout of a model config (JSON)")
    p.add_argument("--config", required=True, help="model config YAML (config/models/*.yaml)")
    p.set_defaults(func=_cmd_model_info)

    p = sub.add_parser(
        "smoke",
        help="train a model for a few MLM steps on real DNA windows (CPU check of the model)",
    )
    p.add_argument("--config", required=True, help="model config YAML")
    p.add_argument("--fasta", required=True, help="FASTA (.fa or bgzip .fa.gz) to sample")
    p.add_argument("--out", required=True, help="output directory (report.json, curves.png)")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps (default 40)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step (default 8)")
    p.add_argument("--length", type=int, default=1024, help="window length in bp (default 1024)")
    p.add_argument("--seed", type=int, default=1337, help="random seed (default 1337)")
    p.set_defaults(func=_cmd_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ldarnet`` console script."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, UserError, FileNotFoundError) as err:
        print(f"ldarnet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
