"""``ldarnet embed``: per-record mean-pooled embeddings of a FASTA file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ldarnet.cli import main
from ldarnet.data.batch import collate
from ldarnet.data.fasta import FastaError
from ldarnet.interop.embed import embed_fasta, embed_sequences, length_batches, read_dna_records
from ldarnet.interop.errors import InteropError
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained
from ldarnet.model.weights import save_model_file

RECORDS = {
    "chr1:100-160": "ACGTTGCAAGGCTTATAAAAGGCCCAATCGGGCGGATCGATCGTTAGCCAATGGATCCA",
    "short": "TATAAAGGC",
    "mixed_case_iupac": "acgtRYKMacgtNNNNGGGCGGtataaaCACACACACACA",
    "long": "GATTACA" * 31,
    "mid": "CCAATCGATCGGGCGGTTTATAAAGC" * 3,
}


@pytest.fixture
def model_dir(tmp_path: Path, tiny_cfg) -> Path:
    model = LDARNet(tiny_cfg)
    with torch.no_grad():  # move every parameter off its init (zero-init parts included)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path / "model"
    out.mkdir()
    save_model_file(model, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps({"model_config": tiny_cfg.to_dict()}))
    return out


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    path = tmp_path / "seqs.fa"
    path.write_text("".join(f">{name} description\n{seq[:50]}\n{seq[50:]}\n"
                            for name, seq in RECORDS.items()))
    return path


def test_batched_equals_alone_and_keeps_order(model_dir, fasta, tmp_path) -> None:
    out = tmp_path / "emb.parquet"
    summary = embed_fasta(model_dir, fasta, out, batch_size=3, device="cpu")
    assert summary["records"] == len(RECORDS) and summary["dim"] == 32
    table = pq.read_table(out)
    assert table.column_names == ["name", "length", "embedding"]
    assert table.column("name").to_pylist() == list(RECORDS)
    assert table.column("length").to_pylist() == [len(s) for s in RECORDS.values()]
    matrix = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert matrix.shape == (len(RECORDS), 32) and matrix.dtype == np.float32
    assert np.isfinite(matrix).all()
    assert json.loads(table.schema.metadata[b"ldarnet"])["dim"] == 32

    model = load_pretrained(model_dir)
    for row, seq in enumerate(RECORDS.values()):
        alone = embed_sequences(model, [seq], batch_size=1)[0]
        np.testing.assert_allclose(matrix[row], alone, rtol=1e-5, atol=1e-5)
    # an embedding is the mean of the final hidden state over the record's positions
    ids, mask = collate([RECORDS["short"]])
    with torch.no_grad():
        hidden = model(ids, mask).hidden_states[0]
    np.testing.assert_allclose(matrix[1], hidden.mean(0).numpy(), rtol=1e-5, atol=1e-5)


def test_npy_format_with_names_sidecar(model_dir, fasta, tmp_path) -> None:
    out = tmp_path / "emb.npy"
    assert main(["embed", str(model_dir), str(fasta), str(out), "--batch-size", "2",
                 "--device", "cpu"]) == 0
    matrix = np.load(out)
    assert matrix.shape == (len(RECORDS), 32) and matrix.dtype == np.float32
    assert (tmp_path / "emb.names.txt").read_text().split() == list(RECORDS)
    parquet = tmp_path / "emb.parquet"
    embed_fasta(model_dir, fasta, parquet, batch_size=5, device="cpu")
    other = np.stack(pq.read_table(parquet).column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(matrix, other, rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_length_batches_group_similar_lengths() -> None:
    assert length_batches([5, 100, 7, 50, 6], 2) == [[1, 3], [2, 4], [0]]


def test_empty_fasta_is_one_clear_error(model_dir, tmp_path, capsys) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(FastaError, match="no FASTA records"):
        read_dna_records(empty)
    assert main(["embed", str(model_dir), str(empty), str(tmp_path / "e.parquet")]) == 2
    err = capsys.readouterr().err
    assert "no FASTA records" in err and "Traceback" not in err
    assert not (tmp_path / "e.parquet").exists()


def test_non_dna_characters_refused(model_dir, tmp_path, capsys) -> None:
    protein = tmp_path / "protein.fa"
    protein.write_text(">ok\nACGT\n>p53_fragment\nMEEPQSDPSV\n")
    with pytest.raises(FastaError, match=r"protein\.fa:4: unexpected character b'E'.*protein"):
        read_dna_records(protein)
    gapped = tmp_path / "aln.fa"
    gapped.write_text(">a\nAC--GT\n")
    assert main(["embed", str(model_dir), str(gapped), str(tmp_path / "g.npy")]) == 2
    assert "aln.fa:2: unexpected character b'-'" in capsys.readouterr().err


def test_duplicate_and_empty_records_refused(tmp_path) -> None:
    dup = tmp_path / "dup.fa"
    dup.write_text(">a\nACGT\n>b\nGG\n>a\nTT\n")
    with pytest.raises(FastaError, match=r"dup\.fa:5: duplicate record name 'a' \(first at line 1"):
        read_dna_records(dup)
    blank = tmp_path / "blank.fa"
    blank.write_text(">a\n>b\nACGT\n")
    with pytest.raises(FastaError, match=r"blank\.fa:1: record 'a' has no sequence"):
        read_dna_records(blank)


def test_unknown_output_suffix_and_cuda_request(model_dir, fasta, tmp_path) -> None:
    with pytest.raises(InteropError, match="--format"):
        embed_fasta(model_dir, fasta, tmp_path / "emb.csv")
    if not torch.cuda.is_available():
        with pytest.raises(InteropError, match="no CUDA device"):
            embed_fasta(model_dir, fasta, tmp_path / "emb.npy", device="cuda")
