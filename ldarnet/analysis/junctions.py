"""Splice junctions as analysis anchors, and matched decoy sites.

The junction anchors themselves are derived once, by the annotation reader
(:func:`ldarnet.data.annotation.junction_anchors`); this module reads the genome around them.

Anchors are given in *transcript orientation* as (contig, position, strand), where the
position is the 0-based genome coordinate of offset 0:

* donor: the first intron base (the G of GT);
* acceptor: the first exon base after the intron (just after AG).

On the minus strand these lie at the high-coordinate side of the intron and profiles
read the sequence reversed. Decoys are the same dinucleotides (GT for donors, AG for
acceptors, on the same strand) inside the same transcripts' spans that are not annotated
junctions of any transcript: real sequence with the splice-site core but no splicing.
"""

from __future__ import annotations

from ldarnet.data.annotation import Anchor, Exon

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")

# Dinucleotide on the plus strand, and the anchor's offset from its first base, per site.
_PLUS_PATTERN = {("donor", "+"): ("GT", 0), ("acceptor", "+"): ("AG", 2),
                 ("donor", "-"): ("AC", 1), ("acceptor", "-"): ("CT", -1)}


def site_dinucleotide(sequence: str, anchor: Anchor) -> str:
    """The splice-site core in transcript orientation: GT for donors, AG for acceptors."""
    pos = anchor.position
    if anchor.strand == "+":
        core = sequence[pos : pos + 2] if anchor.kind == "donor" else sequence[pos - 2 : pos]
        return core.upper()
    core = sequence[pos - 1 : pos + 1] if anchor.kind == "donor" else sequence[pos + 1 : pos + 3]
    return core.upper().translate(COMPLEMENT)[::-1]


def decoy_anchors(sequence: str, contig: str, exons: list[Exon],
                  real: list[Anchor]) -> list[Anchor]:
    """GT/AG sites inside transcript spans, same strand, that are not annotated junctions."""
    seq = sequence.upper()
    taken = {(a.position, a.strand, a.kind) for a in real}
    spans: dict[str, tuple[int, int, str]] = {}
    for exon in exons:
        if exon.contig != contig:
            continue
        lo, hi, _ = spans.get(exon.transcript, (exon.start, exon.end, exon.strand))
        spans[exon.transcript] = (min(lo, exon.start), max(hi, exon.end), exon.strand)
    decoys: dict[tuple, Anchor] = {}
    for transcript, (lo, hi, strand) in spans.items():
        hi = min(hi, len(seq))
        for kind in ("donor", "acceptor"):
            pattern, shift = _PLUS_PATTERN[(kind, strand)]
            first = seq.find(pattern, lo)
            while 0 <= first < hi - 1:
                pos = first + shift
                key = (pos, strand, kind)
                if key not in taken and key not in decoys:
                    decoys[key] = Anchor(contig, pos, strand, kind, transcript)
                first = seq.find(pattern, first + 1)
    return sorted(decoys.values(), key=lambda a: (a.position, a.kind))
