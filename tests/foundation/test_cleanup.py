"""Temporaries carry their owner and never outlive a killed step for more than one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.foundation import atomic
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import save_model_file

HOLD = """
import sys, time
from pathlib import Path
from ldarnet.foundation.atomic import temp_path
tmp = temp_path(Path(sys.argv[1]))
print(tmp, flush=True)
time.sleep(120)
"""


def _holder(target: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE,
                            text=True)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists() and tmp.parent == target.parent
    return proc, tmp


def test_temporaries_name_their_owner(tmp_path) -> None:
    tmp = atomic.temp_path(tmp_path / "out.tsv")
    assert tmp.name.startswith(f".out.tsv.{atomic.owner_tag()}.") and tmp.suffix == ".tmp"
    atomic.remove([tmp])


def test_sigterm_removes_the_temporaries(tmp_path) -> None:
    proc, _ = _holder(tmp_path / "shard.npy")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # still dies of the signal
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_a_killed_runs_leftovers(tmp_path, capsys) -> None:
    target = tmp_path / "shard.npy"
    proc, left = _holder(target)
    proc.kill()  # SIGKILL: no handler runs, the temporary stays
    proc.wait(timeout=30)
    assert left.exists()
    other, other_left = _holder(tmp_path / "other.npy")  # alive, and another target
    old_style = tmp_path / ".shard.npy.k3j9_x2a.tmp"  # what mkstemp left before owners
    old_style.write_text("x")
    try:
        mine = atomic.temp_path(target)  # the next run of the same step
        assert not left.exists() and not old_style.exists()
        assert other_left.exists()  # a live process's temporary of another output is kept
        assert "removed 2 leftover temporaries" in capsys.readouterr().err
        atomic.remove([mine])
    finally:
        other.kill()
        other.wait(timeout=30)


def test_a_live_owner_keeps_its_temporary(tmp_path) -> None:
    target = tmp_path / "model.safetensors"
    proc, tmp = _holder(target)
    try:
        mine = atomic.temp_path(target)
        assert tmp.exists()
        atomic.remove([mine])
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_scratch_directories_of_dead_owners_are_removed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f".ldarnet-bedtools.ldarnet-{atomic._host()}-{2**22 + 7}.abcd1234.tmp"
    dead.mkdir()
    (dead / "bedtools.tmp.bed").write_text("chr1\t0\t1\n")
    with atomic.scratch_dir("ldarnet-bedtools") as scratch:
        assert scratch.is_dir() and not dead.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_segment_killed_mid_run(sig, tmp_path) -> None:
    """A real step: SIGTERM leaves nothing; SIGKILL leaves one temporary, which the rerun
    removes before it writes."""
    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    model = LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml"))
    save_model_file(model, run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({"model_config": model.config.to_dict()}))
    out = tmp_path / "out"
    out.mkdir()
    args = [sys.executable, "-m", "ldarnet", "segment", "--model", str(run), "--fasta",
            str(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"), "--bedgraph",
            str(out / "p.bedGraph"), "--bed", str(out / "b.bed"), "--device", "cpu",
            "--tile", "512", "--margin", "64"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(out.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None and list(out.iterdir()), "segment did not start writing"
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    left = sorted(p.name for p in out.iterdir())
    if sig == signal.SIGTERM:
        assert left == []
        return
    assert len(left) == 2 and all(f"ldarnet-{atomic._host()}-{proc.pid}." in n for n in left)
    graph = out / "p.bedGraph"
    atomic.temp_path(graph)  # what the rerun does first for each output
    atomic.temp_path(out / "b.bed")
    assert not any(str(proc.pid) in p.name for p in out.iterdir())
