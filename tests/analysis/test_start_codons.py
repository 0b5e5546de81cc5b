"""Start codons (GTF reader, longest-ORF inference) and the Kozak boundary profiles."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from ldarnet.analysis.start_codon_alignment import CONTROLS, SITES, start_codon_alignment
from ldarnet.analysis.start_codons import (
    STOPS,
    codon_at,
    infer_start_codons,
    longest_orf,
    spliced_transcript,
)
from ldarnet.data.annotation import AnnotationError, read_exon_table, read_gtf_start_codons
from ldarnet.data.fasta import read_fasta


def _gtf_line(start: int, end: int, strand: str, transcript: str, feature: str = "start_codon",
              contig: str = "chr1") -> str:
    attrs = f'gene_id "G{transcript}"; transcript_id "{transcript}"; gene_name "N{transcript}";'
    return "\t".join([contig, "HAVANA", feature, str(start), str(end), ".", strand, "0",
                      attrs]) + "\n"


def test_gtf_start_codons_strands_split_and_duplicates(tmp_path) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(
        "##description: test\n"
        + _gtf_line(90, 400, "+", "T1", feature="exon")
        + _gtf_line(101, 103, "+", "T1")  # plus: the A is the lowest base, 0-based 100
        + _gtf_line(201, 203, "-", "T2")  # minus: the A is the highest base, 0-based 202
        + _gtf_line(301, 302, "+", "T3")  # plus, split: first base 300
        + _gtf_line(401, 401, "+", "T3")
        + _gtf_line(500, 500, "-", "T4")  # minus, split: first base = highest end, 600
        + _gtf_line(600, 601, "-", "T4")
        + _gtf_line(101, 103, "+", "T5")  # the same codon in another transcript: kept once
    )
    codons = read_gtf_start_codons(gtf)
    got = [(c.position, c.strand, c.transcript, c.split) for c in codons]
    assert got == [(100, "+", "T1", False), (202, "-", "T2", False), (300, "+", "T3", True),
                   (600, "-", "T4", True)]
    assert codons[0].gene == "NT1"
    # the anchor reads ATG in transcript orientation on both strands
    genome = ["N"] * 700
    genome[100:103] = "ATG"
    genome[200:203] = "CAT"  # ATG on the minus strand
    assert codon_at("".join(genome), codons[0]) == "ATG"
    assert codon_at("".join(genome), codons[1]) == "ATG"


@pytest.mark.parametrize(("line", "fragment"), [
    ("chr1\tX\tstart_codon\tabc\t103\t.\t+\t0\ttranscript_id \"T\";\n", "must be integers"),
    ("chr1\tX\tstart_codon\t103\t101\t.\t+\t0\ttranscript_id \"T\";\n", "not 1 to 3 bases"),
    ("chr1\tX\tstart_codon\t101\t103\t.\t.\t0\ttranscript_id \"T\";\n", "strand must be"),
    ("chr1\tX\tstart_codon\t101\t103\t.\t+\t0\tgene_id \"G\";\n", "no transcript_id"),
    ("chr1\tX\tstart_codon\t101\t103\n", "9 tab-separated fields"),
])
def test_malformed_gtf_line_names_file_and_line(tmp_path, line: str, fragment: str) -> None:
    gtf = tmp_path / "bad.gtf"
    gtf.write_text("#!header\n" + _gtf_line(101, 103, "+", "T1") + line)
    with pytest.raises(AnnotationError, match=rf"bad\.gtf:3: .*{fragment}"):
        read_gtf_start_codons(gtf)


def test_gtf_without_start_codons_is_refused(tmp_path) -> None:
    gtf = tmp_path / "exons.gtf"
    gtf.write_text(_gtf_line(1, 50, "+", "T1", feature="exon"))
    with pytest.raises(AnnotationError, match=r"no start_codon lines.*longest_orf"):
        read_gtf_start_codons(gtf)


def test_longest_orf_needs_a_stop_and_takes_the_longest() -> None:
    #            ATG AAA TAG          ATG CCC CCC CCC TGA   ATG (runs off the end)
    mrna = "CC" + "ATGAAATAG" + "G" + "ATGCCCCCCCCCTGA" + "ATGCCCCCC"
    start, end = longest_orf(mrna)
    assert mrna[start:end] == "ATGCCCCCCCCCTGA"
    assert longest_orf("ATGCCCCCC") is None  # no stop: not an ORF


@pytest.fixture(scope="module")
def slice_data():
    genome = read_fasta(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz")
    exons = read_exon_table(ROOT / "resources/demo/gencode/exons_chr2_1-2333275.csv")
    return genome, exons


@pytest.mark.parametrize(("transcript", "gene", "strand", "codons", "split"), [
    ("ENST00000272065.10", "ACP1", "+", 158, False),   # UniProt P24666: 158 aa
    ("ENST00000356150.9", "SH3YL1", "-", 342, True),   # UniProt Q96HL8: 342 aa; A|TG
])
def test_longest_orf_of_real_transcripts(slice_data, transcript, gene, strand, codons,
                                         split) -> None:
    genome, exons = slice_data
    mine = [e for e in exons if e.transcript == transcript]
    mrna, positions = spliced_transcript(mine, genome["chr2"])
    start, end = longest_orf(mrna)
    orf = mrna[start:end]
    assert orf.startswith("ATG") and orf[-3:] in STOPS and len(orf) % 3 == 0
    assert not any(orf[i:i + 3] in STOPS for i in range(0, len(orf) - 3, 3))
    assert len(orf) // 3 - 1 == codons
    inferred = {c.transcript: c for c in infer_start_codons(mine, genome)}
    codon = inferred[transcript]
    assert (codon.gene, codon.strand, codon.orf_codons, codon.split) == (
        gene, strand, codons, split)
    assert codon.position == positions[start]
    # mapped back to the genome: its three bases read ATG in transcript orientation
    bases = "".join(genome["chr2"][p] for p in positions[start:start + 3]).upper()
    assert (bases if strand == "+" else bases.translate(str.maketrans("ACGT", "TGCA"))) == "ATG"
    if not split:  # contiguous in the genome
        assert codon_at(genome["chr2"], codon) == "ATG"


def _planted(seq: str, starts, rng, at_start: bool) -> np.ndarray:
    prob = rng.uniform(0, 0.4, len(seq)).astype(np.float32)
    if at_start:
        for c in starts:  # the cut on the 5' side of the A, in transcript orientation
            prob[c.position if c.strand == "+" else c.position + 1] = 0.95
    return prob


def test_kozak_profile_recovers_a_planted_signal_and_not_a_null(slice_data) -> None:
    genome, exons = slice_data
    seq = genome["chr2"]
    starts = infer_start_codons(exons, genome)
    assert len(starts) >= 40
    prob = _planted(seq, starts, np.random.default_rng(0), at_start=True)
    result = start_codon_alignment(prob, prob > 0.5, seq, starts, exons, flank=8,
                                   n_permutations=2000, seed=0)
    assert result.counts["segmented"] == len(starts)
    for control in CONTROLS:
        rows = {r["offset"]: r for r in result.stats
                if (r["sites"], r["versus"], r["signal"]) == (SITES, control, "p")}
        assert rows[0]["difference"] > 0.5 and rows[0]["q_value"] < 0.02
        assert rows[2]["q_value"] > 0.05 and rows[-3]["q_value"] > 0.05
    profile = result.profiles[(SITES, "p")]
    assert profile.offsets[np.argmax(profile.mean)] == 0
    # decoys are real non-start ATGs on the transcript strand
    atg_profile = result.profiles[(CONTROLS[0], "p")]
    assert atg_profile.n == 20 * len(starts)

    null = _planted(seq, starts, np.random.default_rng(1), at_start=False)
    result = start_codon_alignment(null, null > 0.5, seq, starts, exons, flank=8,
                                   n_permutations=2000, seed=0)
    significant = [r for r in result.stats if r["q_value"] < 0.05]
    assert len(significant) <= 1  # FDR control over 6 tests x 17 offsets
