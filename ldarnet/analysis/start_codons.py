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
    The ``start_codon`` feature lines of a GENCODE GTF (paper scale). GTF coordinates are
    1-based inclusive; a codon split across an exon junction comes as two lines of the
    same transcript, and its first base in transcript orientation is taken (lowest start
    on ``+``, highest end on ``-``). Transcripts sharing a start codon give one anchor.
``longest_orf``
    The shipped demo annotation has exons only (no CDS, no start codons). Rather than
    fabricate annotations, each transcript's exons are spliced from the reference and the
    ATG that opens the **longest ORF** (at least ``min_codons`` sense codons, ending in a
    stop codon) of the spliced mRNA is mapped back to the genome. These are *inferred*
    start codons, not annotated ones, and every output says so (:data:`LABELS`).
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ldarnet.analysis.junctions import AnnotationError, Exon

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


@dataclass(frozen=True)
class StartCodon:
    """A start codon anchor: ``position`` is the 0-based genome coordinate of the A of ATG.

    ``split`` marks a GTF codon split across an exon junction (its three bases are not
    contiguous in the genome); ``orf_codons`` is the inferred ORF's length in sense codons
    (stop excluded), ``None`` for annotated codons.
    """

    contig: str
    position: int
    strand: str
    transcript: str
    gene: str
    split: bool = False
    orf_codons: int | None = None


def _attributes(text: str, where: str) -> dict[str, str]:
    """GTF column 9 (``key "value"; ...``) as a dict; malformed pairs are an error."""
    attrs = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition(" ")
        if not sep:
            raise AnnotationError(f"{where}: attribute {part!r} is not 'key \"value\"'")
        attrs[key] = value.strip().strip('"')
    return attrs


def read_gtf_start_codons(path: str | Path) -> list[StartCodon]:
    """Every distinct start codon of a GTF (plain or .gz), sorted by contig and position.

    A malformed ``start_codon`` line (not 9 tab-separated fields, non-integer or inverted
    coordinates, a strand other than ``+``/``-``, no ``transcript_id``) raises
    :class:`AnnotationError` naming the file and line. Other feature lines are only
    checked for their field count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GTF {path} does not exist")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    parts: dict[tuple[str, str], list[tuple[int, int, str, str]]] = defaultdict(list)
    with opener(path, "rt") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.startswith("#") or not line.strip():
                continue
            where = f"{path}:{line_no}"
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise AnnotationError(f"{where}: a GTF line has 9 tab-separated fields, "
                                      f"found {len(fields)}")
            if fields[2] != "start_codon":
                continue
            try:
                start, end = int(fields[3]), int(fields[4])
            except ValueError:
                raise AnnotationError(f"{where}: start and end must be integers (1-based), "
                                      f"got {fields[3]!r} and {fields[4]!r}") from None
            if start < 1 or start > end or end - start > 2:
                raise AnnotationError(f"{where}: start_codon {start}-{end} is not 1 to 3 "
                                      "bases with 1 <= start <= end")
            strand = fields[6]
            if strand not in ("+", "-"):
                raise AnnotationError(f"{where}: strand must be '+' or '-', got {strand!r}")
            attrs = _attributes(fields[8], where)
            transcript = attrs.get("transcript_id", "")
            if not transcript:
                raise AnnotationError(f"{where}: start_codon line has no transcript_id; "
                                      "GENCODE GTFs carry one on every feature line")
            gene = attrs.get("gene_name", attrs.get("gene_id", ""))
            parts[(fields[0], transcript)].append((start - 1, end, strand, gene))
    codons: dict[tuple[str, int, str], StartCodon] = {}
    for (contig, transcript), pieces in parts.items():
        strands = {s for _, _, s, _ in pieces}
        if len(strands) != 1:
            raise AnnotationError(f"{path}: start_codon lines of {transcript} lie on both "
                                  "strands")
        strand = strands.pop()
        # first base in transcript orientation (0-based): lowest start on +, highest end on -
        position = (min(s for s, _, _, _ in pieces) if strand == "+"
                    else max(e for _, e, _, _ in pieces) - 1)
        split = len(pieces) > 1 or sum(e - s for s, e, _, _ in pieces) < 3
        codons.setdefault((contig, position, strand),
                          StartCodon(contig, position, strand, transcript, pieces[0][3], split))
    if not codons:
        raise AnnotationError(f"{path}: no start_codon lines; use a GENCODE GTF with CDS "
                              "annotation, or set boundaries.start_codons: longest_orf")
    return sorted(codons.values(), key=lambda c: (c.contig, c.position, c.strand))


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
