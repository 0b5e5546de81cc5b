"""The one reader of gene annotation: exon tables and GENCODE GTFs, and what derives from them.

Every stage that needs genes reads them here, once per file, and takes its anchors from
the same :class:`Annotation`: exons, transcripts, transcription start sites, splice
junctions and (GTF only) annotated start codons. Before, the TSS of a transcript was
computed in three places and the GTF parsed twice, each with its own checks.

Inputs (docs/inputs.md):

``*.gtf`` / ``*.gtf.gz`` (chosen by name; compression by magic bytes)
    GENCODE-style GTF: 9 tab-separated columns, 1-based inclusive coordinates
    (converted to 0-based half-open). ``exon`` and ``start_codon`` lines are used and
    checked in full (integer coordinates with ``1 <= start <= end``, strand ``+``/``-``,
    well-formed ``key "value";`` attributes, a ``transcript_id``); other feature lines
    only need 9 columns. Gene name = ``gene_name``, else ``gene_id``.
any other name: an exon table (CSV)
    Columns ``Chromosome, Start, End, Strand, transcript_id, gene_name`` (optionally
    ``left_overhang``/``right_overhang``), as shipped with the demo (mmsplice layout:
    ``Start`` is one past the 0-based start, and the overhangs extend exons into introns).

Refused (one :class:`AnnotationError` naming ``file:line``): malformed lines as above, an
empty interval, a transcript with exons on both strands of a contig, a file without
exons (when exons are asked for) or without start codons (when those are asked for).
Normalised, with a note: a Windows line ending is removed; a transcript ID used on two
contigs (pseudo-autosomal copies) is kept apart as ``ID@contig`` on the later contig.

Derived once:

* **TSS** of a transcript: the 5'-most base of its exons in transcript orientation
  (lowest start on ``+``, highest end − 1 on ``-``), 0-based;
* **junctions**: donor (first intron base, the G of GT) and acceptor (first exon base
  after AG) anchors of every intron, in transcript orientation (:func:`junction_anchors`);
* **start codons** (GTF): offset 0 at the A of ATG, a codon split across an exon
  junction taking its first base in transcript orientation; one anchor per position.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import itertools
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ldarnet.foundation.csv_table import open_table, read_csv_rows
from ldarnet.foundation.errors import InputError, MissingInputError, note

EXON_COLUMNS = ("Chromosome", "Start", "End", "Strand", "transcript_id", "gene_name")
GTF_SUFFIXES = (".gtf", ".gtf.gz")
STRANDS = ("+", "-")


class AnnotationError(InputError):
    """An exon table or GTF that cannot be read (the message names ``file:line``)."""


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
    """A splice junction anchor (see the module docstring) in transcript orientation."""

    contig: str
    position: int
    strand: str
    kind: str  # donor | acceptor
    transcript: str


@dataclass(frozen=True)
class Tss:
    """The transcription start site of one transcript (0-based, transcript orientation)."""

    contig: str
    position: int
    strand: str
    transcript: str
    gene: str


@dataclass(frozen=True)
class StartCodon:
    """A start codon anchor: ``position`` is the 0-based genome coordinate of the A of ATG.

    ``split`` marks a GTF codon split across an exon junction (its three bases are not
    contiguous in the genome); ``orf_codons`` is an inferred ORF's length in sense codons
    (stop excluded), ``None`` for annotated codons.
    """

    contig: str
    position: int
    strand: str
    transcript: str
    gene: str
    split: bool = False
    orf_codons: int | None = None


@dataclass
class Annotation:
    """The exons (and GTF start codons) of one annotation file, and what derives from them."""

    path: Path
    exons: list[Exon]
    start_codons: list[StartCodon] | None  # None: the format has none (exon table)
    _derived: dict = field(default_factory=dict, repr=False)

    def require_exons(self) -> list[Exon]:
        """The exons; an annotation without any is an error (nothing to anchor on)."""
        if not self.exons:
            raise AnnotationError(f"{self.path}: no exons found; expected GTF 'exon' lines or "
                                  f"an exon table with columns {', '.join(EXON_COLUMNS)}")
        return self.exons

    def require_start_codons(self) -> list[StartCodon]:
        """The annotated start codons; an annotation without any is an error."""
        if not self.start_codons:
            raise AnnotationError(f"{self.path}: no start_codon lines; use a GENCODE GTF with "
                                  "CDS annotation, or set boundaries.start_codons: longest_orf")
        return self.start_codons

    def genes(self) -> set[str]:
        """Every gene name of the exons."""
        return {e.gene for e in self.exons}

    def gene_tss(self, gene: str) -> tuple[str, int, str]:
        """(contig, 0-based TSS, strand) of ``gene``: the most common TSS of its transcripts."""
        starts = [(t.contig, t.position, t.strand) for t in self.tss() if t.gene == gene]
        if not starts:
            raise AnnotationError(f"gene {gene!r} is not in the annotation {self.path} "
                                  f"({self.gene_hint()})")
        return Counter(starts).most_common(1)[0][0]

    def gene_hint(self, limit: int = 8) -> str:
        """How many genes there are, with a few names (for 'unknown gene' messages)."""
        names = sorted(self.genes())
        return f"{len(names)} genes, e.g. {', '.join(names[:limit])}"

    def tss(self) -> list[Tss]:
        """One TSS per transcript, transcripts in order of first appearance in the file."""
        if "tss" not in self._derived:
            self._derived["tss"] = transcript_tss(self.exons)
        return self._derived["tss"]

    def junctions(self) -> list[Anchor]:
        """Donor and acceptor anchors of every intron (see :func:`junction_anchors`)."""
        if "junctions" not in self._derived:
            self._derived["junctions"] = junction_anchors(self.exons)
        return self._derived["junctions"]


# ------------------------------------------------------------------------------ derived
def transcript_tss(exons: list[Exon]) -> list[Tss]:
    """One TSS per transcript of ``exons``, in order of the transcripts' first exon."""
    spans: dict[str, list] = {}
    for e in exons:
        span = spans.get(e.transcript)
        if span is None:
            spans[e.transcript] = [e.contig, e.start, e.end, e.strand, e.gene]
        else:
            span[1], span[2] = min(span[1], e.start), max(span[2], e.end)
    return [Tss(contig, lo if strand == "+" else hi - 1, strand, transcript, gene)
            for transcript, (contig, lo, hi, strand, gene) in spans.items()]


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


