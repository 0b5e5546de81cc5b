"""Load a trained LDARNet from its weights and the config saved beside them.

A run directory of ``ldarnet pretrain`` holds ``model.safetensors`` and a ``config.json``
whose ``model_config`` entry is the model config the weights were trained with. The
architecture is rebuilt from that entry, never from a YAML file the user passes again:
a config edited since training would build a different model, and the weights would
either fail to load or, worse, load into a model that computes something else. Only
safetensors and JSON are read (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ldarnet.foundation.errors import MissingInputError
from ldarnet.model.config import config_from_dict
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import WeightsError, load_module

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def resolve_weights(model_path: str | Path) -> Path:
    """The weights file named by ``model_path``: the file itself, or ``DIR/model.safetensors``."""
    path = Path(model_path)
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise WeightsError(
                f"{path} has no {WEIGHTS_NAME}; pass a finished `ldarnet pretrain` run "
                f"directory or the path of a {WEIGHTS_NAME} file"
            )
        return weights
    if not path.is_file():
        raise MissingInputError(
            f"model {path} does not exist; pass a {WEIGHTS_NAME} file or a run directory "
            "that contains one"
        )
    return path


def read_model_config(weights: Path) -> dict:
    """The ``model_config`` dict of the ``config.json`` beside ``weights``."""
    config_path = weights.parent / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsError(
            f"{weights} has no {CONFIG_NAME} beside it ({config_path}); the weights alone do "
            f"not say which architecture to build: copy the run's {CONFIG_NAME} next to them"
        )
    try:
        data = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{config_path} is not readable JSON ({err}); copy the run's "
                              f"{CONFIG_NAME} again") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_config"), dict):
        raise WeightsError(
            f"{config_path} has no 'model_config' mapping; it must be the {CONFIG_NAME} "
            "written by `ldarnet pretrain` ({\"model_config\": {...}, ...})"
        )
    return data["model_config"]


def load_pretrained(model_path: str | Path, device: str | torch.device = "cpu") -> LDARNet:
    """The model saved at ``model_path`` (weights file or run directory), on ``device``, in eval.

    Errors: a missing path, a missing or malformed ``config.json``, damaged or non-finite
    weights and weights that do not fit the configured architecture are each one
    :class:`~ldarnet.model.weights.WeightsError` (or ``MissingInputError``/``ConfigError``)
    naming the file and the fix.
    """
    weights = resolve_weights(model_path)
    cfg = config_from_dict(read_model_config(weights),
                           source=f"{weights.parent / CONFIG_NAME}: model_config")
    with torch.random.fork_rng(devices=[]):  # the throw-away init must not move the caller's RNG
        model = LDARNet(cfg)
    load_module(model, weights)
    return model.to(torch.device(device)).eval()
