"""The ``ldarnet`` command: one sub-command per workflow step, one module per stage.

Each sub-command is a thin shell around a library function, so every step of the
Snakemake workflow can be run, debugged and tested on its own. The modules follow the
workflow's stages (``genome``, ``pretrain``, ``ablation``, ``evaluate``, ``boundaries``,
``report``, ``interop``) and import their libraries inside each command, so that
``ldarnet --help`` and the light commands stay fast. Errors a user can fix (bad config,
missing file) are reported as one line on stderr with exit status 2, never as a
traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from ldarnet import __version__
from ldarnet.cli.ablation import add_commands as add_ablation_commands
from ldarnet.cli.boundaries import add_commands as add_boundary_commands
from ldarnet.cli.evaluate import add_commands as add_evaluation_commands
from ldarnet.cli.genome import add_commands as add_genome_commands
from ldarnet.cli.interop import add_commands as add_interop_commands
from ldarnet.cli.pretrain import add_commands as add_pretrain_commands
from ldarnet.cli.report import add_commands as add_report_commands
from ldarnet.foundation.errors import LdarnetError

# The stages in workflow order: `ldarnet --help` lists their commands in this order.
STAGE_COMMANDS = (add_genome_commands, add_pretrain_commands, add_ablation_commands,
                  add_evaluation_commands, add_boundary_commands, add_report_commands,
                  add_interop_commands)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ldarnet",
        description="LDARNet: hierarchical DNA language model with learned, dynamic tokenization.",
    )
    parser.add_argument(
        "--kernels", choices=("auto", "torch", "cuda"), default=None,
        help="compute kernels: auto (CUDA fast paths when available, the default), torch "
             "(the pure-PyTorch reference), cuda (fast paths or an error); overrides the "
             "LDARNET_KERNELS environment variable (docs/cuda.md)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in STAGE_COMMANDS:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ldarnet`` console script."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if args.kernels is not None:
        from ldarnet.model import kernels

        try:
            kernels.configure(args.kernels)
        except (ValueError, RuntimeError) as err:  # e.g. --kernels cuda on a CPU machine
            print(f"ldarnet: error: {err}", file=sys.stderr)
            return 2
    try:
        return func(args)
    except LdarnetError as err:
        print(f"ldarnet {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception:  # not an input problem: a bug, shown in full so it can be fixed
        traceback.print_exc()
        print(f"\nldarnet {args.command}: internal error (ldarnet {__version__}): the above is "
              "a bug in ldarnet, not a problem with your input. Please report it with the "
              "command line and this traceback.", file=sys.stderr)
        return 1


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a log line per error, whatever the message holds)."""
    return re.sub(r"\s*\n\s*", " ", str(err)).strip()


if __name__ == "__main__":
    sys.exit(main())
