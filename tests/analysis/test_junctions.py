"""Splice-junction anchors from the shipped GENCODE exons of the hg38 slice."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import ROOT
from ldarnet.analysis.junctions import decoy_anchors, site_dinucleotide
from ldarnet.data.annotation import AnnotationError, Exon, junction_anchors, read_exon_table
from ldarnet.data.fasta import read_fasta

EXONS = ROOT / "resources/demo/gencode/exons_chr2_1-2333275.csv"


@pytest.fixture(scope="module")
def chr2() -> str:
    return read_fasta(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz")["chr2"]


def test_real_junctions_are_canonical(chr2: str) -> None:
    anchors = junction_anchors(read_exon_table(EXONS))
    counts = Counter((a.kind, site_dinucleotide(chr2, a)) for a in anchors)
    canonical = counts[("donor", "GT")] + counts[("acceptor", "AG")]
    assert len(anchors) == 464
    assert canonical / len(anchors) > 0.97
    assert {a.strand for a in anchors} == {"+", "-"}
    # both strands contribute canonical sites (orientation handled on each)
    for strand in "+-":
        sub = [a for a in anchors if a.strand == strand]
        ok = sum(site_dinucleotide(chr2, a) in ("GT", "AG") for a in sub)
        assert ok / len(sub) > 0.95, strand


def test_hand_made_transcripts_on_both_strands() -> None:
    #           0123456789012345678901
    sequence = "AAAACCGTAAAAAAAAGCCCAA"
    plus = [Exon("c", 2, 6, "+", "t1", "g"), Exon("c", 17, 20, "+", "t1", "g")]
    donor, acceptor = junction_anchors(plus)
    assert (donor.kind, donor.position) == ("donor", 6)  # G of GT
    assert (acceptor.kind, acceptor.position) == ("acceptor", 17)  # after AG
    assert site_dinucleotide(sequence, donor) == "GT"
    assert site_dinucleotide(sequence, acceptor) == "AG"
    # minus strand: intron CT...AC on the plus strand
    minus_seq = "GGGGGCTTTTTTTACGGGG"
    minus = [Exon("c", 0, 5, "-", "t2", "g"), Exon("c", 15, 19, "-", "t2", "g")]
    anchors = {a.kind: a for a in junction_anchors(minus)}
    assert anchors["donor"].position == 14 and anchors["acceptor"].position == 4
    assert site_dinucleotide(minus_seq, anchors["donor"]) == "GT"
    assert site_dinucleotide(minus_seq, anchors["acceptor"]) == "AG"


def test_decoys_are_unannotated_canonical_sites(chr2: str) -> None:
    exons = read_exon_table(EXONS)
    real = junction_anchors(exons)
    decoys = decoy_anchors(chr2, "chr2", exons, real)
    real_keys = {(a.position, a.strand, a.kind) for a in real}
    assert len(decoys) > 10 * len(real)
    assert not any((d.position, d.strand, d.kind) in real_keys for d in decoys)
    sample = decoys[:: max(1, len(decoys) // 2000)]
    assert all(site_dinucleotide(chr2, d) == ("GT" if d.kind == "donor" else "AG")
               for d in sample)


def test_bad_tables(tmp_path) -> None:
    bad = tmp_path / "exons.csv"
    bad.write_text("Chromosome,Start,End\nchr2,1,2\n")
    with pytest.raises(AnnotationError, match="missing column"):
        read_exon_table(bad)
    with pytest.raises(FileNotFoundError):
        read_exon_table(tmp_path / "none.csv")
