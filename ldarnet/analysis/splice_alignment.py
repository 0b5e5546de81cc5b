"""Do learned boundaries sit on splice junctions? Junction-centred profiles vs decoys.

For donors and acceptors separately, the boundary probability p (and the hard boundary
rate) is averaged in a window around every annotated, canonical (GT/AG) junction of the
contig and around decoy sites: the same dinucleotide on the same strand inside the same
transcripts, not annotated as a junction. Offset 0 is the cut on the 5' side of the
anchor base in transcript orientation (donor: exon|GT, acceptor: AG|exon). At every
offset a permutation test compares junctions with decoys, adjusted across offsets by
Benjamini–Hochberg. Decoys share the splice-site core, so an enrichment means the model
marks *functional* junctions, not merely the dinucleotide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldarnet.analysis.junctions import decoy_anchors
from ldarnet.analysis.junctions import site_dinucleotide as core
from ldarnet.analysis.profiles import Profile, anchored_profile
from ldarnet.analysis.results import AnchoredAnalysis, Curve, ProfileFigure
from ldarnet.analysis.stats import enrichment_at_offsets
from ldarnet.data.annotation import Anchor, Exon, junction_anchors
from ldarnet.data.fasta import Fasta

CANONICAL = {"donor": "GT", "acceptor": "AG"}


@dataclass
class SpliceResult:
    """Profiles per (kind, set, signal) and the per-offset statistics table rows."""

    profiles: dict[tuple[str, str, str], Profile]
    stats: list[dict]


def _complete(values: np.ndarray, anchors: list[Anchor], flank: int) -> list[Anchor]:
    """Anchors whose whole window was segmented (no NaN)."""
    keep = []
    for a in anchors:
        lo, hi = a.position - flank - 1, a.position + flank + 2
        if lo >= 0 and hi <= values.size and not np.isnan(values[lo:hi]).any():
            keep.append(a)
    return keep


def splice_alignment(
    prob: np.ndarray, boundary: np.ndarray, sequence: str, contig: str, exons: list[Exon],
    flank: int = 40, decoys_per_site: int = 20, n_permutations: int = 10000, seed: int = 0,
) -> SpliceResult:
    """Junction vs decoy profiles of p and of the boundary rate, with statistics."""
    rng = np.random.default_rng(seed)
    exons = [e for e in exons if e.contig == contig]
    real = [a for a in junction_anchors(exons) if core(sequence, a) == CANONICAL[a.kind]]
    decoys = decoy_anchors(sequence, contig, exons, real)
    profiles: dict[tuple[str, str, str], Profile] = {}
    stats: list[dict] = []
    for kind in ("donor", "acceptor"):
        sites = _complete(prob, [a for a in real if a.kind == kind], flank)
        pool = _complete(prob, [a for a in decoys if a.kind == kind], flank)
        take = min(len(pool), decoys_per_site * max(len(sites), 1))
        background = [pool[i] for i in sorted(rng.choice(len(pool), take, replace=False))]
        for signal, values in (("p", prob), ("boundary", boundary.astype(np.float64))):
            for name, anchors in (("junction", sites), ("decoy", background)):
                profiles[(kind, name, signal)] = anchored_profile(
                    values, [a.position for a in anchors], [a.strand for a in anchors],
                    flank, flank, cuts=True)
            site_profile = profiles[(kind, "junction", signal)]
            if site_profile.n < 2 or profiles[(kind, "decoy", signal)].n < 2:
                continue
            test = enrichment_at_offsets(
                site_profile.windows, profiles[(kind, "decoy", signal)].windows,
                site_profile.offsets, rng=rng, n_permutations=n_permutations,
                alternative="two-sided")
            for i, offset in enumerate(site_profile.offsets):
                stats.append({
                    "kind": kind, "signal": signal, "offset": int(offset),
                    "junction_mean": float(site_profile.mean[i]),
                    "decoy_mean": float(profiles[(kind, "decoy", signal)].mean[i]),
                    "difference": float(test.difference[i]), "p_value": float(test.pvalue[i]),
                    "q_value": float(test.qvalue[i]), "n_junctions": site_profile.n,
                    "n_decoys": profiles[(kind, "decoy", signal)].n,
                })
    return SpliceResult(profiles=profiles, stats=stats)


@dataclass
class GenomeTrack:
    """The annotated, segmented contigs as one coordinate system ("all").

    ``exons`` are shifted into it (``annotation`` holds them as read, on their contigs);
    ``offsets[contig]`` maps a contig's coordinates into it (add the offset), for any other
    annotation (start codons, ...) to be shifted the same way.
    """

    fasta: Fasta
    contigs: list[str]
    prob: np.ndarray
    boundary: np.ndarray
    sequence: str
    offsets: dict[str, int]
    exons: list[Exon]
    annotation: list[Exon]


def read_genome_track(bedgraph, bed, fasta_path, exons_path, gap: int) -> GenomeTrack:
    """Boundary track, sequence and exons of every contig annotated in ``exons_path`` and
    segmented in ``bedgraph``, concatenated with ``gap`` unsegmented bases between contigs."""
    import dataclasses

    from ldarnet.analysis.tracks import TrackError, track_contigs
    from ldarnet.data.annotation import read_exon_table
    from ldarnet.data.fasta import open_genome

    fasta = open_genome(fasta_path)
    exons = read_exon_table(exons_path)
    contigs = sorted({e.contig for e in exons} & set(fasta.names()) & track_contigs(bedgraph))
    if not contigs:
        raise TrackError(f"no contig is both annotated in {exons_path} and segmented in "
                         f"{bedgraph}; segment the annotated regions first")
    prob, boundary, sequence, offsets = _concatenate(fasta, bedgraph, bed, contigs, gap)
    shifted = [dataclasses.replace(e, contig="all", start=e.start + offsets[e.contig],
                                   end=e.end + offsets[e.contig])
               for e in exons if e.contig in offsets]
    return GenomeTrack(fasta, contigs, prob, boundary, sequence, offsets, shifted, exons)


def _concatenate(fasta, bedgraph, bed, contigs: list[str], gap: int):
    """All contigs as one coordinate system, separated by unsegmented gaps."""
    from ldarnet.analysis.tracks import read_bedgraph, read_boundaries

    probs, bounds, seqs, offsets, start = [], [], [], {}, 0
    for contig in contigs:
        seq = fasta.fetch(contig, 0, fasta.length(contig)).upper()
        offsets[contig] = start
        probs += [read_bedgraph(bedgraph, contig, len(seq)), np.full(gap, np.nan, np.float32)]
        bounds += [read_boundaries(bed, contig, len(seq)), np.zeros(gap, bool)]
        seqs += [seq, "N" * gap]
        start += len(seq) + gap
    return np.concatenate(probs), np.concatenate(bounds), "".join(seqs), offsets


def run_splice_alignment(bedgraph, bed, fasta_path, exons_path, flank: int = 40,
                         n_permutations: int = 10000, seed: int = 0) -> AnchoredAnalysis:
    """Profiles, statistics and figure data for every annotated, segmented contig."""
    track = read_genome_track(bedgraph, bed, fasta_path, exons_path, gap=flank + 4)
    contigs = track.contigs
    result = splice_alignment(track.prob, track.boundary, track.sequence, "all", track.exons,
                              flank=flank, n_permutations=n_permutations, seed=seed)
    rows = []
    for (kind, name, signal), prof in result.profiles.items():
        rows += [{"kind": kind, "set": name, "signal": signal, "offset": int(o),
                  "mean": float(m), "sem": float(s), "n": prof.n}
                 for o, m, s in zip(prof.offsets, prof.mean, prof.sem, strict=True)]
    panels = {
        f"{kind}s ({'exon|GT' if kind == 'donor' else 'AG|exon'})": [
            Curve(f"{name}s", p.offsets, p.mean, p.sem, p.n)
            for name in ("junction", "decoy")
            for p in [result.profiles[(kind, name, "p")]]
        ]
        for kind in ("donor", "acceptor")
    }
    figure = ProfileFigure(
        panels, "Boundary probability around annotated splice junctions vs decoy GT/AG")
    at_zero = {f"{r['kind']}_{r['signal']}": r for r in result.stats if r["offset"] == 0}
    summary = {"contigs": contigs, "flank": flank, "permutations": n_permutations,
               "offset0": at_zero}
    return AnchoredAnalysis("splice", rows, result.stats, figure, summary)
