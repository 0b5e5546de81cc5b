"""The downstream-task registry: one row of ``config/tasks.tsv`` per task.

Everything the evaluation stage needs to know about a task *before* touching its data
lives here: which benchmark suite it belongs to, how the paper's table labels it, the
fixed sequence length (so that a wrong download or a mis-built proxy is caught row by
row), the class names in label order and its HuggingFace dataset and name (the
``{dataset}`` and ``{name}`` of the remote-sources templates,
:mod:`ldarnet.tasks.remote_sources`). Keeping this in one reviewed table, instead of
scattered through the workflow, means a task is added or corrected in exactly one place.

File format: tab-separated, one header line with the columns of :data:`COLUMNS`, then one
row per task. ``length`` is an integer number of base pairs or ``var`` when the task's
sequences differ in length; ``classes`` is a ``;``-separated list of class names whose
position is the integer label (NT tasks name their classes ``0;1``: the labels of the
files themselves). Genomic Benchmarks classes are listed alphabetically: the class of a
sequence comes from its directory in the official archive, and its integer is this
position (the GB package itself numbers classes in file-system listing order).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ldarnet.foundation.errors import InputError
from ldarnet.foundation.schema import load_schema, schema_problem

# The columns and what each may hold are declared by the registry's schema (it ships in
# the checkout's workflow/schemas/, beside the workflow config's); Python adds the checks
# that relate fields (suite and group, duplicate tasks, repeated class names).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "tasks.schema.yaml"
_SCHEMA = load_schema(SCHEMA_PATH)
COLUMNS = tuple(_SCHEMA["required"])
SUITES = tuple(_SCHEMA["properties"]["suite"]["enum"])
GROUPS = tuple(_SCHEMA["properties"]["group"]["enum"])
VARIABLE_LENGTH = "var"
DEFAULT_REGISTRY = Path("config/tasks.tsv")


class RegistryError(InputError):
    """A task registry that cannot be used (the message names the file and line)."""


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task as declared in the registry.

    ``length`` is ``None`` for tasks whose sequences differ in length; otherwise every
    sequence of every split must have exactly that many bases.
    """

    name: str
    suite: str
    group: str
    label: str
    length: int | None
    classes: tuple[str, ...]
    hub_dataset: str
    hub_config: str

    @property
    def num_classes(self) -> int:
        """Number of classes: valid labels are ``range(num_classes)``."""
        return len(self.classes)


def _parse_row(row: dict[str, str], where: str) -> TaskSpec:
    values = {key: (row.get(key) or "").strip() for key in COLUMNS}
    found = schema_problem(values, _SCHEMA)
    if found is not None:
        raise RegistryError(f"{where}: column {found[0]}: {found[1]}")
    if (values["suite"] == "gb") != (values["group"] == "genomic_benchmarks"):
        raise RegistryError(f"{where}: group {values['group']!r} does not go with suite "
                            f"{values['suite']!r}; Genomic Benchmarks tasks (suite gb) and "
                            "only they belong to group genomic_benchmarks")
    length = None if values["length"] == VARIABLE_LENGTH else int(values["length"])
    classes = tuple(name.strip() for name in values["classes"].split(";"))
    if len(set(classes)) != len(classes):
        raise RegistryError(f"{where}: classes {values['classes']!r} repeat a name")
    return TaskSpec(values["task"], values["suite"], values["group"], values["label"], length,
                    classes, values["hub_dataset"], values["hub_config"])


def load_registry(path: str | Path = DEFAULT_REGISTRY) -> dict[str, TaskSpec]:
    """``{task name: TaskSpec}`` of a registry file, in file order.

    Blank lines are skipped. Any bad row stops the whole load with one
    :class:`RegistryError` naming the file and line, because a half-read registry would
    silently drop tasks from the evaluation.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"task registry {path} does not exist; it ships as "
                            f"{DEFAULT_REGISTRY} in the repository")
    tasks: dict[str, TaskSpec] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        header = reader.fieldnames or []
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise RegistryError(f"{path}:1: missing column(s) {missing}; the header must be "
                                f"the tab-separated columns {' '.join(COLUMNS)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            if None in row:
                raise RegistryError(f"{where}: more fields than the {len(header)} columns of "
                                    "the header; fields are separated by single tabs")
            spec = _parse_row(row, where)
            if spec.name in tasks:
                raise RegistryError(f"{where}: duplicate task {spec.name!r}; each task has "
                                    "exactly one row")
            tasks[spec.name] = spec
    if not tasks:
        raise RegistryError(f"{path}: no tasks; add one row per task below the header")
    return tasks


def get_task(tasks: dict[str, TaskSpec], name: str) -> TaskSpec:
    """The task called ``name``, or an error listing the known tasks (typos are common)."""
    try:
        return tasks[name]
    except KeyError:
        raise RegistryError(f"unknown task {name!r}; known tasks: {', '.join(tasks)}") from None
