"""The pretraining stage's commands: model-info (what a model config builds) and pretrain.

``pretrain`` passes the report layer's training plots to the loop as its ``draw``
callback: the loop computes what they show and imports no plotting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ldarnet.cli.options import add_device_option, chosen_device, read_result
from ldarnet.foundation.errors import UserError

if TYPE_CHECKING:  # numpy is imported by the commands that need it, not by --help
    import numpy as np


def _draw_pretraining(out: Path, window: np.ndarray, prob: np.ndarray,
                      boundaries: np.ndarray) -> None:
    """The run's figures: loss/accuracy curves and one validation window's boundaries."""
    from ldarnet.report.training_plots import plot_boundaries, plot_curves

    plot_curves(out / "train_log.csv", out / "val_log.csv", out / "curves.png")
    plot_boundaries(window, prob, boundaries, out / "boundaries.png")


def _cmd_model_info(args: argparse.Namespace) -> int:
    from ldarnet.model.config import load_model_config
    from ldarnet.model.summary import model_summary

    summary = model_summary(load_model_config(args.config))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from ldarnet.train.pretrain import EXIT_PREEMPTED, Preempted, run_pretraining

    steps = None
    if args.budget:
        try:
            steps = int(read_result(args.budget)["steps"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"--budget {args.budget}: not a budget JSON with 'steps' ({err}); "
                            "write it with `ldarnet ablation-budget`") from None
    try:
        summary = run_pretraining(
            model_config=args.model, train_config=args.config, shards=args.shards,
            out=args.out, seed=args.seed, device=chosen_device(args.device), steps=steps,
            stop_before_limit=args.stop_before_limit, draw=_draw_pretraining,
        )
    except Preempted:
        return EXIT_PREEMPTED
    print(json.dumps(summary, indent=2))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The pretrain commands."""
    p = sub.add_parser("model-info", help="parameter counts and layout of a model config (JSON)")
    p.add_argument("--config", required=True, help="model config YAML (config/models/*.yaml)")
    p.set_defaults(func=_cmd_model_info)

    p = sub.add_parser(
        "pretrain",
        help="masked-LM pretraining on token shards (resumes from OUT; torchrun for DDP)",
    )
    p.add_argument("--model", required=True, help="model config YAML (config/models/*.yaml)")
    p.add_argument("--config", required=True, help="pretraining config YAML (config/pretrain/)")
    p.add_argument("--shards", required=True,
                   help="directory with train.npy and valid.npy (the genome stage's windows/)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, plots)")
    p.add_argument("--seed", type=int, default=1337, help="seed of init, data order, masks")
    add_device_option(p)
    p.add_argument("--budget", default=None,
                   help="ablation arm: budget JSON whose 'steps' replace the config's budget")
    p.add_argument("--stop-before-limit", type=int, default=0, metavar="SECONDS",
                   help="inside a SLURM job: save the state and exit 75 this many seconds "
                        "before the job's time limit (default 0: only on SIGTERM/SIGUSR1)")
    p.set_defaults(func=_cmd_pretrain)