# ------------------------------------------------------------------------------ reading
_CACHE: dict[tuple, Annotation] = {}


def read_annotation(path: str | Path) -> Annotation:
    """The annotation in ``path`` (GTF by name, else exon table), parsed once per file version.

    A process that asks twice (exons, then start codons of the same GTF) parses once; the
    cache key includes the file's size and modification time, so an edited file is read
    again.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"annotation {path} does not exist")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        reader = _read_gtf if path.name.lower().endswith(GTF_SUFFIXES) else _read_exon_csv
        annotation = reader(path)
        _check_transcripts(annotation)
        _CACHE.clear()  # one annotation per process is what the commands need
        _CACHE[key] = annotation
    return _CACHE[key]


def read_exon_table(path: str | Path) -> list[Exon]:
    """The exons of an exon table or GTF; a file without exons is an error."""
    return read_annotation(path).require_exons()


def read_gtf_start_codons(path: str | Path) -> list[StartCodon]:
    """Every distinct annotated start codon of a GTF, sorted by contig and position."""
    path = Path(path)
    if path.is_file() and not path.name.lower().endswith(GTF_SUFFIXES):
        raise AnnotationError(f"start codons need a GTF (.gtf/.gtf.gz), got {path}; an exon "
                              "table has no start codons: use boundaries.start_codons: "
                              "longest_orf (inferred, labelled so)")
    return read_annotation(path).require_start_codons()


def _check_transcripts(annotation: Annotation) -> None:
    """A transcript lies on one contig and one strand (else its TSS and introns are void).

    The same ``transcript_id`` on two contigs is a copy, not one transcript: GENCODE
    annotates the pseudo-autosomal genes on chrX and chrY, and depending on the release
    the chrY copy has its own ID or the same one. Copies on a later contig (in file
    order) are renamed ``ID@contig``, with a note, so that no transcript spans two
    contigs. Two strands on one contig is a malformed annotation and is refused.
    """
    home: dict[str, tuple[str, str]] = {}
    renamed: set[str] = set()
    exons = []
    for e in annotation.exons:
        contig, strand = home.setdefault(e.transcript, (e.contig, e.strand))
        if contig != e.contig:
            renamed.add(e.transcript)
            e = dataclasses.replace(e, transcript=f"{e.transcript}@{e.contig}")
            contig, strand = home.setdefault(e.transcript, (e.contig, e.strand))
        if strand != e.strand:
            raise AnnotationError(
                f"{annotation.path}: transcript {e.transcript!r} has exons on both strands of "
                f"{e.contig}; a transcript lies on one strand: fix the annotation")
        exons.append(e)
    if renamed:
        annotation.exons = exons
        if annotation.start_codons:
            annotation.start_codons = [
                dataclasses.replace(c, transcript=f"{c.transcript}@{c.contig}")
                if c.transcript in home and home[c.transcript][0] != c.contig else c
                for c in annotation.start_codons]
        note(f"{annotation.path}: {len(renamed):,} transcript ID(s) occur on two contigs "
             "(e.g. pseudo-autosomal copies); the later copies are kept apart as ID@contig")


def _decode_guard(path: Path, read):
    """Run ``read()``; undecodable or truncated input becomes one AnnotationError."""
    try:
        return read()
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error, csv.Error) as err:
        raise AnnotationError(f"{path}: not a readable text annotation ({err}); download or "
                              "copy it again") from None


def _integer(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.lstrip("-").isdigit() else None


def _read_exon_csv(path: Path) -> Annotation:
    exons = []
    for line, row in read_csv_rows(path, EXON_COLUMNS, AnnotationError, what="exon table"):
        where = f"{path}:{line}"
        values = [_integer(row.get(k) or "0") for k in
                  ("Start", "End", "left_overhang", "right_overhang")]
        if None in values or not row["Start"] or not row["End"]:
            raise AnnotationError(f"{where}: Start/End (and overhangs) must be integers, got "
                                  f"{row['Start']!r}/{row['End']!r}")
        start_1, end, left, right = values
        # mmsplice-style tables extend exons into the introns by an overhang, and their
        # Start is one past the 0-based start: checked on the shipped slice, this
        # convention makes 99 % of the 464 junction sites GT (donor) or AG (acceptor);
        # without the -1 the acceptors of + strand genes are random.
        start, end = start_1 + left - 1, end - right
        strand = row["Strand"]
        if strand not in STRANDS:
            raise AnnotationError(f"{where}: strand must be '+' or '-', got {strand!r}")
        if not 0 <= start < end:
            raise AnnotationError(f"{where}: empty or negative exon interval {start}-{end} "
                                  "(0-based, after overhangs)")
        if not row["transcript_id"] or not row["Chromosome"]:
            raise AnnotationError(f"{where}: Chromosome and transcript_id must not be empty")
        exons.append(Exon(row["Chromosome"], start, end, strand, row["transcript_id"],
                          row["gene_name"] or ""))
    return Annotation(path, exons, None)


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


def _read_gtf(path: Path) -> Annotation:
    def read() -> tuple[list[Exon], list[StartCodon], int]:
        exons: list[Exon] = []
        parts: dict[tuple[str, str], list[tuple[int, int, str, str]]] = defaultdict(list)
        carriage_returns = 0
        with open_table(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if line.startswith("#") or not line.strip():
                    continue
                where = f"{path}:{line_no}"
                text = line.rstrip("\n")
                if text.endswith("\r"):
                    text, carriage_returns = text[:-1], carriage_returns + 1
                fields = text.split("\t")
                if len(fields) != 9:
                    raise AnnotationError(f"{where}: a GTF line has 9 tab-separated fields, "
                                          f"found {len(fields)}")
                feature = fields[2]
                if feature not in ("exon", "start_codon"):
                    continue
                start, end = _integer(fields[3]), _integer(fields[4])
                if start is None or end is None:
                    raise AnnotationError(f"{where}: start and end must be integers (1-based), "
                                          f"got {fields[3]!r} and {fields[4]!r}")
                if feature == "exon" and not 1 <= start <= end:
                    raise AnnotationError(f"{where}: exon {start}-{end} needs "
                                          "1 <= start <= end (1-based, inclusive)")
                if feature == "start_codon" and not (1 <= start <= end and end - start <= 2):
                    raise AnnotationError(f"{where}: start_codon {start}-{end} is not 1 to 3 "
                                          "bases with 1 <= start <= end")
                strand = fields[6]
                if strand not in STRANDS:
                    raise AnnotationError(f"{where}: strand must be '+' or '-', got {strand!r}")
                attrs = _attributes(fields[8], where)
                transcript = attrs.get("transcript_id", "")
                if not transcript:
                    raise AnnotationError(f"{where}: {feature} line has no transcript_id; "
                                          "GENCODE GTFs carry one on every feature line")
                gene = attrs.get("gene_name", attrs.get("gene_id", ""))
                if feature == "exon":
                    exons.append(Exon(fields[0], start - 1, end, strand, transcript, gene))
                else:
                    parts[(fields[0], transcript)].append((start - 1, end, strand, gene))
        return exons, _start_codons(path, parts), carriage_returns

    exons, codons, carriage_returns = _decode_guard(path, read)
    if carriage_returns:
        note(f"{path}: Windows line endings: {carriage_returns:,} carriage return(s) removed")
    return Annotation(path, exons, codons)


def _start_codons(path: Path, parts: dict[tuple[str, str], list[tuple[int, int, str, str]]]
                  ) -> list[StartCodon]:
    """One anchor per distinct start codon position, sorted by contig and position."""
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
    return sorted(codons.values(), key=lambda c: (c.contig, c.position, c.strand))
