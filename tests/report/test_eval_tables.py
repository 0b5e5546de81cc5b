"""Results tables: baselines as transcribed, the win rule, data kinds, GB accuracy columns."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from conftest import ROOT
from ldarnet.report import eval_tables as et
from ldarnet.tasks.registry import load_registry
from ldarnet.tasks.remote_sources import task_source
from ldarnet.tasks.source_config import SourceConfigError, load_sources, source_inputs

REGISTRY = load_registry(ROOT / "config" / "tasks.tsv")
NT = et.load_nt_baselines(ROOT / "config" / "baselines" / "nt.tsv")
GB = et.load_gb_baselines(ROOT / "config" / "baselines" / "gb.tsv")


def _summary(task: str, mcc: float, ci: float, kind: str = "official", acc: float = 0.9,
             n: int = 10) -> dict:
    stats = {"n": n, "mean": mcc, "std": 0.01, "ci95": ci, "min": mcc, "max": mcc}
    return {"task": task, "model": "ldarnet", "kind": kind, "note": f"{task} note",
            "seeds": [1], "selected": {"lr": 1e-4, "batch_size": 64, "val_mcc": 0.8},
            "test": {"mcc": stats, "accuracy": {**stats, "mean": acc, "ci95": 0.005},
                     "f1": {**stats, "mean": acc}, "auroc": {**stats, "mean": 0.95}}}


def test_nt_baselines_are_the_release_table() -> None:
    assert len(NT) == 18
    assert NT["H3"]["release_mcc_x100"] == "81.7" and NT["H3"]["release_ci95_x100"] == "0.8"
    assert NT["splice_sites_donors"]["best_overall_model"] == "Generator"
    folds = [float(v) for v in NT["H3"]["release_fold_mcc"].split(",")]
    assert len(folds) == 10 and round(sum(folds) / 10, 4) == 0.8171
    assert set(NT) == {name for name, spec in REGISTRY.items() if spec.suite == "nt"}


def test_win_rule_reproduces_the_release_counts() -> None:
    """The stated rule gives the release its README's 15/18 (< 300M) and 9/18 (overall)."""
    assert et.release_wins(NT) == {"tasks": 18, "best_small": 15, "best_overall": 9}


def test_nt_rows_count_wins_only_on_official_data() -> None:
    summaries = [
        _summary("H3", 0.8171, 0.0078),              # 81.7 >= 79.4 and >= 80.6
        _summary("promoter_all", 0.9441, 0.001),     # 94.4 < 94.5
        _summary("promoter_no_tata", 0.94404, 0.003),  # 94.4 == 94.4: a tie counts
        _summary("promoter_tata", 0.99, 0.01, kind="proxy"),  # proxy never counts
    ]
    rows = et.nt_rows(summaries, REGISTRY, NT)
    by_task = {r["task"]: r for r in rows}
    assert by_task["H3"]["best_small"] == "yes" and by_task["H3"]["best_overall"] == "yes"
    assert by_task["promoter_all"]["best_small"] == "no"
    assert by_task["promoter_no_tata"]["best_small"] == "yes"
    assert by_task["promoter_tata"]["best_small"] == "n/a"
    assert by_task["H3"]["mcc_x100"] == pytest.approx(81.71)
    assert by_task["H3"]["release_mcc_x100"] == 81.7
    assert et.count_wins(rows) == {"tasks": 4, "official_tasks": 3, "best_small": 2,
                                   "best_overall": 1}


def test_gb_rows_use_published_accuracy_in_percent() -> None:
    rows = et.gb_rows([_summary("human_nontata_promoters", 0.7, 0.02, acc=0.85)], REGISTRY, GB)
    row = rows[0]
    assert row["accuracy_x100"] == pytest.approx(85.0)
    assert row["gb_cnn_accuracy"] == pytest.approx(84.6)  # GB authors' PyTorch CNN
    # the best fine-tuned accuracy published for the task, fractions converted to percent
    published = [float(r["value"]) * (100 if "fraction" in r["metric"] else 1) for r in GB
                 if r["task"] == "human_nontata_promoters" and r["metric"].startswith("accuracy")
                 and r["value"] != "NA"]
    assert row["best_published_accuracy"] == pytest.approx(max(published))
    assert 84.6 < row["best_published_accuracy"] <= 100


def test_drosophila_has_only_the_cnn_numbers() -> None:
    row = et.gb_rows([_summary("drosophila_enhancers_stark", 0.1, 0.02)], REGISTRY, GB)[0]
    assert row["gb_cnn_accuracy"] == pytest.approx(58.6)
    assert "CNN" in row["best_published_model"]


def test_write_table_tsv_and_markdown(tmp_path: Path) -> None:
    rows = et.nt_rows([_summary("H3", 0.5, 0.02, kind="proxy")], REGISTRY, NT)
    out = tmp_path / "histone.tsv"
    et.write_table(out, rows, "Histone", et.data_notes(rows, {"H3": "GUE copy"}),
                   et.MD_NT_COLUMNS)
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    assert table[0]["task"] == "H3" and float(table[0]["mcc_x100"]) == pytest.approx(50.0)
    md = out.with_suffix(".md").read_text()
    assert "| H3 | proxy | ldarnet | 10 | 0.0001 / 64 | 50.0 ± 2.0 | 81.7 ± 0.8 |" in md
    assert "H3: proxy data — GUE copy" in md


def test_nan_interval_renders_as_mean_only() -> None:
    assert et._pm(50.0, math.nan) == "50.0"
    assert et._pm(math.nan, math.nan) == "n/a"


# --------------------------------------------------------------------- source config
def test_demo_sources_cover_the_demo_tasks() -> None:
    import yaml

    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    sources = load_sources(ROOT / demo["evaluation"]["sources"])
    assert set(demo["tasks"]) <= set(sources)
    for task, source in sources.items():
        assert task in REGISTRY
        for path in source_inputs(source):
            assert (ROOT / path).is_file(), f"{task}: {path}"


def test_task_without_source_comes_from_its_remote_files() -> None:
    from ldarnet.tasks.remote_sources import load_remote_sources, task_cache

    remote = load_remote_sources(ROOT / "config" / "evaluation" / "remote.yaml")
    source = task_source(REGISTRY["H4"], {}, remote)
    assert source["format"] == "parquet" and source["kind"] == "official"
    assert source["task_name"] == "H4" and source["task_column"] == "task"
    assert source_inputs(source) == [task_cache("H4", "train.parquet"),
                                     task_cache("H4", "test.parquet")]
    gb = task_source(REGISTRY["human_ocr_ensembl"], {"human_ocr_ensembl": {"format": "remote",
                                                                           "note": "n"}}, remote)
    assert gb["format"] == "gb_archive" and gb["note"] == "n"
    assert source_inputs(gb) == [task_cache("human_ocr_ensembl", "archive.zip"),
                                 "config/evaluation/gb_counts.tsv"]
    nested = {"format": "fasta_classes", "train": {"0": "a.fa", "1": "b.fa"}, "test": "x"}
    assert source_inputs(nested) == ["a.fa", "b.fa", "x"]


def test_sources_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("H3: [1, 2]\n")
    with pytest.raises(SourceConfigError, match="must map task names"):
        load_sources(bad)
    bad.write_text("H3: {train: a.csv}\n")
    with pytest.raises(SourceConfigError, match="H3 has no 'format'"):
        load_sources(bad)
