"""The ``ldarnet`` command line: model-info and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import MODELS
from ldarnet.cli import main


def test_model_info_110m(capsys) -> None:
    assert main(["model-info", "--config", str(MODELS / "ldarnet-110m.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == 110_687_296
    assert info["parameters_outer"] + info["parameters_backbone"] == info["parameters"]
    assert info["layout"] == ["m3t1", ["M10"], "m4"]


def test_bad_config_is_one_clear_error(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((MODELS / "ldarnet-tiny.yaml").read_text().replace("m2t1", "m2x1"))
    assert main(["model-info", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "m2x1" in err and "Traceback" not in err


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ldarnet", "model-info", "--config",
         str(MODELS / "ldarnet-2m.yaml")],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["parameters"] == 2_011_288


def test_kernels_flag(capsys) -> None:
    """--kernels torch forces the reference; --kernels cuda without a GPU is one clear error."""
    import torch

    from ldarnet.model import kernels

    try:
        assert main(["--kernels", "torch", "model-info", "--config",
                     str(MODELS / "ldarnet-tiny.yaml")]) == 0
        assert kernels.active_backend() == "torch"
        if not torch.cuda.is_available():
            capsys.readouterr()
            assert main(["--kernels", "cuda", "model-info", "--config",
                         str(MODELS / "ldarnet-tiny.yaml")]) == 2
            err = capsys.readouterr().err
            assert "kernel backend 'cuda' cannot run here" in err and "Traceback" not in err
    finally:
        kernels.configure("torch")
