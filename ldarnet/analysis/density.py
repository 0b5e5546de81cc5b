"""Boundary density per task and class: how finely the model tokenizes each kind of sequence.

Density is the fraction of a sequence's bases that start a token (the mean of the hard
boundary mask, position 0 included, as in the release's Fig. 5); 1/density is the
compression ratio. Per task, the classes are compared with a two-sided Mann–Whitney U
test (two classes) or a Kruskal–Wallis test (more); the release drew box plots without
a test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kruskal, mannwhitneyu

from ldarnet.analysis.segment import segment_tokens
from ldarnet.data.tokenizer import encode
from ldarnet.foundation.csv_table import read_csv_rows, read_header
from ldarnet.foundation.errors import InputError, MissingInputError
from ldarnet.model.pretrained import load_pretrained

REQUIRED = ("dataset", "label_name", "seq")


class DensityError(InputError):
    """A sequence table that cannot be read."""


def read_labelled_sequences(path: str | Path) -> list[tuple[str, str, str]]:
    """(task, class, upper-case sequence) rows of a labelled sequence table.

    Two layouts: a CSV with ``dataset, label_name, seq`` (the shipped Genomic Benchmarks
    slice tables), or a prepared downstream task split (``sequence, label`` as written by
    ``ldarnet prepare-task``), whose task name and class names come from the ``task.json``
    beside it. Both are read with the one table reader.
    """
    from ldarnet.tasks.task_data import iter_sequence_label_rows

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"sequence table {path} does not exist")
    rows = []
    manifest = path.parent / "task.json"
    if {"sequence", "label"} <= set(read_header(path)) and manifest.is_file():
        task, classes = _task_classes(manifest)
        for line, sequence, label in iter_sequence_label_rows(path):
            index = label.strip()
            if not index.isdigit() or int(index) >= len(classes):
                raise DensityError(f"{path}:{line}: label {label!r} is not a class index of "
                                   f"task {task} (0..{len(classes) - 1})")
            if not sequence:
                raise DensityError(f"{path}:{line}: empty sequence")
            rows.append((task, classes[int(index)], sequence.upper()))
    else:
        for row_no, row in read_csv_rows(path, REQUIRED, DensityError,
                                         what="sequence table"):
            if not row["seq"]:
                raise DensityError(f"{path}:{row_no}: empty sequence")
            rows.append((row["dataset"], row["label_name"], row["seq"].upper()))
    if not rows:
        raise DensityError(f"{path}: no sequences")
    return rows


def _task_classes(manifest: Path) -> tuple[str, list[str]]:
    """Task name and class names of a prepared task's ``task.json``."""
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DensityError(f"{manifest}: not valid JSON ({err}); rebuild the task") from None
    if (not isinstance(info, dict) or not isinstance(info.get("task"), str)
            or not isinstance(info.get("classes"), list)):
        raise DensityError(f"{manifest}: needs 'task' (text) and 'classes' (a list); rebuild "
                           "the task")
    return info["task"], [str(c) for c in info["classes"]]


@dataclass(frozen=True)
class BoundaryDensity:
    """Per-(task, class) summary rows, and every sequence's density for the box plots."""

    rows: list[dict]
    values: dict[tuple[str, str], list[float]]
    tasks: list[str]


def boundary_density(model_path: str | Path, tables: list[str | Path],
                     device: str = "cpu") -> BoundaryDensity:
    """Density per sequence, summarised per (task, class) with a test between classes."""
    model = load_pretrained(model_path, device)
    values: dict[tuple[str, str], list[float]] = {}
    with torch.no_grad():
        for table in tables:
            for task, label, seq in read_labelled_sequences(table):
                _, b = segment_tokens(model, encode(seq), tile=max(len(seq), 64), margin=0)
                values.setdefault((task, label), []).append(float(b.mean()))
    rows = []
    tasks = sorted({task for task, _ in values})
    for task in tasks:
        labels = sorted(label for t, label in values if t == task)
        pvalue = float("nan")
        groups = [values[(task, lab)] for lab in labels]
        if len(groups) == 2 and all(len(g) > 1 for g in groups):
            pvalue = float(mannwhitneyu(*groups, alternative="two-sided").pvalue)
        elif len(groups) > 2 and all(len(g) > 1 for g in groups):
            pvalue = float(kruskal(*groups).pvalue)
        for label in labels:
            x = np.array(values[(task, label)])
            q1, median, q3 = np.percentile(x, [25, 50, 75])
            rows.append({"task": task, "class": label, "n": int(x.size),
                         "mean": float(x.mean()), "median": float(median), "q1": float(q1),
                         "q3": float(q3), "compression": float(1 / x.mean()),
                         "classes_differ_p": pvalue})
    return BoundaryDensity(rows, values, tasks)
