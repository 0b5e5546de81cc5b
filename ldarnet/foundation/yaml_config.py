"""Reading YAML config files: one clear error for a missing or malformed file or value.

:func:`read_yaml` names the file (and the line, for a syntax error); :func:`check_fields`
checks every value of a mapping against the type of the dataclass field it fills and
names the file, the field and the expected type (``vocab_size: expected an integer, got
'7' (text)``), before any arithmetic can turn a wrong type into a Python error message.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, what: str, error: type[Exception]) -> Any:
    """The parsed content of ``path``; ``error(...)`` names the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"{what} {path} is not UTF-8 text ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{where}: {what} is not valid YAML ({problem})") from None


def _describe(value: Any) -> str:
    kind = {str: "text", list: "a list", dict: "a mapping", bool: "a boolean",
            type(None): "empty"}.get(type(value))
    return f"{value!r} ({kind})" if kind else repr(value)


def _expected(hint: Any) -> str:
    """A type hint in words, for messages."""
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "text"
    if hint is bool:
        return "true or false"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_expected(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in typing.get_args(hint) else "")
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_expected(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} {_expected(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is list or hint is list:
        return "a list"
    return getattr(hint, "__name__", str(hint))


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(hint))
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in
                                               zip(value, args, strict=True))
    if origin is list or hint is list:
        return isinstance(value, list)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return True


def check_fields(data: dict[str, Any], cls: type, source: str, error: type[Exception],
                 prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Every present key of ``data`` has the type of ``cls``'s field of that name.

    ``source`` (the file) and ``prefix`` (e.g. ``ssm.``) locate the value in the message;
    fields in ``skip`` are checked by the caller (per-stage lists, nested sections).
    Numbers written without a dot in exponent form (``1e-3``) are text to YAML 1.1: the
    message says so.
    """
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if name in skip or name not in hints:
            continue
        hint = hints[name]
        if _matches(value, hint):
            continue
        message = (f"{source}: {prefix}{name}: expected {_expected(hint)}, got "
                   f"{_describe(value)}")
        if isinstance(value, str) and _is_number(value):
            message += ("; YAML 1.1 reads an exponent without a dot as text: write e.g. 1.0e-3"
                        if "e" in value.lower() and "." not in value
                        else "; write the number without quotes")
        raise error(message)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
