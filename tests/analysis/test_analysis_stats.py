"""Statistical core of the boundary analysis: shuffles, motif scans, profiles, tests.

Reference values come from code written independently here (loops, ``re``, counting by
hand), never from the functions under test.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ldarnet.analysis.motifs import (
    CONSENSUS_PATTERNS,
    PROMOTER_MOTIFS,
    Hit,
    MotifError,
    jaspar_pwm,
    pwm_from_counts,
    relative_threshold,
    scan_pattern,
    scan_pwm,
)
from ldarnet.analysis.profiles import ProfileError, anchored_profile, matched_background
from ldarnet.analysis.shuffle import SequenceError, dinucleotide_shuffle, insert_motif
from ldarnet.analysis.stats import (
    StatsError,
    benjamini_hochberg,
    enrichment_at_offsets,
    holm,
    permutation_test,
)
from ldarnet.data.fasta import read_fasta

ROOT = Path(__file__).resolve().parents[2]
DEMO_FASTA = ROOT / "resources" / "demo" / "hg38" / "chr2_1-2333275.fa.gz"
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


@pytest.fixture(scope="module")
def chr2() -> str:
    return read_fasta(DEMO_FASTA)["chr2"].upper()


@pytest.fixture(scope="module")
def dna(chr2: str) -> str:
    """6 kb of real hg38 sequence (no N), upper-cased."""
    seq = chr2[500_000:506_000]
    assert set(seq) == set("ACGT")
    return seq


@pytest.fixture(scope="module")
def dna_with_n(dna: str) -> str:
    """The same sequence with a few N runs, so scans must skip windows."""
    chars = list(dna[:3000])
    for start in (100, 101, 1500, 2990):
        chars[start] = "N"
    chars[700:712] = "N" * 12
    return "".join(chars)


def dinucleotides(seq: str) -> Counter:
    return Counter(seq[i:i + 2] for i in range(len(seq) - 1))


def revcomp(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


# ------------------------------------------------------------------------------------
# shuffle
# ------------------------------------------------------------------------------------


def release_shuffle(seq: str, rng: np.random.Generator) -> str:
    """The release's "dinucleotide shuffle" (spec 5.3, Fig. 4), re-implemented.

    Shuffles the overlapping 2-mers, keeps the first 2-mer whole and appends the second
    letter of each following one.
    """
    kmers = [seq[i:i + 2] for i in range(len(seq) - 1)]
    rng.shuffle(kmers)
    return kmers[0] + "".join(k[1] for k in kmers[1:])


def test_shuffle_preserves_dinucleotides_ends_and_changes_real_dna(dna: str) -> None:
    seq = dna[:4000]
    shuffled = dinucleotide_shuffle(seq, np.random.default_rng(7))
    assert len(shuffled) == len(seq)
    assert shuffled[0] == seq[0] and shuffled[-1] == seq[-1]
    assert dinucleotides(shuffled) == dinucleotides(seq)
    assert len(dinucleotides(seq)) == 16  # all 16 dinucleotides occur and are checked
    assert Counter(shuffled) == Counter(seq)
    differing = sum(a != b for a, b in zip(seq, shuffled, strict=True))
    assert differing > 0.5 * len(seq)  # really shuffled, not a near copy


def test_shuffle_is_seeded(dna: str) -> None:
    seq = dna[:2000]
    first = dinucleotide_shuffle(seq, np.random.default_rng(11))
    again = dinucleotide_shuffle(seq, np.random.default_rng(11))
    other = dinucleotide_shuffle(seq, np.random.default_rng(12))
    assert first == again
    assert other != first
    assert dinucleotides(other) == dinucleotides(seq)


def test_release_shuffle_does_not_preserve_dinucleotides(dna: str) -> None:
    seq = dna[:4000]
    naive = release_shuffle(seq, np.random.default_rng(7))
    assert Counter(naive[1:]) == Counter(seq[1:])  # faithful: keeps seq[1:]'s letters
    before, after = dinucleotides(seq), dinucleotides(naive)
    changed = sum(abs(before[k] - after[k]) for k in before | after)
    assert changed > 100  # hundreds of dinucleotides moved: CpG etc. are not controlled
    assert abs(after["CG"] - before["CG"]) > 10  # CpG depletion of real DNA is lost


def all_same_dinucleotide_sequences(seq: str) -> set[str]:
    """Every sequence with seq's first letter and dinucleotide counts, by brute force."""
    found: set[str] = set()

    def extend(prefix: str, left: Counter) -> None:
        if not +left:
            found.add(prefix)
        for pair in [k for k, v in left.items() if v > 0 and k[0] == prefix[-1]]:
            left[pair] -= 1
            extend(prefix + pair[1], left)
            left[pair] += 1

    extend(seq[0], dinucleotides(seq))
    return found


