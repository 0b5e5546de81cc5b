"""Inputs declared by JSON schemas, and one short message when an input breaks its schema.

A schema says what each field of an input may hold (type, allowed values, pattern) and,
in its ``description``, what the field means; the readers validate against it and keep
in Python only the checks that relate fields to each other. jsonschema's own messages
quote whole sub-schemas; :func:`schema_problem` turns the most relevant error into one
line: the key, what is wrong with the value, and the field's description.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from ldarnet.foundation.errors import InputError


class SchemaFileError(InputError):
    """A schema file of the project that is missing or not a schema (an installation fault)."""


@cache
def load_schema(path: str | Path) -> dict[str, Any]:
    """The schema in ``path`` (YAML or JSON), read once per process."""
    import yaml

    path = Path(path)
    try:
        schema = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SchemaFileError(f"schema {path} cannot be read ({err}); it ships with ldarnet: "
                              "restore it from the repository") from None
    if not isinstance(schema, dict):
        raise SchemaFileError(f"schema {path} is not a mapping; restore it from the repository")
    return schema


def schema_problem(data: Any, schema: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, problem)`` of the most relevant violation of ``schema`` by ``data``, or None.

    ``key`` is the dotted path of the offending field (``(top level)`` for the whole
    document); ``problem`` says what is wrong and, where the schema describes the field,
    what it should hold.
    """
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(data))
    if error is None:
        return None
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "enum":
        options = list(error.validator_value)
        shown = ", ".join(map(str, options[:8])) + (f", ... ({len(options)} in all)"
                                                     if len(options) > 8 else "")
        problem = f"{error.instance!r} is not allowed; choose one of {shown}"
    elif error.validator in ("pattern", "minLength"):
        problem = f"{error.instance!r} is not valid" if error.instance else "empty value"
    else:
        problem = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description:
        problem += f" ({' '.join(str(description).split())})"
    return key, problem
