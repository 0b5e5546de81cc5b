"""Do learned boundaries mark translation start codons (the Kozak context)? Profiles vs decoys.

The release's "Kozak-like" panel matched ``GCCGCC`` anywhere in promoter sequences (spec
5.3). Here the anchors are real start codons (:mod:`ldarnet.analysis.start_codons`:
GENCODE ``start_codon`` records, or, in the demo, inferred from the longest ORF and
labelled so), offset 0 is the cut on the 5' side of the **A of ATG** in transcript
orientation, and the boundary probability (and hard-boundary rate) around them is tested
at every offset against two controls drawn from the same transcripts' 5' regions (TSS to
``downstream`` bases past the start codon, transcript strand):

* **non-start ATGs**: every other ATG on the transcript strand there, subsampled to
  ``decoys_per_site`` per start codon; they share the trinucleotide, so a difference
  means the model marks the *functional* start, not the letters ATG;
* **random positions** of the same regions and strand: the composition baseline.

A third comparison splits the start codons by their Kozak context (strong: a purine at
−3 and G at +4, Kozak numbering with the A of ATG at +1; weak: the rest). Two-sided
permutation tests per offset with Benjamini–Hochberg across offsets, as for splice
junctions (:mod:`ldarnet.analysis.splice_alignment`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldarnet.analysis.profiles import Profile, anchored_profile
from ldarnet.analysis.results import AnchoredAnalysis, Curve, ProfileFigure
from ldarnet.analysis.start_codons import LABELS, SHORT_LABELS, SOURCES, codon_at
from ldarnet.analysis.stats import enrichment_at_offsets
from ldarnet.data.annotation import AnnotationError, Exon, StartCodon

SITES = "start codons"
CONTROLS = ("non-start ATGs", "random positions")
STRONG, WEAK = "strong Kozak (R-3, G+4)", "weak Kozak"


@dataclass
class StartCodonResult:
    """Profiles per (set, signal), statistics rows and counts for the summary."""

    profiles: dict[tuple[str, str], Profile]
    stats: list[dict]
    counts: dict


def kozak_strength(sequence: str, codon: StartCodon) -> str:
    """``strong`` with a purine at −3 and G at +4 (genome context, transcript orientation).

    ``sequence`` is upper case.
    """
    p = codon.position
    if codon.strand == "+":
        minus3, plus4 = sequence[p - 3 : p - 2], sequence[p + 3 : p + 4]
    else:
        comp = str.maketrans("ACGTN", "TGCAN")
        minus3 = sequence[p + 3 : p + 4].translate(comp)
        plus4 = sequence[p - 3 : p - 2].translate(comp)
    return STRONG if minus3 in ("A", "G") and plus4 == "G" else WEAK


class Segmented:
    """Which windows of a per-base signal were segmented (contain no NaN).

    The NaN positions are found once and looked up by binary search, so that hundreds of
    megabases (paper scale) need neither a per-base cumulative array nor a rescan per query.
    """

    def __init__(self, values: np.ndarray, flank: int) -> None:
        self.size = values.size
        self.flank = flank
        self.nan = np.flatnonzero(np.isnan(values))

    def __call__(self, positions: np.ndarray | list[int]) -> np.ndarray:
        """Whether each position's whole window (either strand's reading) was segmented."""
        positions = np.asarray(positions, dtype=np.int64)
        lo, hi = positions - self.flank - 1, positions + self.flank + 2
        ok = (lo >= 0) & (hi <= self.size)
        return ok & (np.searchsorted(self.nan, lo) == np.searchsorted(self.nan, hi))


def _merge(regions: list[tuple[int, int, str]]) -> dict[str, list[tuple[int, int]]]:
    """Per strand, the union of the intervals as sorted, disjoint intervals."""
    merged: dict[str, list[tuple[int, int]]] = {"+": [], "-": []}
    for lo, hi, strand in sorted(regions, key=lambda r: (r[2], r[0], r[1])):
        runs = merged[strand]
        if runs and lo <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], hi))
        else:
            runs.append((lo, hi))
    return merged


def five_prime_regions(starts: list[StartCodon], exons: list[Exon], downstream: int
                       ) -> list[tuple[int, int, str]]:
    """[lo, hi) genome intervals from each start's transcript TSS to ``downstream`` past it.

    A start codon whose transcript is not among ``exons`` gets ±``downstream`` around it.
    """
    spans: dict[str, tuple[int, int]] = {}
    for e in exons:
        lo, hi = spans.get(e.transcript, (e.start, e.end))
        spans[e.transcript] = (min(lo, e.start), max(hi, e.end))
    regions = set()
    for c in starts:
        tx_lo, tx_hi = spans.get(c.transcript, (c.position - downstream,
                                                c.position + downstream + 1))
        if c.strand == "+":
            lo, hi = min(tx_lo, c.position), min(max(tx_hi, c.position + 3),
                                                 c.position + downstream + 1)
        else:
            lo, hi = max(min(tx_lo, c.position - 2), c.position - downstream), max(tx_hi,
                                                                                    c.position + 1)
        regions.add((max(lo, 0), hi, c.strand))
    return sorted(regions)


def control_sites(sequence: str, complete: Segmented, starts: list[StartCodon],
                  regions: list[tuple[int, int, str]], n_random: int,
                  rng: np.random.Generator) -> dict[str, list[tuple[int, str]]]:
    """Every non-start ATG of the 5' regions, and ``n_random`` distinct random positions.

    Both on the region's strand, fully segmented, and never an annotated start codon.
    Random positions are drawn uniformly from the union of the regions (rejection of
    unsegmented or start positions, without replacement).
    """
    seq = sequence  # upper case (start_codon_alignment upper-cases once)
    real = {(c.position, c.strand) for c in starts}
    merged = _merge(regions)
    atgs: list[tuple[int, str]] = []
    for strand, runs in merged.items():
        pattern, shift = ("ATG", 0) if strand == "+" else ("CAT", 2)
        for lo, hi in runs:
            found, first = [], seq.find(pattern, lo)
            while 0 <= first <= hi - 3:
                found.append(first + shift)
                first = seq.find(pattern, first + 1)
            keep = complete(found) if found else []
            atgs += [(p, strand) for p, ok in zip(found, keep, strict=True)
                     if ok and (p, strand) not in real]
    runs = [(lo, hi, strand) for strand, items in merged.items() for lo, hi in items]
    lengths = np.array([hi - lo for lo, hi, _ in runs], dtype=np.int64)
    chosen: set[tuple[int, str]] = set()
    for _ in range(20):  # rejection rounds; each draws twice what is missing
        missing = n_random - len(chosen)
        if missing <= 0 or lengths.sum() == 0:
            break
        which = rng.choice(len(runs), size=2 * missing, p=lengths / lengths.sum())
        pos = np.array([runs[i][0] for i in which]) + (
            rng.random(which.size) * lengths[which]).astype(np.int64)
        ok = complete(pos)
        for i, p, good in zip(which, pos.tolist(), ok, strict=True):
            site = (p, runs[i][2])
            if good and site not in real and len(chosen) < n_random:
                chosen.add(site)
    return {CONTROLS[0]: sorted(set(atgs)), CONTROLS[1]: sorted(chosen)}


def start_codon_alignment(
    prob: np.ndarray, boundary: np.ndarray, sequence: str, starts: list[StartCodon],
    exons: list[Exon], flank: int = 40, decoys_per_site: int = 20, downstream: int = 1000,
    n_permutations: int = 10000, seed: int = 0,
) -> StartCodonResult:
    """Start codon vs control profiles of p and of the boundary rate, with statistics.

    All coordinates (``starts``, ``exons``) index ``prob``, ``boundary`` and ``sequence``
    (one contig, or contigs concatenated with unsegmented NaN gaps).
    """
    rng = np.random.default_rng(seed)
    sequence = sequence.upper()  # soft-masked (lower-case) repeats are still ATGs
    complete = Segmented(prob, flank)
    keep = complete([c.position for c in starts])
    sites = [c for c, ok in zip(starts, keep, strict=True) if ok]
    regions = five_prime_regions(sites, exons, downstream)
    wanted = decoys_per_site * max(len(sites), 1)
    pools = control_sites(sequence, complete, starts, regions, wanted, rng)
    sets: dict[str, list[tuple[int, str]]] = {SITES: [(c.position, c.strand) for c in sites]}
    for name, pool in pools.items():
        take = min(len(pool), wanted)
        sets[name] = [pool[i] for i in sorted(rng.choice(len(pool), take, replace=False))]
    strength = [kozak_strength(sequence, c) for c in sites]
    sets[STRONG] = [s for s, k in zip(sets[SITES], strength, strict=True) if k == STRONG]
    sets[WEAK] = [s for s, k in zip(sets[SITES], strength, strict=True) if k == WEAK]
    profiles: dict[tuple[str, str], Profile] = {}
    stats: list[dict] = []
    for signal, values in (("p", prob), ("boundary", boundary.astype(np.float64))):
        for name, anchors in sets.items():
            profiles[(name, signal)] = anchored_profile(
                values, [p for p, _ in anchors], [s for _, s in anchors], flank, flank,
                cuts=True)
        for site_set, versus in ((SITES, CONTROLS[0]), (SITES, CONTROLS[1]), (STRONG, WEAK)):
            a, b = profiles[(site_set, signal)], profiles[(versus, signal)]
            if a.n < 2 or b.n < 2:
                continue
            test = enrichment_at_offsets(a.windows, b.windows, a.offsets, rng=rng,
                                         n_permutations=n_permutations,
                                         alternative="two-sided")
            stats += [{"sites": site_set, "versus": versus, "signal": signal,
                       "offset": int(o), "site_mean": float(a.mean[i]),
                       "versus_mean": float(b.mean[i]), "difference": float(test.difference[i]),
                       "p_value": float(test.pvalue[i]), "q_value": float(test.qvalue[i]),
                       "n_sites": a.n, "n_versus": b.n}
                      for i, o in enumerate(a.offsets)]
    counts = {"start_codons": len(starts), "segmented": len(sites),
              "split_codons": sum(c.split for c in sites),
              "atg": sum(codon_at(sequence, c) == "ATG" for c in sites),
              "strong_kozak": len(sets[STRONG]), "weak_kozak": len(sets[WEAK]),
              "regions": len(regions), "non_start_atg_pool": len(pools[CONTROLS[0]]),
              "random_positions": len(pools[CONTROLS[1]])}
    return StartCodonResult(profiles=profiles, stats=stats, counts=counts)


def run_start_codon_alignment(
    bedgraph, bed, fasta_path, exons_path, source: str = "gtf",
    gtf: str | Path | None = None, flank: int = 40, n_permutations: int = 10000,
    seed: int = 0, min_codons: int = 100,
) -> AnchoredAnalysis:
    """Profiles, statistics, figure data and summary for every annotated, segmented contig.

    ``source`` is ``gtf`` (start_codon lines of ``gtf``, default ``exons_path`` when that is
    a GTF) or ``longest_orf`` (inferred from the exons and the genome; labelled as such).
    """
    from ldarnet.analysis.splice_alignment import read_genome_track
    from ldarnet.analysis.start_codons import infer_start_codons
    from ldarnet.data.annotation import read_gtf_start_codons

    if source not in SOURCES:
        raise AnnotationError(f"start codon source {source!r} is not one of {SOURCES} "
                              "(config boundaries.start_codons)")
    if source == "gtf":
        gtf = Path(gtf or exons_path)
        if not gtf.name.lower().endswith((".gtf", ".gtf.gz")):
            raise AnnotationError(f"start codons from a GTF need a .gtf/.gtf.gz file, got "
                                  f"{gtf}; the demo's exon table has no start codons: set "
                                  "boundaries.start_codons: longest_orf (or none)")
    track = read_genome_track(bedgraph, bed, fasta_path, exons_path, gap=flank + 4)
    contigs, offsets = track.contigs, track.offsets
    if source == "gtf":
        starts = [c for c in read_gtf_start_codons(gtf) if c.contig in contigs]
    else:
        genome = {c: track.fasta.fetch(c, 0, track.fasta.length(c)) for c in contigs}
        starts = infer_start_codons([e for e in track.annotation if e.contig in contigs],
                                    genome, min_codons)
    if not starts:
        raise AnnotationError(f"no start codon on the segmented contigs {contigs}")
    shifted = [dataclasses.replace(c, contig="all", position=c.position + offsets[c.contig])
               for c in starts]
    result = start_codon_alignment(track.prob, track.boundary, track.sequence, shifted,
                                   track.exons, flank=flank,
                                   n_permutations=n_permutations, seed=seed)
    label = LABELS[source]
    rows = []
    for (name, signal), prof in result.profiles.items():
        rows += [{"sites": name, "signal": signal, "offset": int(o), "mean": float(m),
                  "sem": float(s), "n": prof.n, "source": SHORT_LABELS[source]}
                 for o, m, s in zip(prof.offsets, prof.mean, prof.sem, strict=True)]
    stats = [{**r, "source": SHORT_LABELS[source]} for r in result.stats]

    def curve(name: str) -> Curve:
        p = result.profiles[(name, "p")]
        return Curve(name, p.offsets, p.mean, p.sem, p.n)

    panels = {"start codons vs controls": [curve(SITES), *map(curve, CONTROLS)],
              "by Kozak context": [curve(STRONG), curve(WEAK)]}
    figure = ProfileFigure(panels, f"Boundary probability around {label}",
                           xlabel="offset from the A of ATG (nt, transcript orientation)")
    at_zero = [r for r in result.stats if r["offset"] == 0]
    summary = {"source": source, "label": label, "contigs": contigs, "flank": flank,
               "permutations": n_permutations, "min_codons": min_codons
               if source == "longest_orf" else None, **result.counts, "offset0": at_zero}
    return AnchoredAnalysis("start_codon", rows, stats, figure, summary)