def test_shuffle_is_uniform_over_all_valid_sequences() -> None:
    seq = "AACGTTAGCAGT"
    valid = all_same_dinucleotide_sequences(seq)
    assert len(valid) == 60 and {s[-1] for s in valid} == {seq[-1]}
    rng = np.random.default_rng(3)
    draws = Counter(dinucleotide_shuffle(seq, rng) for _ in range(100 * len(valid)))
    assert set(draws) == valid  # every valid sequence is reachable, nothing else is
    counts = np.array([draws[s] for s in sorted(valid)])
    assert scipy_stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("seq", ["", "A", "AC", "ACA", "AAAA", "NNNN"])
def test_shuffle_edge_cases(seq: str) -> None:
    assert dinucleotide_shuffle(seq, np.random.default_rng(0)) == seq


def test_shuffle_treats_n_as_a_letter(dna: str) -> None:
    seq = dna[:300] + "NNNNN" + dna[300:600] + "N" + dna[600:900]
    shuffled = dinucleotide_shuffle(seq, np.random.default_rng(5))
    assert dinucleotides(shuffled) == dinucleotides(seq)
    assert shuffled != seq


def test_shuffle_rejects_bad_input() -> None:
    with pytest.raises(SequenceError, match=r"'a' at position 2.*upper"):
        dinucleotide_shuffle("ACaT", np.random.default_rng(0))
    with pytest.raises(SequenceError, match="Generator"):
        dinucleotide_shuffle("ACGT", 42)  # type: ignore[arg-type]


def test_insert_motif() -> None:
    assert insert_motif("CCCCCCCCCC", "TATA", 3) == "CCCTATACCC"
    assert insert_motif("CCCC", "TATA", 0) == "TATA"
    with pytest.raises(SequenceError, match=r"position must be in 0\.\.6"):
        insert_motif("CCCCCCCCCC", "TATA", 7)


# ------------------------------------------------------------------------------------
# motif scans
# ------------------------------------------------------------------------------------


def loop_log_odds(matrix_id: str, pseudocount: float, background: tuple) -> list[dict]:
    """Log-odds columns in bits straight from the JASPAR counts, written out by hand."""
    from pyjaspar import jaspardb

    motif = jaspardb().fetch_motif_by_id(matrix_id)
    columns = []
    for j in range(motif.length):
        total = sum(motif.counts[b][j] for b in "ACGT") + 4 * pseudocount
        columns.append({
            b: math.log2((motif.counts[b][j] + pseudocount) / total / bg)
            for b, bg in zip("ACGT", background, strict=True)
        })
    return columns


def loop_scan(seq: str, columns: list[dict], threshold: float) -> list[tuple]:
    width = len(columns)
    hits = []
    for start in range(len(seq) - width + 1):
        window = seq[start:start + width]
        if "N" in window:
            continue
        for strand, site in (("+", window), ("-", revcomp(window))):
            score = 0.0
            for j, base in enumerate(site):
                score += columns[j][base]
            if score >= threshold:
                hits.append((start, start + width, strand, score))
    return sorted(hits, key=lambda h: (h[0], h[2]))


@pytest.mark.parametrize("key", ["TATA", "GC"])
def test_pwm_scan_equals_loop_scan_on_real_dna(key: str, dna_with_n: str) -> None:
    background = (0.3, 0.2, 0.2, 0.3)
    matrix_id = PROMOTER_MOTIFS[key].matrix_id
    pwm = jaspar_pwm(matrix_id, pseudocount=0.5, background=background)
    columns = loop_log_odds(matrix_id, 0.5, background)
    low = sum(min(c.values()) for c in columns)
    high = sum(max(c.values()) for c in columns)
    threshold = relative_threshold(pwm, 0.6)
    assert threshold == pytest.approx(low + 0.6 * (high - low), abs=1e-12)

    expected = loop_scan(dna_with_n, columns, threshold)
    hits = scan_pwm(dna_with_n, pwm, threshold)
    assert [(h.start, h.end, h.strand) for h in hits] == [e[:3] for e in expected]
    assert np.allclose([h.score for h in hits], [e[3] for e in expected], rtol=0, atol=1e-9)
    assert {h.strand for h in hits} == {"+", "-"}
    assert len(hits) > 20
    assert not any("N" in dna_with_n[h.start:h.end] for h in hits)


