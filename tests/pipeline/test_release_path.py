"""The released checkpoint as a model entry of the DAG: pre-flight → fetch → import.

A tiny checkpoint in the release's exact layout (tests/interop/test_interop_release.py) is served
by the local hub (tests/remote_server.py) from a model repository, as the real
``darlednik/LDARNet-110M/model_ckpt_110m.pt``; a config with a ``checkpoint:`` model entry
makes Snakemake run check_sources, fetch_checkpoint and import_checkpoint (not pretrain),
and the imported directory is what every later stage loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT
from ldarnet.model.pretrained import load_pretrained
from release_checkpoints import dna_batch, release_payload, tiny_release_model
from remote_server import serve
from snakemake_runs import SNAKEMAKE, job_stats, profile_home, snakemake, workflow_copy

REPO = "darlednik/LDARNet-110M"
COMMIT = "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b"


@pytest.fixture
def release(tmp_path, monkeypatch):
    monkeypatch.delenv("LDARNET_OFFLINE", raising=False)
    model = tiny_release_model().eval()
    buffer = io.BytesIO()
    torch.save(release_payload(model), buffer)
    body = buffer.getvalue()
    with serve() as (base, state):
        state.repo(REPO, "model").add_commit(COMMIT, {"model_ckpt_110m.pt": body},
                                             branch="main")
        yield base, state, model, hashlib.sha256(body).hexdigest()


def test_release_checkpoint_stands_in_for_pretraining(release, tmp_path) -> None:
    base, state, original, sha = release
    work = workflow_copy(tmp_path)
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["models"]["ldarnet_release"] = {
        "checkpoint": f"{REPO}/model_ckpt_110m.pt", "revision": COMMIT, "sha256": sha,
        "base_url": base, "reverse_padding": "exact"}
    config["pretrain"]["models"] = ["ldarnet", "ldarnet_release"]
    (work / "config" / "with_release.yaml").write_text(yaml.safe_dump(config))
    target = "results/pretrain/ldarnet_release/seed1/model.safetensors"
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    env.pop("LDARNET_OFFLINE", None)

    proc = subprocess.run([SNAKEMAKE, target, "--cores", "1", "--configfile",
                           "config/with_release.yaml"], cwd=work, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for rule in ("check_sources", "fetch_checkpoint", "import_checkpoint"):
        assert f"rule {rule}:" in log or f"localrule {rule}:" in log, rule
    assert "rule pretrain:" not in log and "tile_genome" not in log

    # the download: at the pinned commit, verified, locked
    download = work / "resources/downloads/checkpoints/ldarnet_release/model_ckpt_110m.pt"
    lock = json.loads(Path(f"{download}.json").read_text())
    assert (lock["repo"], lock["revision"], lock["commit"], lock["sha256"]) == \
        (REPO, COMMIT, COMMIT, sha)
    assert lock["sha256_source"].startswith("config")
    # the pre-flight report names it
    report = (work / "results/preflight/sources.tsv").read_text()
    assert f"checkpoint ldarnet_release\thf://{REPO}@{COMMIT}/model_ckpt_110m.pt\t302" in report
    assert log.index("check_sources:") < log.index("fetch_checkpoint:")  # it runs first

    # the imported model is the released one: same logits, provenance down to the commit
    loaded = load_pretrained(work / target)
    ids, mask = dna_batch()
    with torch.no_grad():
        assert torch.equal(original(ids, mask).logits, loaded(ids, mask).logits)
    doc = json.loads((work / "results/pretrain/ldarnet_release/seed1/config.json").read_text())
    assert doc["source"]["sha256"] == sha and doc["source"]["download"]["commit"] == COMMIT

    # a rerun is a no-op, without any request to the server
    state.requests.clear()
    again = subprocess.run([SNAKEMAKE, target, "--cores", "1", "--configfile",
                            "config/with_release.yaml"], cwd=work, capture_output=True,
                           text=True, timeout=300, env=env)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert state.requests == []


def test_release_config_dry_run_lists_the_release_rules(tmp_path) -> None:
    """config/release.yaml: C1, C2 and C4 from the released weights, no pretraining."""
    # the target first: --configfile takes several values and would swallow it
    proc = snakemake("all", "--profile", "slurm", "-n", "--quiet", "rules", "--configfile",
                     "config/release.yaml", env=profile_home(tmp_path, ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr
    stats = job_stats(proc.stdout)
    assert {"check_sources": 1, "fetch_checkpoint": 1, "import_checkpoint": 1}.items() \
        <= stats.items()
    assert "pretrain" not in stats and "tile_genome" not in stats
    assert "ablation_table" not in stats  # C3 needs pretraining
    # every task: grid, CV, tables; the boundary analyses and the claims
    assert stats["fetch_task"] == 45 and stats["prepare_task"] == 27
    assert stats["finetune_grid"] == 27 * 36 and stats["finetune_cv"] == 27 * 3
    assert stats["eval_table"] == 6 and stats["boundary_table"] == 1
    assert stats["paper_claims"] == 1 and stats["segment_genome"] == 1
