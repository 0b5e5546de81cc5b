"""Weights you can trust: byte-reproducible files, checksums verified on load, finite values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.cli import main
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained
from ldarnet.model.weights import WeightsError, read_metadata, save_model_file, save_tensors, untie

GOOD = ROOT / "tests" / "data" / "valid"
SAVE = """
import sys, torch
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import save_model_file
torch.manual_seed(0)
save_model_file(LDARNet(load_model_config(sys.argv[1])), sys.argv[2])
"""


def _model() -> LDARNet:
    torch.manual_seed(0)
    return LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml")).eval()


def _run_dir(path: Path, model: LDARNet, weights: Path | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if weights is None:
        save_model_file(model, path / "model.safetensors")
    (path / "config.json").write_text(json.dumps({"model_config": model.config.to_dict()}))
    return path


def test_identical_models_give_identical_files(tmp_path) -> None:
    """Same tensors -> same bytes, in one process and across processes (tied map included)."""
    model = _model()
    save_model_file(model, tmp_path / "a.safetensors")
    save_model_file(model, tmp_path / "b.safetensors")
    subprocess.run([sys.executable, "-c", SAVE, str(MODELS / "ldarnet-tiny.yaml"),
                    str(tmp_path / "c.safetensors")], check=True)
    first = (tmp_path / "a.safetensors").read_bytes()
    assert first == (tmp_path / "b.safetensors").read_bytes()
    assert first == (tmp_path / "c.safetensors").read_bytes()
    tied = json.loads(read_metadata(tmp_path / "a.safetensors")["ldarnet.tied"])
    assert tied and list(tied) == sorted(tied)  # the BiMamba fwd/bwd projections, once


def test_other_readers_read_the_file(tmp_path) -> None:
    """The header is standard safetensors: the library's own loader accepts it unchanged."""
    from safetensors.torch import load_model

    model = _model()
    save_model_file(model, tmp_path / "m.safetensors")
    other = LDARNet(model.config)
    missing, unexpected = load_model(other, str(tmp_path / "m.safetensors"), strict=False)
    assert not missing and not unexpected
    for key, tensor in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], tensor)


def test_a_damaged_file_names_the_tensor(tmp_path) -> None:
    model = _model()
    run = _run_dir(tmp_path / "run", model)
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x10  # one flipped bit in the last tensor's bytes
    weights.write_bytes(bytes(data))
    last = sorted(untie(model.state_dict())[0])[-1]
    with pytest.raises(WeightsError, match=rf"tensor '{last}' does not match its recorded sha256"):
        load_pretrained(run)
    weights.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(WeightsError, match="truncated, corrupt"):
        load_pretrained(run)


def _nan_run(tmp_path: Path) -> Path:
    model = _model()
    run = _run_dir(tmp_path / "nan", model, weights=tmp_path / "nan" / "model.safetensors")
    state, tied = untie(model.state_dict())
    name = "hierarchy.encoder.layers.0.norm1.weight"
    state[name] = torch.full_like(state[name], float("nan"))
    save_tensors(state, run / "model.safetensors", tied=tied, finite=False)
    return run


def test_non_finite_weights_are_refused_when_written_and_read(tmp_path) -> None:
    model = _model()
    with torch.no_grad():
        model.hierarchy.encoder.layers[0].norm1.weight[3] = float("inf")
    with pytest.raises(WeightsError, match=r"refusing to write .*/m.safetensors: tensor "
                                           r"'hierarchy.encoder.layers.0.norm1.weight' holds 1 "):
        save_model_file(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []
    run = _nan_run(tmp_path)
    with pytest.raises(WeightsError, match=r"'hierarchy.encoder.layers.0.norm1.weight' holds "
                                           r"\d+ non-finite value\(s\) \(NaN\)"):
        load_pretrained(run)


def test_embed_and_finetune_refuse_nan_weights(tmp_path, capsys) -> None:
    """Before: embed wrote all-NaN embeddings (exit 0), finetune-grid died in scikit-learn."""
    run = _nan_run(tmp_path)
    assert main(["embed", str(run), str(GOOD / "genome.fa"), str(tmp_path / "e.npy"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "'hierarchy.encoder.layers.0.norm1.weight' holds" in err and "Traceback" not in err
    assert not (tmp_path / "e.npy").exists()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"toy:\n  format: csv\n  train: {GOOD / 'toy_train.csv'}\n"
                       f"  test: {GOOD / 'toy_train.csv'}\n")
    task = tmp_path / "toy"
    assert main(["prepare-task", "toy", "--registry", str(GOOD / "tasks.tsv"), "--sources",
                 str(sources), "--out", str(task)]) == 0
    capsys.readouterr()
    out = tmp_path / "grid.json"
    assert main(["finetune-grid", "toy", "--registry", str(GOOD / "tasks.tsv"), "--task-dir",
                 str(task), "--model", str(run), "--n-splits", "2", "--max-epochs", "1",
                 "--lr", "1e-3", "--batch-size", "2", "--device", "cpu", "--no-progress",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "Traceback" not in err and not out.exists()


def test_files_without_checksums_load_with_a_note(tmp_path, capsys) -> None:
    """Weights written by another tool (or an older ldarnet) still load, and say so."""
    from safetensors.torch import save_model

    model = _model()
    run = _run_dir(tmp_path / "old", model, weights=tmp_path / "old" / "model.safetensors")
    save_model(model, str(run / "model.safetensors"))
    loaded = load_pretrained(run)
    assert torch.equal(loaded.state_dict()["embeddings.weight"],
                       model.state_dict()["embeddings.weight"])
    assert "no tensor checksums recorded" in capsys.readouterr().err


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_refusal_says_what_it_refused(tmp_path, capsys) -> None:
    """torch 2.13 words a blocked module without 'WeightsUnpickler error:'; name it anyway."""
    torch.save({"model": {"a": torch.zeros(2)}, "args": _System()}, tmp_path / "evil.pt")
    assert main(["import-checkpoint", str(tmp_path / "evil.pt"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"the pickle needs {os.system.__module__}.system" in err
    assert "()" not in err and "Traceback" not in err and not (tmp_path / "out").exists()