def test_tbp_pwm_finds_a_planted_tata_box_on_both_strands() -> None:
    pwm = jaspar_pwm(PROMOTER_MOTIFS["TATA"].matrix_id)
    background = "GCGGCCGCGGCAGCGC" * 8  # 128 nt without anything TATA-like
    threshold = relative_threshold(pwm, 0.9)  # about 5 bits; 8 hits/kb on the demo chr2
    assert scan_pwm(background, pwm, threshold) == []
    planted = insert_motif(background, "TATAAAAG", 40)
    planted = insert_motif(planted, revcomp("TATAAAAG"), 90)
    hits = scan_pwm(planted, pwm, threshold)
    assert [(h.start, h.end, h.strand) for h in hits] == [(40, 47, "+"), (91, 98, "-")]
    assert hits[0].anchor == 40 and hits[1].anchor == 97  # TATAAAA read on each strand
    assert hits[0].score == pytest.approx(relative_threshold(pwm, 1.0))  # the best site


def test_promoter_motifs_are_the_expected_jaspar_matrices() -> None:
    consensus = {key: jaspar_pwm(spec.matrix_id).consensus()
                 for key, spec in PROMOTER_MOTIFS.items()}
    assert "TATAAA" in consensus["TATA"]
    assert "CCAAT" in consensus["CCAAT"]
    assert "GGGCGG" in consensus["GC"]
    assert {spec.tf for spec in PROMOTER_MOTIFS.values()} == {"TBP", "NFYA", "SP1"}
    assert jaspar_pwm("MA0108.3").release == "JASPAR2026"
    assert CONSENSUS_PATTERNS["Inr"] == "YYANWYY"  # not the release's YYCNTYY


def test_jaspar_release_is_passed_explicitly(monkeypatch) -> None:
    """pyjaspar's default release moves with its version: the release is always named."""
    import pyjaspar

    from ldarnet.analysis import motifs

    asked: list[object] = []
    real = pyjaspar.jaspardb

    def spy(*args, **kwargs):
        asked.append(kwargs.get("release", "<pyjaspar default>"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pyjaspar, "jaspardb", spy)
    motifs._jaspar.cache_clear()
    try:
        assert jaspar_pwm("MA0108.3").release == motifs.JASPAR_RELEASE == "JASPAR2026"
        assert jaspar_pwm("MA0108.3", release="JASPAR2024").release == "JASPAR2024"
    finally:
        motifs._jaspar.cache_clear()
    assert asked == ["JASPAR2026", "JASPAR2024"]


def test_jaspar_unknown_id_lists_similar_entries() -> None:
    with pytest.raises(MotifError, match=r"MA0108\.9.*not in JASPAR2026.*MA0108\.3 \(TBP\)"):
        jaspar_pwm("MA0108.9")
    with pytest.raises(MotifError, match=r"versioned.*MA0108\.3 \(TBP\)"):
        jaspar_pwm("TBP")


def test_pwm_rejects_bad_parameters() -> None:
    with pytest.raises(MotifError, match="sum to 1"):
        pwm_from_counts(np.ones((3, 4)), background=(0.25, 0.25, 0.25, 0.3))
    with pytest.raises(MotifError, match="pseudocount"):
        pwm_from_counts(np.ones((3, 4)), pseudocount=0)
    with pytest.raises(SequenceError, match="uppercase"):
        scan_pwm("acgtacgt", pwm_from_counts(np.ones((3, 4))), 0.0)


def regex_scan(seq: str, pattern: str) -> list[tuple]:
    classes = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "[AG]", "Y": "[CT]",
               "W": "[AT]", "S": "[CG]", "K": "[GT]", "M": "[AC]", "N": "[ACGT]"}
    regex = re.compile("(?=" + "".join(classes[c] for c in pattern) + ")")
    width = len(pattern)
    forward = [(m.start(), m.start() + width, "+") for m in regex.finditer(seq)]
    rc = revcomp(seq)
    reverse = [(len(seq) - m.start() - width, len(seq) - m.start(), "-")
               for m in regex.finditer(rc)]
    return sorted(forward + reverse, key=lambda h: (h[0], h[2]))


