"""Where each task's data comes from: the sources file of the workflow config.

A sources file (config/evaluation/sources-*.yaml) maps a task name to a source mapping
understood by ``ldarnet.tasks.sources.build_task``. A task that is absent, or whose
format is ``remote`` (or the older spelling ``hub``), is the paper's data: it is built
from the files its suite's remote source names (the remote-sources file,
``config/evaluation/remote.yaml``; see :mod:`ldarnet.tasks.remote_sources`, whose
``task_source`` gives any task's source mapping), which
``ldarnet fetch-task`` caches under ``resources/downloads/tasks/<task>/`` (inputs, kept
apart from the regenerable results/). The workflow reads the same files to know each
``prepare_task`` job's input files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ldarnet.foundation.errors import InputError
from ldarnet.foundation.yaml_config import read_yaml

REMOTE_FORMATS = ("remote", "hub")
# Keys of a source mapping that hold input files (the rest are settings).
PATH_KEYS = ("train", "test", "csv", "intervals", "fasta", "exons", "transcripts", "archive",
             "expected_counts")


class SourceConfigError(InputError):
    """A sources file that does not map task names to source mappings."""


def load_sources(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The task → source mapping of a sources file ({} when no file is configured)."""
    if path is None:
        return {}
    data = read_yaml(path, "sources file", SourceConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SourceConfigError(
            f"{path}: must map task names to source mappings (format: ..., train: ...); "
            "see config/README.md"
        )
    for task, source in data.items():
        if "format" not in source:
            raise SourceConfigError(f"{path}: task {task} has no 'format' key")
    return data


def is_remote(task: str, sources: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``task`` is built from its suite's remote (official) files."""
    source = sources.get(task)
    return source is None or source.get("format") in REMOTE_FORMATS


def source_inputs(source: Mapping[str, Any]) -> list[str]:
    """Every input file named by a source mapping (nested class → file maps included)."""
    files: list[str] = []
    for key in PATH_KEYS:
        value = source.get(key)
        if isinstance(value, str):
            files.append(value)
        elif isinstance(value, Mapping):
            files.extend(str(v) for v in value.values())
    return files
