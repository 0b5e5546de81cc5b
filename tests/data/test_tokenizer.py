"""Tokenizer and FASTA reading on real and hand-made sequences."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import ROOT
from ldarnet.data.fasta import FastaError, read_fasta
from ldarnet.data.tokenizer import decode, encode, reverse_complement


def test_encoding_and_case() -> None:
    assert encode("ACGTN").tolist() == [0, 1, 2, 3, 4]
    assert encode("acgtn").tolist() == [0, 1, 2, 3, 4]  # soft-masked bases upper-cased
    assert encode("RYKM-*.").tolist() == [4] * 7  # anything else is N
    assert decode(np.array([0, 1, 2, 3, 4, 5, 6])) == "ACGTN[MASK][PAD]"


def test_reverse_complement() -> None:
    ids = encode("AACGTN")
    assert decode(reverse_complement(ids)) == "NACGTT"
    assert np.array_equal(reverse_complement(reverse_complement(ids)), ids)


def test_read_real_demo_slice() -> None:
    records = read_fasta(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz")
    seq = records["chr2"]
    assert len(seq) == 2_333_275
    assert set(seq[:10_000]) == {"N"}  # the chromosome starts with 10 kb of N
    assert sum(c.islower() for c in seq) == 831_507  # soft-masked repeats (SOURCE.md)


def test_fasta_errors(tmp_path) -> None:
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>x\nACGT\n")
    with pytest.raises(FastaError, match="before the first"):
        read_fasta(bad)
    with pytest.raises(FileNotFoundError):
        read_fasta(tmp_path / "missing.fa")
    gz = tmp_path / "ok.fa.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(">a desc\nAC\nGT\n>b\nnn\n")
    assert read_fasta(gz) == {"a": "ACGT", "b": "nn"}