@pytest.mark.parametrize("name", sorted(CONSENSUS_PATTERNS))
def test_pattern_scan_equals_regex_on_both_strands(name: str, dna_with_n: str) -> None:
    pattern = CONSENSUS_PATTERNS[name]
    hits = scan_pattern(dna_with_n, pattern)
    expected = regex_scan(dna_with_n, pattern)
    assert [(h.start, h.end, h.strand) for h in hits] == expected
    assert len(expected) > 0
    for hit in hits:  # reverse-strand hits are reported in forward coordinates
        site = dna_with_n[hit.start:hit.end]
        assert regex_scan(site if hit.strand == "+" else revcomp(site), pattern)[0][2] == "+"


def test_pattern_scan_overlaps_and_errors() -> None:
    assert [(h.start, h.strand) for h in scan_pattern("AAAAA", "AAA")] == [
        (0, "+"), (1, "+"), (2, "+")]
    assert [(h.start, h.strand) for h in scan_pattern("CCCACGTGCC", "cacgtg")] == [
        (2, "+"), (2, "-")]  # a palindrome is a site on both strands
    with pytest.raises(MotifError, match="non-IUPAC"):
        scan_pattern("ACGT", "AXG")
    assert scan_pattern("AC", "ACGT") == []
    assert [(h.start, h.strand) for h in scan_pattern("CTAGACT", "YYANWYY")] == [(0, "+")]
    assert scan_pattern("CTANACT", "YYANWYY") == []  # an unknown base matches nothing
    assert Hit(5, 12, "-").anchor == 11


# ------------------------------------------------------------------------------------
# profiles
# ------------------------------------------------------------------------------------


def test_anchored_profile_recovers_a_planted_bump_on_both_strands() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 0.05, 5000)
    anchors = list(range(100, 4900, 97))
    strands = ["+" if i % 2 else "-" for i in range(len(anchors))]
    for a, s in zip(anchors, strands, strict=True):
        values[a + 3 if s == "+" else a - 3] += 1.0  # +3 downstream in transcript orientation
    profile = anchored_profile(values, [*anchors, 2, 4998], [*strands, "+", "-"], 10, 20)
    assert profile.n == len(anchors) and profile.n_skipped == 2
    assert profile.offsets[0] == -10 and profile.offsets[-1] == 20
    assert profile.windows.shape == (len(anchors), 31)
    assert np.argmax(profile.mean) == list(profile.offsets).index(3)
    assert profile.at(3)[0] == pytest.approx(1.0, abs=0.03)
    assert abs(profile.at(-3)[0]) < 0.03  # a strand mix-up would put half the bump here
    column = profile.windows[:, 13]
    assert profile.at(3)[1] == pytest.approx(column.std(ddof=1) / np.sqrt(column.size))


def test_anchored_profile_cut_semantics_on_the_minus_strand() -> None:
    values = np.arange(20, dtype=float)
    base = anchored_profile(values, [10], ["-"], 2, 2)
    cut = anchored_profile(values, [10], ["-"], 2, 2, cuts=True)
    assert list(base.mean) == [12, 11, 10, 9, 8]
    assert list(cut.mean) == [13, 12, 11, 10, 9]
    assert list(anchored_profile(values, [10], ["+"], 2, 2, cuts=True).mean) == [8, 9, 10,
                                                                                  11, 12]
    assert np.isnan(base.sem).all()  # one window: no SEM
    empty = anchored_profile(values, [0], ["+"], 2, 2)
    assert empty.n == 0 and empty.n_skipped == 1 and np.isnan(empty.mean).all()
    with pytest.raises(ProfileError, match="one strand"):
        anchored_profile(values, [5, 6], ["+"], 2, 2)
    with pytest.raises(ProfileError, match="outside the sequence"):
        anchored_profile(values, [25], ["+"], 2, 2)


