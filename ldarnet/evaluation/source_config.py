"""Where each task's data comes from: the sources file of the workflow config.

A sources file (config/evaluation/sources-*.yaml) maps a task name to a source mapping
understood by ``ldarnet.evaluation.sources.build_task``. A task that is absent, or whose
format is ``hub``, is downloaded from HuggingFace (the paper's data): its source becomes
the two parquet files that ``ldarnet fetch-task`` caches under
``resources/downloads/tasks/<task>/`` (inputs, kept apart from the regenerable results/).
The workflow reads the same file to know each ``prepare_task`` job's input files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ldarnet.errors import InputError
from ldarnet.yaml_config import read_yaml

HUB = "hub"
TASK_SPLITS = ("train", "test")
# Keys of a source mapping that hold input files (the rest are settings).
PATH_KEYS = ("train", "test", "csv", "intervals", "fasta", "exons", "transcripts")


class SourceConfigError(InputError):
    """A sources file that does not map task names to source mappings."""


DOWNLOADS = "resources/downloads"


def hub_cache(task: str, split: str, downloads: str = DOWNLOADS) -> str:
    """The cached HuggingFace parquet of one task split (a workflow target)."""
    return f"{downloads}/tasks/{task}/{split}.parquet"


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


def task_source(task: str, sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The source mapping of ``task``; the HuggingFace download when none is given."""
    source = dict(sources.get(task) or {"format": HUB})
    if source["format"] == HUB:
        return {"format": "parquet", "kind": source.get("kind", "official"),
                "note": source.get("note", ""), "hub": True,
                **{split: hub_cache(task, split) for split in TASK_SPLITS}}
    return source


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
