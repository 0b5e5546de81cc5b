"""What the command modules share: the one ``--device`` rule, JSON step results, inputs.

Every command that can run on a GPU takes ``--device`` the same way
(:func:`add_device_option`) and resolves it the same way (:func:`chosen_device`): ``auto``
(the default) is CUDA when present, else the CPU; asking for CUDA where there is none is
a one-line error rather than a crash inside torch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldarnet.foundation.atomic import write_json
from ldarnet.foundation.errors import UserError

DEVICE_HELP = "auto (default: cuda when available, else cpu), cpu, cuda or cuda:N"


def add_device_option(p: argparse.ArgumentParser) -> None:
    """``--device`` of a command that computes with a model."""
    p.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)


def chosen_device(name: str | None) -> str:
    """The torch device of ``--device``: auto resolved, CUDA refused where there is none."""
    import torch

    name = "auto" if name is None else name
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:")):
        raise UserError(f"--device {name}: use {DEVICE_HELP}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return name


def add_offline_option(p: argparse.ArgumentParser, help: str) -> None:
    """``--offline`` of a command that downloads; ``LDARNET_OFFLINE=1`` means the same and is
    read where downloads happen (:func:`ldarnet.data.remote.offline_requested`)."""
    p.add_argument("--offline", action="store_true", help=f"{help} (also LDARNET_OFFLINE=1)")


def read_result(path: str | Path) -> dict:
    """A JSON result of an earlier step; a missing or damaged one is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; run the step that writes it first")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path} is not readable JSON ({err}); rerun the step that writes it"
        ) from None


def write_result(path: str | Path, data: dict) -> None:
    """Write a step's JSON result atomically, creating its directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def log(message: str) -> None:
    """One progress line, flushed at once so a job's log shows where it is."""
    print(message, flush=True)


def add_segmentation_inputs(p: argparse.ArgumentParser) -> None:
    """The inputs every analysis of a segmentation reads."""
    p.add_argument("--bedgraph", required=True, help="boundary probabilities (ldarnet segment)")
    p.add_argument("--bed", required=True, help="hard boundaries (ldarnet segment)")
    p.add_argument("--fasta", required=True, help="the segmented genome (.fa with .fai)")
    p.add_argument("--exons", required=True, help="exon table (.csv as shipped, or GENCODE .gtf)")
