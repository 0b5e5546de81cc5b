"""Compute matching of the ablation arms, the FLOPs accounting and the paired table."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml

from conftest import MODELS, ROOT
from ldarnet.ablation.accounting import flops_table
from ldarnet.ablation.budget import BudgetError, arm_budget, compressed_length
from ldarnet.cli import main
from ldarnet.data.genome import prepare_genome
from ldarnet.data.splits import bed_split
from ldarnet.data.tiling import tile_genome
from ldarnet.model.config import load_model_config
from ldarnet.model.flops import training_step_flops
from ldarnet.report.ablation_table import ablation_rows, paired_difference

SEQ_LEN, BATCH = 128, 8


def _train_config(tmp_path: Path, steps: int = 6) -> Path:
    cfg = {"effective_batch": BATCH, "micro_batch": 4, "seq_len": SEQ_LEN, "steps": steps,
           "lr": 1.0e-3, "val_interval": steps, "val_windows": 8, "log_interval": 1,
           "checkpoint_interval": steps, "precision": "fp32"}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fake_reference(tmp_path: Path, steps: int, flops: float) -> Path:
    run = tmp_path / "reference"
    run.mkdir()
    (run / "train_log.csv").write_text(
        "step,lr,loss,mlm,ratio,density,tokens_per_s,flops\n"
        f"{steps},1e-4,1.2,1.1,1.0,0.25,1000,{flops:.6e}\n")
    return run


def test_fixed_grid_budget_is_exact(tmp_path: Path) -> None:
    fixed = load_model_config(MODELS / "ldarnet-tiny-fixed.yaml")
    per_step = training_step_flops(fixed, SEQ_LEN, BATCH, [math.ceil(SEQ_LEN / 4)])
    reference = _fake_reference(tmp_path, steps=9, flops=7 * per_step)
    budget = arm_budget(reference, MODELS / "ldarnet-tiny-fixed.yaml", _train_config(tmp_path))
    assert budget["steps"] == 7 and budget["arm_compressed_length"] == SEQ_LEN / 4
    assert budget["expected_ratio"] == pytest.approx(1.0)
    same = arm_budget(reference, MODELS / "ldarnet-tiny-fixed.yaml", _train_config(tmp_path),
                      match="steps")
    assert same["steps"] == 9


def test_random_arm_compressed_length_is_the_batch_maximum() -> None:
    rnd = load_model_config(MODELS / "ldarnet-tiny-random.yaml")
    m = compressed_length(rnd, 1024, 32, draws=32)
    # 1 + Binomial(1023, 1/4): mean 256.75, sd 13.9; the max of 32 rows is ~2 sd above
    assert 262 < m < 300
    assert compressed_length(rnd, 1024, 32, draws=32) == m  # seeded


def test_reference_must_have_a_flops_log(tmp_path: Path) -> None:
    with pytest.raises(BudgetError, match="must finish pretraining"):
        arm_budget(tmp_path, MODELS / "ldarnet-tiny-fixed.yaml", _train_config(tmp_path))
    with pytest.raises(BudgetError, match="it is the reference"):
        arm_budget(_fake_reference(tmp_path, 3, 1e9), MODELS / "ldarnet-tiny.yaml",
                   _train_config(tmp_path))


def test_flops_of_two_arms_match_after_a_short_pretraining(tmp_path: Path) -> None:
    """Learned arm 6 steps; the fixed arm's budget from its log; totals within half a step."""
    fasta = tmp_path / "genome.fa"
    prepare_genome(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz", fasta)
    shards = tmp_path / "windows"
    tile_genome(fasta, bed_split(ROOT / "resources/demo/hg38/splits.bed", {"chr2": 2_333_275}),
                SEQ_LEN, shards)
    config = _train_config(tmp_path)
    runs = {}
    for name, yaml_name in (("ldarnet", "ldarnet-tiny.yaml"),
                            ("ldarnet_fixed", "ldarnet-tiny-fixed.yaml")):
        out = tmp_path / name
        extra = []
        if name != "ldarnet":
            budget = tmp_path / "budget.json"
            assert main(["ablation-budget", "--reference", str(runs["ldarnet"]),
                         "--arm-config", str(MODELS / yaml_name), "--config", str(config),
                         "--out", str(budget)]) == 0
            extra = ["--budget", str(budget)]
        assert main(["pretrain", "--model", str(MODELS / yaml_name), "--config", str(config),
                     "--shards", str(shards), "--out", str(out), "--seed", "3",
                     "--device", "cpu", *extra]) == 0
        runs[name] = out
    rows = {r["arm"]: r for r in flops_table(runs, "ldarnet")}
    fixed = load_model_config(MODELS / "ldarnet-tiny-fixed.yaml")
    per_step = training_step_flops(fixed, SEQ_LEN, BATCH, [SEQ_LEN // 4])
    gap = abs(rows["ldarnet_fixed"]["training_flops"] - rows["ldarnet"]["training_flops"])
    assert gap <= 0.5 * per_step  # the stated tolerance: half of one optimizer step
    assert rows["ldarnet_fixed"]["boundaries"] == "fixed_grid"
    assert rows["ldarnet"]["flops_vs_reference"] == 1.0
    # the fixed arm trains at exactly S = 4 bases per chunk
    assert rows["ldarnet_fixed"]["train_density_mean"] == pytest.approx(0.25)
    tsv = tmp_path / "flops.tsv"
    assert main(["ablation-flops", "--runs", *(f"{k}={v}" for k, v in runs.items()),
                 "--reference", "ldarnet", "--out", str(tsv)]) == 0
    with open(tsv, newline="") as fh:
        assert [r["arm"] for r in csv.DictReader(fh, delimiter="\t")] == list(runs)


def test_paired_difference_by_hand() -> None:
    ref = [{"seed": 1, "fold": k, "mcc": v} for k, v in enumerate([0.5, 0.6, 0.7])]
    arm = [{"seed": 1, "fold": k, "mcc": v} for k, v in enumerate([0.4, 0.6, 0.5])]
    d = paired_difference(ref, arm)  # differences 10, 0, 20 pp: mean 10, sd 10
    assert d["n_pairs"] == 3 and d["diff_pp"] == pytest.approx(10.0)
    assert d["diff_ci95_pp"] == pytest.approx(4.302653 * 10 / math.sqrt(3), rel=1e-6)
    assert d["p_value"] == pytest.approx(0.2254, abs=1e-4)  # t = sqrt(3), 2 df
    # pairs are matched on (seed, fold), not on position
    assert paired_difference(ref, list(reversed(arm)))["diff_pp"] == pytest.approx(10.0)


def test_ablation_rows_put_the_reference_first() -> None:
    def summary(model: str, values: list[float]) -> dict:
        n = len(values)
        mean = sum(values) / n
        return {"task": "H3", "model": model, "kind": "proxy",
                "test": {"mcc": {"n": n, "mean": mean, "ci95": 0.01}},
                "runs": [{"seed": 1, "fold": k, "mcc": v} for k, v in enumerate(values)]}

    flops = [{"arm": "ldarnet", "boundaries": "learned", "training_flops": "1e12",
              "flops_vs_reference": "1.0", "val_compression": "3.9"},
             {"arm": "ldarnet_fixed", "boundaries": "fixed_grid", "training_flops": "1.01e12",
              "flops_vs_reference": "1.01", "val_compression": "4.0"}]
    rows = ablation_rows([summary("ldarnet_fixed", [0.3, 0.4]), summary("ldarnet", [0.5, 0.5])],
                         flops, "ldarnet")
    assert [r["arm"] for r in rows] == ["ldarnet", "ldarnet_fixed"]
    assert rows[1]["diff_pp"] == pytest.approx(15.0) and rows[1]["n_pairs"] == 2
    assert rows[1]["flops_vs_reference"] == 1.01 and rows[0]["compression"] == 3.9
