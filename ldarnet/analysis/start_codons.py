"""Start codons as analysis anchors: annotated (GENCODE ``start_codon``) or inferred (longest ORF).

The paper's consensus list includes the Kozak context (gccRccATGG) around translation
start codons; the release matched the string ``GCCGCC`` anywhere in promoters (spec 5.3),
which says nothing about start codons. Here the anchors are start codons themselves, in
transcript orientation, with offset 0 at the **A of ATG**:

* ``+`` strand: the codon's lowest coordinate;
* ``-`` strand: the codon's highest coordinate (the A of ATG read on the minus strand is
  the T of the plus-strand ``CAT``).

Two sources, chosen by ``boundaries.start_codons`` in the workflow config:

``gtf``
    The ``start_codon`` feature lines of a GENCODE GTF (paper scale), read by the one
    annotation reader (:func:`ldarnet.data.annotation.read_gtf_start_codons`). GTF
    coordinates are 1-based inclusive; a codon split across an exon junction comes as
    two lines of the same transcript, and its first base in transcript orientation is
    taken (lowest start on ``+``, highest end on ``-``). Transcripts sharing a start
    codon give one anchor.
``longest_orf``
    The shipped demo annotation has exons only (no CDS, no start codons). Rather than
    fabricate annotations, each transcript's exons are spliced from the reference and the
    ATG that opens the **longest ORF** (at least ``min_codons`` sense codons, ending in a
    stop codon) of the spliced mRNA is mapped back to the genome. These are *inferred*
    start codons, not annotated ones, and every output says so (:data:`LABELS`).
"""

from __future__ import annotations

from collections import defaultdict

from ldarnet.data.annotation import AnnotationError, Exon, StartCodon

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
STOPS = frozenset({"TAA", "TAG", "TGA"})
SOURCES = ("gtf", "longest_orf")
LABELS = {
    "gtf": "annotated start codons (GENCODE start_codon)",
    "longest_orf": "start codons inferred (longest ORF of GENCODE transcripts), not annotated",
}
# the same, short, for table rows
SHORT_LABELS = {"gtf": "annotated (GENCODE start_codon)",
                "longest_orf": "inferred (longest ORF), not annotated"}


def spliced_transcript(exons: list[Exon], genome: str) -> tuple[str, list[int]]:
    """The transcript's mRNA (5'→3', upper case) and the genome position of every base.

    ``exons`` are one transcript's exons on one contig; on ``-`` the mRNA is the reverse
    complement, and ``positions[i]`` is the plus-strand coordinate of mRNA base ``i``.
    """
    strand = exons[0].strand
    ordered = sorted(exons, key=lambda e: e.start, reverse=strand == "-")
    seq, positions = [], []
    for e in ordered:
        piece = genome[e.start : e.end].upper()
        coords = list(range(e.start, e.end))
        if strand == "-":
            piece, coords = piece.translate(COMPLEMENT)[::-1], coords[::-1]
        seq.append(piece)
        positions += coords
    return "".join(seq), positions


def longest_orf(mrna: str) -> tuple[int, int] | None:
    """(start, end) of the longest ATG…stop ORF of ``mrna`` (stop included), or None.

    Every frame is scanned; an ORF opens at the first ATG after the previous in-frame stop
    (the longest ORF ending at a stop starts at its most upstream ATG) and must end in a
    stop codon (an ORF running off the 3' end is not counted). Ties go to the 5'-most.
    """
    best: tuple[int, int] | None = None
    for frame in range(3):
        opened = -1
        for i in range(frame, len(mrna) - 2, 3):
            codon = mrna[i : i + 3]
            if opened < 0 and codon == "ATG":
                opened = i
            elif codon in STOPS:
                if opened >= 0:
                    orf = (opened, i + 3)
                    if best is None or (orf[1] - orf[0], -orf[0]) > (best[1] - best[0],
                                                                     -best[0]):
                        best = orf
                opened = -1
    return best


def infer_start_codons(exons: list[Exon], genome: dict[str, str],
                       min_codons: int = 100) -> list[StartCodon]:
    """The A of the ATG opening each transcript's longest ORF (>= ``min_codons`` codons).

    Transcripts on contigs missing from ``genome`` or with exons off its end are skipped;
    so are transcripts whose longest ORF is shorter than ``min_codons`` sense codons
    (likely non-coding). Anchors shared by several transcripts are kept once.
    """
    if min_codons < 1:
        raise AnnotationError(f"min_codons must be >= 1, got {min_codons}")
    by_transcript: dict[str, list[Exon]] = defaultdict(list)
    for exon in exons:
        by_transcript[exon.transcript].append(exon)
    codons: dict[tuple[str, int, str], StartCodon] = {}
    for transcript, items in sorted(by_transcript.items()):
        contig = items[0].contig
        if contig not in genome or max(e.end for e in items) > len(genome[contig]):
            continue
        mrna, positions = spliced_transcript(items, genome[contig])
        orf = longest_orf(mrna)
        if orf is None or (orf[1] - orf[0]) // 3 - 1 < min_codons:
            continue
        strand, position = items[0].strand, positions[orf[0]]
        split = abs(positions[orf[0] + 2] - position) != 2  # the ATG spans an exon junction
        codons.setdefault((contig, position, strand), StartCodon(
            contig, position, strand, transcript, items[0].gene, split=split,
            orf_codons=(orf[1] - orf[0]) // 3 - 1))
    return sorted(codons.values(), key=lambda c: (c.contig, c.position, c.strand))


def codon_at(genome: str, contig_codon: StartCodon) -> str:
    """The three genome bases from the anchor in transcript orientation (ATG for a start)."""
    p = contig_codon.position
    if contig_codon.strand == "+":
        return genome[p : p + 3].upper()
    return genome[max(0, p - 2) : p + 1].upper().translate(COMPLEMENT)[::-1]