def test_matched_background_keeps_distance_and_context(dna: str) -> None:
    anchors = [m.start() for m in re.finditer("GT", dna)][::40]
    flank = 30
    bg = matched_background(anchors, len(dna), flank, np.random.default_rng(1),
                            n_per_anchor=2, exclude=[(3000, 3100)])
    assert bg.positions.size == 2 * len(anchors)
    assert list(bg.anchor_index) == list(np.repeat(np.arange(len(anchors)), 2))
    distance = np.abs(bg.positions[:, None] - np.array(anchors)[None, :]).min(axis=1)
    assert distance.min() >= flank
    assert bg.positions.min() >= flank and bg.positions.max() < len(dna) - flank
    assert not np.any((bg.positions > 3000 - flank) & (bg.positions < 3099 + flank))

    decoys = matched_background(anchors, len(dna), flank, np.random.default_rng(1),
                                sequence=dna, context=(0, 2))
    assert {dna[p:p + 2] for p in decoys.positions} == {"GT"}
    again = matched_background(anchors, len(dna), flank, np.random.default_rng(1),
                               sequence=dna, context=(0, 2))
    assert np.array_equal(decoys.positions, again.positions)
    with pytest.raises(ProfileError, match="no background position"):
        matched_background([50], 100, 40, np.random.default_rng(0))


# ------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------


def test_permutation_test_detects_a_planted_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1.0, 150), rng.normal(0.0, 1.0, 200)
    statistic, p = permutation_test(a, b, 5000, rng=np.random.default_rng(1))
    assert statistic == pytest.approx(a.mean() - b.mean())
    assert p < 0.01
    _, p_less = permutation_test(a, b, 2000, rng=np.random.default_rng(1), alternative="less")
    assert p_less > 0.9


def test_permutation_test_under_the_null() -> None:
    rng = np.random.default_rng(2)
    same = rng.normal(0.0, 1.0, 300)
    _, p = permutation_test(same[:150], same[150:], 5000, rng=np.random.default_rng(3),
                            alternative="two-sided")
    assert p > 0.05
    pvalues = [
        permutation_test(rng.normal(size=20), rng.normal(size=25), 199, rng=rng)[1]
        for _ in range(300)
    ]
    rejected = np.mean(np.array(pvalues) <= 0.1)
    assert 0.05 < rejected < 0.15  # about 10 % at alpha = 0.1: the test has its size
    _, p_huge = permutation_test(100.0 + np.arange(30), np.arange(30.0), 999,
                                 rng=np.random.default_rng(0))
    assert p_huge == 1 / 1000  # never 0: the observed labelling counts as one permutation
    _, p_tied = permutation_test([1.0, 1.0], [1.0, 1.0], 99, rng=np.random.default_rng(0))
    assert p_tied == 1.0  # every permutation ties the observed statistic


def test_permutation_test_rejects_bad_input() -> None:
    with pytest.raises(StatsError, match="NaN"):
        permutation_test([1.0, np.nan], [0.0], rng=np.random.default_rng(0))
    with pytest.raises(StatsError, match="alternative"):
        permutation_test([1.0], [0.0], rng=np.random.default_rng(0),
                         alternative="bigger")  # type: ignore[arg-type]
    with pytest.raises(StatsError, match="empty"):
        permutation_test([], [0.0], rng=np.random.default_rng(0))


def test_benjamini_hochberg_and_holm_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.5]
    # sorted 0.01 0.03 0.04 0.2 0.5; p*m/rank = 0.05 0.075 0.0667 0.25 0.5; cummin from top
    assert benjamini_hochberg(p) == pytest.approx([0.05, 0.2 / 3, 0.2 / 3, 0.25, 0.5])
    # (m - rank + 1) * p = 0.05 0.12 0.12 0.4 0.5; running max
    assert holm(p) == pytest.approx([0.05, 0.12, 0.12, 0.4, 0.5])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # clipped
    assert benjamini_hochberg([]).size == 0
    with pytest.raises(StatsError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.5, 1.5])


def test_enrichment_at_offsets_finds_the_planted_offset() -> None:
    rng = np.random.default_rng(4)
    offsets = np.arange(-10, 11)
    sites = rng.normal(0.3, 0.1, (80, offsets.size))
    sites[:, 14] += 0.2  # offset +4
    background = rng.normal(0.3, 0.1, (200, offsets.size))
    result = enrichment_at_offsets(sites, background, offsets, rng=np.random.default_rng(5),
                                   n_permutations=5000)
    assert result.offsets[np.argmin(result.qvalue)] == 4
    assert result.qvalue[14] < 0.01
    assert np.all(np.delete(result.qvalue, 14) > 0.05)
    assert result.qvalue == pytest.approx(benjamini_hochberg(result.pvalue))
