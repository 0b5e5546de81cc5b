"""The ``ldarnet`` command line: model-info and the smoke run."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import MODELS, ROOT
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


def test_smoke_trains_on_real_dna(tmp_path) -> None:
    out = tmp_path / "smoke"
    code = main([
        "smoke", "--config", str(MODELS / "ldarnet-tiny.yaml"),
        "--fasta", str(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"),
        "--out", str(out), "--steps", "12", "--batch-size", "4", "--length", "256",
    ])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 12
    # a dozen steps on real sequence already beat the untrained model
    assert report["validation_after"]["mlm"] < report["validation_before"]["mlm"]
    assert 0 < report["validation_after"]["boundary_density"] <= 1
    rows = (out / "train_log.csv").read_text().strip().splitlines()
    assert len(rows) == 13 and rows[0].startswith("step,loss,mlm,ratio")
