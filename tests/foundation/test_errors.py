"""One error family: every domain error is an LdarnetError, and only those are one-line errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import ldarnet
from ldarnet import cli
from ldarnet.cli import main
from ldarnet.cli import pretrain as pretrain_commands
from ldarnet.foundation.errors import InputError, LdarnetError

# control flow, not an error: pretraining exits 75 after saving its state on SIGTERM
NOT_ERRORS = {"ldarnet.train.pretrain.Preempted"}
# modules not to import here: the optional CUDA packages; the console entry (runs main)
OPTIONAL = {"ldarnet.model.kernels_cuda", "ldarnet.__main__"}


def _exception_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(ldarnet.__path__, "ldarnet."):
        if info.name in OPTIONAL:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__ and not name.startswith("_")):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_error_class_derives_from_the_base() -> None:
    classes = _exception_classes()
    assert len(classes) >= 30  # 33 public error classes when the family was introduced
    outside = sorted(name for name, cls in classes.items()
                     if name not in NOT_ERRORS and not issubclass(cls, LdarnetError))
    assert outside == []


def test_the_cli_has_no_hand_kept_list_of_exceptions() -> None:
    assert not hasattr(cli, "user_errors")


def test_a_domain_error_is_one_line_exit_2(monkeypatch, capsys) -> None:
    def fail(args) -> int:
        raise InputError("config.yaml: key x:\n   expected an integer,\n got 'y'")

    monkeypatch.setattr(pretrain_commands, "_cmd_model_info", fail)
    assert main(["model-info", "--config", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == ("ldarnet model-info: error: config.yaml: key x: expected an integer, "
                   "got 'y'\n")


@pytest.mark.parametrize("exc", [KeyError("steps"), ValueError("bad"), TypeError("x")])
def test_anything_else_is_a_bug_with_a_traceback(exc, monkeypatch, capsys) -> None:
    """A built-in exception is never dressed up as a user error: traceback + report request."""
    def fail(args) -> int:
        raise exc

    monkeypatch.setattr(pretrain_commands, "_cmd_model_info", fail)
    assert main(["model-info", "--config", "x.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and type(exc).__name__ in err
    assert "a bug in ldarnet, not a problem with your input. Please report it" in err
