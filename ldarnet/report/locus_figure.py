"""A genome-locus figure: boundary probability, hard boundaries, bases and exons at a TSS.

The window is centred on the transcription start site of a named gene, taken from the
annotation (first exon start of its transcripts in transcript orientation; the most
frequent one when transcripts disagree), so that the paper-scale figure sits on HBB's
real TSS (chr11:5,227,071, minus strand, GENCODE) instead of the release's hand-typed
coordinate ~69 bp away.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ldarnet.analysis.tracks import TrackError, read_bedgraph, read_boundaries
from ldarnet.data.annotation import read_annotation
from ldarnet.data.fasta import open_genome
from ldarnet.foundation.figures import save_figure

_BASE_COLOURS = {"A": "#2ca02c", "C": "#1f77b4", "G": "#ff7f0e", "T": "#d62728"}


def plot_locus(bedgraph: str | Path, bed: str | Path, fasta_path: str | Path,
               exons_path: str | Path, gene: str, out: str | Path, flank: int = 150) -> dict:
    """Write the figure of ``gene``'s TSS ±``flank`` bases; returns what was drawn."""
    annotation = read_annotation(exons_path)
    exons = annotation.require_exons()
    contig, tss, strand = annotation.gene_tss(gene)
    fasta = open_genome(fasta_path)
    length = fasta.length(contig)
    lo, hi = max(0, tss - flank), min(length, tss + flank + 1)
    prob = read_bedgraph(bedgraph, contig, length)[lo:hi]
    if np.isnan(prob).any():
        raise TrackError(f"{contig}:{lo}-{hi} around {gene} is not (fully) segmented in "
                         f"{bedgraph}; segment that region first")
    boundary = read_boundaries(bed, contig, length)[lo:hi]
    seq = fasta.fetch(contig, lo, hi).upper()
    x = np.arange(lo, hi)
    fig, (ax, ax_exon) = plt.subplots(2, 1, figsize=(13, 3.8), sharex=True,
                                      gridspec_kw={"height_ratios": [4, 1]})
    ax.plot(x, prob, color="black", lw=1, label="boundary probability p")
    ax.vlines(x[boundary], 0, 1, color="tab:red", alpha=0.35, lw=1, label="boundary")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.axvline(tss, color="tab:blue", ls="--", lw=1, label=f"TSS ({strand} strand)")
    for pos, base in zip(x, seq, strict=True):
        ax.text(pos, -0.07, base, ha="center", va="top", fontsize=4.5, family="monospace",
                color=_BASE_COLOURS.get(base, "black"))
    ax.set_ylim(-0.14, 1.02)
    ax.set_ylabel("p")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{gene}: {contig}:{lo + 1:,}-{hi:,} (TSS {contig}:{tss + 1:,}, {strand})")
    for e in exons:
        if e.gene == gene and e.contig == contig and e.end > lo and e.start < hi:
            ax_exon.add_patch(plt.Rectangle((max(e.start, lo), 0.3),
                                            min(e.end, hi) - max(e.start, lo), 0.4,
                                            color="tab:gray", alpha=0.5))
    ax_exon.set_ylim(0, 1)
    ax_exon.set_yticks([])
    ax_exon.set_ylabel("exons", rotation=0, ha="right", va="center")
    ax_exon.set_xlabel(f"{contig} position (0-based)")
    ax_exon.set_xlim(lo - 1, hi)
    fig.tight_layout()
    save_figure(fig, out)
    return {"gene": gene, "contig": contig, "tss_1based": tss + 1, "strand": strand,
            "window": [lo + 1, hi], "boundaries": int(boundary.sum())}
