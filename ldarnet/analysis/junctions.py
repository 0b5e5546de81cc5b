"""Splice junctions from GENCODE exons, and matched decoy sites, as analysis anchors.

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

import gzip
import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ldarnet.data.csv_table import read_csv_rows

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


class AnnotationError(ValueError):
    """An exon table or GTF that cannot be read."""


@dataclass(frozen=True)
class Exon:
    contig: str
    start: int  # 0-based, half-open
    end: int
    strand: str
    transcript: str
    gene: str


@dataclass(frozen=True)
class Anchor:
    contig: str
    position: int
    strand: str
    kind: str  # donor | acceptor
    transcript: str


_CSV_COLUMNS = ("Chromosome", "Start", "End", "Strand", "transcript_id", "gene_name")
# Dinucleotide on the plus strand, and the anchor's offset from its first base, per site.
_PLUS_PATTERN = {("donor", "+"): ("GT", 0), ("acceptor", "+"): ("AG", 2),
                 ("donor", "-"): ("AC", 1), ("acceptor", "-"): ("CT", -1)}


def read_exon_table(path: str | Path) -> list[Exon]:
    """Exons from the demo CSV (0-based Start) or a GENCODE GTF (.gtf / .gtf.gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exon annotation {path} does not exist")
    name = path.name.lower()
    exons = _read_gtf(path) if name.endswith((".gtf", ".gtf.gz")) else _read_csv(path)
    if not exons:
        raise AnnotationError(f"{path}: no exons found")
    return exons


def _read_csv(path: Path) -> list[Exon]:
    exons = []
    for row_no, row in read_csv_rows(path, _CSV_COLUMNS, AnnotationError):
        try:
            # mmsplice-style tables extend exons into the introns by an overhang, and
            # their Start is one past the 0-based start: checked on the shipped slice,
            # this convention makes 99 % of the 464 junction sites GT (donor) or AG
            # (acceptor); without the -1 the acceptors of + strand genes are random.
            start = int(row["Start"]) + int(row.get("left_overhang") or 0) - 1
            end = int(row["End"]) - int(row.get("right_overhang") or 0)
        except ValueError:
            raise AnnotationError(f"{path}:{row_no}: Start/End must be integers") from None
        if start >= end or row["Strand"] not in "+-" or not row["Strand"]:
            raise AnnotationError(f"{path}:{row_no}: bad interval or strand {row}")
        exons.append(Exon(row["Chromosome"], start, end, row["Strand"],
                          row["transcript_id"], row["gene_name"]))
    return exons


def _read_gtf(path: Path) -> list[Exon]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    exons = []
    with opener(path, "rt") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise AnnotationError(f"{path}:{line_no}: a GTF line has 9 tab-separated fields")
            if fields[2] != "exon":
                continue
            attrs = dict(
                part.strip().split(" ", 1) for part in fields[8].split(";") if part.strip()
            )
            transcript = attrs.get("transcript_id", "").strip('"')
            gene = attrs.get("gene_name", attrs.get("gene_id", "")).strip('"')
            exons.append(Exon(fields[0], int(fields[3]) - 1, int(fields[4]), fields[6],
                              transcript, gene))
    return exons


def junction_anchors(exons: list[Exon]) -> list[Anchor]:
    """Donor and acceptor anchors of every intron of every transcript (deduplicated)."""
    by_transcript: dict[str, list[Exon]] = defaultdict(list)
    for exon in exons:
        by_transcript[exon.transcript].append(exon)
    anchors: dict[tuple, Anchor] = {}
    for transcript, items in by_transcript.items():
        items.sort(key=lambda e: e.start)
        for left, right in itertools.pairwise(items):
            if right.start <= left.end:
                continue  # overlapping or touching exons: no intron
            contig, strand = left.contig, left.strand
            if strand == "+":
                pairs = (("donor", left.end), ("acceptor", right.start))
            else:  # transcript runs right to left
                pairs = (("donor", right.start - 1), ("acceptor", left.end - 1))
            for kind, pos in pairs:
                anchors.setdefault((contig, pos, strand, kind),
                                   Anchor(contig, pos, strand, kind, transcript))
    return sorted(anchors.values(), key=lambda a: (a.contig, a.position, a.kind))


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
