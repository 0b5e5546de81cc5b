"""Splice-junction alignment statistics on the real slice with planted and null signals."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from ldarnet.analysis.splice_alignment import splice_alignment
from ldarnet.data.annotation import junction_anchors, read_exon_table
from ldarnet.data.fasta import read_fasta


@pytest.fixture(scope="module")
def data():
    seq = read_fasta(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz")["chr2"]
    exons = read_exon_table(ROOT / "resources/demo/gencode/exons_chr2_1-2333275.csv")
    return seq, exons


def _stat(result, kind: str, signal: str, offset: int) -> dict:
    return next(r for r in result.stats
                if (r["kind"], r["signal"], r["offset"]) == (kind, signal, offset))


def test_planted_boundaries_at_donors_are_found(data) -> None:
    seq, exons = data
    rng = np.random.default_rng(1)
    prob = rng.uniform(0, 0.4, len(seq)).astype(np.float32)
    for a in junction_anchors(exons):
        if a.kind == "donor":
            # the cut on the 5' side of the anchor base, in transcript orientation
            prob[a.position if a.strand == "+" else a.position + 1] = 0.95
    result = splice_alignment(prob, prob > 0.5, seq, "chr2", exons, flank=10,
                              n_permutations=2000, seed=0)
    hit = _stat(result, "donor", "p", 0)
    assert hit["difference"] > 0.5 and hit["q_value"] < 0.02  # 2,000 permutations: min 0.0105
    assert _stat(result, "donor", "boundary", 0)["junction_mean"] > 0.9
    # nothing planted at the other offsets or at acceptors
    assert _stat(result, "donor", "p", 3)["q_value"] > 0.05
    assert min(r["q_value"] for r in result.stats if r["kind"] == "acceptor") > 0.05
    profile = result.profiles[("donor", "junction", "p")]
    assert profile.offsets[np.argmax(profile.mean)] == 0


def test_null_signal_gives_no_enrichment(data) -> None:
    seq, exons = data
    prob = np.random.default_rng(2).uniform(0, 1, len(seq)).astype(np.float32)
    result = splice_alignment(prob, prob > 0.5, seq, "chr2", exons, flank=5,
                              n_permutations=2000, seed=0)
    significant = [r for r in result.stats if r["q_value"] < 0.05]
    assert len(significant) <= 1  # FDR control: at most a stray one among ~44 tests
    assert result.profiles[("acceptor", "junction", "p")].n > 100
