"""The demo DAG for real, at its smallest complete size, through to the HTML report.

Every rule of the demo runs (genome, pretraining of the learned and fixed-grid arms on a
FLOPs budget, grid + CV on one NT proxy, one derived splice task and one Genomic
Benchmarks slice task, every table, the boundary analyses, the paper-vs-this table and
the report) on the shipped data, with a few optimizer steps and a few dozen rows: the
numbers mean nothing, the test checks that the pipeline produces every declared output
with sane values. Snakemake runs in a scratch directory that links the repository's
config/ and resources/, so the repository's own results/ are never touched.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE_REGION = ("chr2", 200_000, 300_000)  # SH3YL1, ACP1, FAM150B (GENCODE)


def _smoke_config(work: Path) -> Path:
    """config/demo.yaml shrunk to seconds per job (same keys, so it stays in sync)."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    train = yaml.safe_load((ROOT / config["pretrain"]["config"]).read_text())
    train.update(steps=6, effective_batch=4, micro_batch=4, val_interval=3, val_windows=8,
                 log_interval=1, checkpoint_interval=3)
    (work / "pretrain.yaml").write_text(yaml.safe_dump(train))
    (work / "regions.bed").write_text("\t".join(map(str, SMOKE_REGION)) + "\n")
    config["pretrain"]["config"] = str(work / "pretrain.yaml")
    config["tasks"] = ["H3", "splice_sites_donors", "human_ocr_ensembl"]
    config["grid"] = {"learning_rates": [1.0e-3], "batch_sizes": [16]}
    config["folds"] = 2
    config["evaluation"].update(subsample={"train": 48, "test": 32, "seed": 0},
                                max_epochs=1, patience=1)
    config["ablation"].update(arms=["ldarnet_fixed"], tasks=["H3"])
    config["boundaries"].update(regions=str(work / "regions.bed"), permutations=100,
                                density_tasks=["H3"],
                                density_tables=config["boundaries"]["density_tables"][:1])
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "LDARNET_OFFLINE": "1"}
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
                           *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("demo_smoke")
    for name in ("config", "resources"):
        (work / name).symlink_to(ROOT / name)
    config = _smoke_config(work)
    run = _run(work, "--configfile", str(config), "--cores", "2", "all")
    assert run.returncode == 0, run.stderr[-4000:]
    report = _run(work, "--configfile", str(config), "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    summary = _run(work, "--configfile", str(config), "--summary")
    assert summary.returncode == 0, summary.stderr[-2000:]
    (work / "summary.tsv").write_text(summary.stdout)
    return work


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_declared_output_exists_and_is_not_empty(smoke_run: Path) -> None:
    rows = _tsv(smoke_run / "summary.tsv")
    assert len(rows) > 40
    rules = {r["rule"] for r in rows}
    for stage in ("prepare_genome", "tile_genome", "pretrain", "ablation_budget",
                  "ablation_flops", "prepare_task", "finetune_grid", "select_config",
                  "finetune_cv", "eval_summary", "eval_table", "ablation_table",
                  "segment_genome", "splice_alignment", "motif_alignment", "locus_figure",
                  "boundary_density", "boundary_table", "paper_claims"):
        assert stage in rules, f"rule {stage} produced nothing in the demo DAG"
    for row in rows:
        path = smoke_run / row["output_file"]
        assert row["status"] == "ok", row
        assert path.exists() and (path.is_dir() or path.stat().st_size > 0), path


def test_metrics_are_in_range(smoke_run: Path) -> None:
    summaries = sorted((smoke_run / "results" / "eval").glob("*/*/summary.json"))
    assert {p.parent.name for p in summaries} == {"H3", "splice_sites_donors",
                                                  "human_ocr_ensembl"}
    for path in summaries:
        test = json.loads(path.read_text())["test"]
        assert -1.0 <= test["mcc"]["mean"] <= 1.0
        assert 0.0 <= test["accuracy"]["mean"] <= 1.0
        assert len(json.loads(path.read_text())["runs"]) == 2  # 2 folds x 1 seed
    for table in ("histone", "splice", "genomic_benchmarks"):
        for row in _tsv(smoke_run / "results" / "tables" / f"{table}.tsv"):
            assert -100.0 <= float(row["mcc_x100"]) <= 100.0
    flops = {r["arm"]: r for r in _tsv(smoke_run / "results" / "ablation" / "flops.tsv")}
    # the fixed arm's FLOPs budget matches the learned arm's to within one step
    assert abs(float(flops["ldarnet_fixed"]["flops_vs_reference"]) - 1.0) < 0.25


def test_profiles_have_the_declared_width(smoke_run: Path) -> None:
    run = smoke_run / "results" / "boundaries" / "ldarnet" / "seed1"
    profiles = _tsv(run / "splice" / "splice_profiles.tsv")
    offsets = sorted({int(r["offset"]) for r in profiles})
    assert offsets == list(range(offsets[0], -offsets[0] + 1))  # symmetric, every offset
    for row in profiles:
        value = float(row["mean"])
        assert math.isnan(value) or 0.0 <= value <= 1.0
    stats = _tsv(smoke_run / "results" / "tables" / "boundaries.tsv")
    assert stats and all(0.0 <= float(r["q_value"]) <= 1.0 for r in stats
                         if r["q_value"] not in ("", "nan"))


def test_claims_and_report(smoke_run: Path) -> None:
    claims = _tsv(smoke_run / "results" / "tables" / "claims.tsv")
    assert {r["claim"] for r in claims} == {"C1", "C2", "C3", "C4"}
    html = (smoke_run / "results" / "report.html").read_text()
    # the report is self-contained (opens from disk) and holds every reported file
    for name in ("claims.tsv", "histone.tsv", "ablation.png", "flops.tsv", "curves.png",
                 "splice_profiles.png", "boundaries.tsv"):
        assert name in html, name
    assert "proxy" in html  # captions and tables say what the data is


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_a_browser(smoke_run: Path) -> None:
    """The report opens from disk in headless Chromium and draws a non-blank page."""
    shot = smoke_run / "report.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,1000", "--virtual-time-budget=8000", f"--screenshot={shot}",
         (smoke_run / "results" / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    low, high = pixels.getextrema()
    assert high - low > 100  # text and navigation drawn, not a blank page
    assert len(pixels.histogram()) == 256 and sum(1 for n in pixels.histogram() if n) > 20
