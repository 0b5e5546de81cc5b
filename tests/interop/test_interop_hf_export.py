"""``ldarnet export-hf``: a HuggingFace-style directory that loads back identically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ldarnet.cli import main
from ldarnet.data.tokenizer import encode
from ldarnet.interop.errors import InteropError
from ldarnet.interop.hf_export import export_hf
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained
from ldarnet.model.summary import model_summary
from ldarnet.model.weights import save_model_file

RUN_EXTRAS = {
    "train_config": {"effective_batch": 16, "seq_len": 1024, "steps": 160, "lr": 0.002,
                     "alpha_ratio": 0.03},
    "seed": 1,
    "data": {"source_fasta_md5": "70de4a72a1f72800ef0e55c4d648f9a9", "window": 1024,
             "splits": {"train": {"windows": 1845, "bases": 1889280, "contigs": ["chr2"]}}},
    "summary": {"steps": 160, "tokens": 2621440, "world_size": 1,
                "validation": {"val_mlm": 1.2459, "val_accuracy": 0.4119}},
}


@pytest.fixture
def run_dir(tmp_path: Path, tiny_cfg) -> Path:
    """A directory shaped like the output of ``ldarnet pretrain``."""
    model = LDARNet(tiny_cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    run = tmp_path / "run"
    run.mkdir()
    save_model_file(model, run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({"model_config": tiny_cfg.to_dict(),
                                                 **RUN_EXTRAS}))
    return run


def _ids() -> tuple[torch.Tensor, torch.Tensor]:
    seqs = ["ACGTTGCAAGGCTTATAAAAGGCCCAATCGGGCGGATCGATCG", "GGGCGGTATAAA"]
    ids = torch.full((2, len(seqs[0])), 6, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.from_numpy(encode(seq).astype("int64"))
    return ids, ids != 6


def test_export_loads_back_identically(run_dir, tmp_path, tiny_cfg) -> None:
    table = tmp_path / "nt_summary.tsv"
    table.write_text("results\ttasks\tbest_small\nthis run\t4\t0\n")
    out = tmp_path / "hf" / "ldarnet-tiny"
    out.parent.mkdir()
    config = export_hf(run_dir, out, eval_table=table)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json",
                                                     "model.safetensors"]
    ids, mask = _ids()
    with torch.no_grad():
        want = load_pretrained(run_dir)(ids, mask).logits
        got = load_pretrained(out)(ids, mask).logits
    assert torch.equal(want, got)
    load_pretrained(out / "model.safetensors")  # the weights file path works too

    written = json.loads((out / "config.json").read_text())
    assert written == config
    assert written["model_type"] == "ldarnet" and written["architectures"] == ["LDARNet"]
    n = model_summary(tiny_cfg)["parameters"]
    assert written["num_parameters"] == n
    assert written["train_config"] == RUN_EXTRAS["train_config"]  # provenance carried over

    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\nlibrary_name: ldarnet\ntags:\n- dna\n"
                           "- genomics\n- language-model\n")
    assert f"{n:,}" in card
    assert "| this run | 4 | 0 |" in card  # evaluation table pasted
    assert "2,621,440" in card and "70de4a72a1f72800ef0e55c4d648f9a9" in card  # training data
    assert "load_pretrained" in card and "Learnable Tokenization" in card


def test_export_cli_and_refusals(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "export"
    assert main(["export-hf", str(run_dir / "model.safetensors"), str(out)]) == 0
    assert "parameters" in capsys.readouterr().out
    assert "No evaluation table" in (out / "README.md").read_text()
    assert main(["export-hf", str(run_dir), str(out)]) == 2  # exists, no --force
    assert "not empty" in capsys.readouterr().err
    assert main(["export-hf", str(run_dir), str(out), "--eval-table",
                 str(tmp_path / "absent.tsv"), "--force"]) == 2
    assert "absent.tsv" in capsys.readouterr().err
    assert (out / "README.md").is_file()  # the failed --force run left the old export intact
    assert main(["export-hf", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_markdown_eval_table_is_pasted(run_dir, tmp_path) -> None:
    md = tmp_path / "nt_summary.md"
    md.write_text("# NT summary\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    export_hf(run_dir, tmp_path / "e", eval_table=md)
    card = (tmp_path / "e" / "README.md").read_text()
    assert "### NT summary" in card and "| 1 | 2 |" in card
    bad = tmp_path / "table.xlsx"
    bad.write_text("x")
    with pytest.raises(InteropError, match="unknown format"):
        export_hf(run_dir, tmp_path / "f", eval_table=bad)
