"""Demo tasks derived from the real GENCODE annotation of the shipped hg38 slice.

The NT splice and promoter tasks cannot be shipped, but the demo slice
(``resources/demo/hg38/chr2_1-2333275.fa.gz``) comes with its real GENCODE exons
(``resources/demo/gencode/exons_chr2_1-2333275.csv``, 244 transcripts) and canonical
transcripts (``canonical_transcripts_chr2_1-2333275.tsv``). From them this module
derives small tasks of the same shape as NT's, so that the demo fine-tunes on real
biology rather than on random strings. They are *derived* tasks, not NT: every table
built from them must say so (``kind: derived`` in the task manifest).

Splice sites (``splice_windows``)
    Annotated sites are the donor and acceptor anchors of every intron of every
    transcript in the exon table (:func:`ldarnet.analysis.junctions.junction_anchors`):
    the donor anchor is the first intron base (the G of GT), the acceptor anchor the
    first exon base after the intron (just after AG), in transcript orientation. A
    window of ``window`` bp (600 like NT's acceptor/donor tasks, 400 for ``all`` like
    splice_sites_all) is cut so that the anchor sits at index ``window // 2`` of the
    sequence in transcript orientation (reverse-complemented on '-'): the exon/intron
    junction lies exactly between indices ``window//2 - 1`` and ``window//2``, so a donor
    window reads ``GT`` at ``[w//2 : w//2+2]`` and an acceptor window ``AG`` at
    ``[w//2-2 : w//2]``. Only canonical sites (GT donors, AG acceptors: 458 of 464 on the
    slice) are kept, so positives and negatives share the same core dinucleotide and
    the task is about the context, as in NT's data. Negatives are windows centred the
    same way on GT (donor task) / AG (acceptor task) dinucleotides of either strand of
    the same sequence that are not annotated sites and lie at least ``min_distance``
    (50) bp from every annotated site of any kind and strand; they are drawn with a
    seeded RNG, as many as there are positives in each split (1:1). ``site: all`` gives
    the three classes of NT's splice_sites_all: **0 = neither (decoy), 1 = donor,
    2 = acceptor**; its negatives (half GT, half AG decoys) number the mean of the
    donor and acceptor counts, so the three classes are about balanced.

Promoters (``promoter_windows``)
    Positives are the 300 bp windows -249..+50 around a transcription start site (TSS)
    on the transcript strand, like EPD/NT promoters (the TSS is index 249). TSSs come
    from the canonical transcripts (``+``: TX_START, ``-``: TX_END - 1; 0-based) and/or
    from every transcript of the exon table (first base of its first exon); TSSs closer
    than ``tss_spacing`` (100) bp to an already kept one on the same strand are merged
    (canonical ones first), so near-identical windows of alternative transcripts do not
    inflate the task. Negatives are 300 bp windows of the same sequence that do not
    overlap any TSS ±``exclusion`` (1 kb, all TSSs before merging), do not overlap each
    other, have a random orientation, and are drawn 1:1 with a seeded RNG.

Shared rules
    Windows containing any base other than A, C, G, T (N included; soft-masked
    lower case is upper-cased) or falling off the sequence are dropped. The train/test
    split is by genomic position so that nothing leaks: on each contig the cut is at
    ``round(length * (1 - test_fraction))`` (test_fraction 0.2: the last 20 % of the
    slice is test); a window lying wholly below the cut is train, wholly at or above it
    test, and windows crossing it are dropped, so no base is shared between splits.
    Every count (annotated, dropped and why, per split and kind, the cut) is returned
    in ``stats`` for the task manifest.

The reference is read whole into memory by the one FASTA reader
(:func:`ldarnet.data.fasta.read_fasta`), and the exons, junctions and TSSs come from the one
annotation reader (:mod:`ldarnet.data.annotation`): these tasks are meant for the 2.3 Mb
demo slice, where scanning for every GT/AG is instant.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ldarnet.data.annotation import Anchor, junction_anchors, read_annotation, read_exon_table
from ldarnet.data.fasta import read_fasta
from ldarnet.foundation.csv_table import open_table
from ldarnet.tasks.task_data import TaskDataError

SPLICE_SITES = ("donor", "acceptor", "all")
SPLICE_LABELS = {"decoy": 0, "donor": 1, "acceptor": 2}  # site "all"; 2-class tasks: 0/1
CORE = {"donor": "GT", "acceptor": "AG"}
# plus-strand dinucleotide of a site on each strand, and the anchor's offset from its first base
_PLUS_PATTERN = {("donor", "+"): ("GT", 0), ("acceptor", "+"): ("AG", 2),
                 ("donor", "-"): ("AC", 1), ("acceptor", "-"): ("CT", -1)}
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
_ACGT = np.zeros(256, dtype=bool)
_ACGT[[ord(b) for b in "ACGT"]] = True


class DerivedTaskError(TaskDataError):
    """Inputs from which a derived task cannot be built (the message says what to change)."""


@dataclass(frozen=True)
class Window:
    """One derived example: a genome interval, its label and its transcript-oriented sequence.

    ``start``/``end`` are 0-based half-open on ``contig``; ``anchor`` is the genome
    position at index ``centre`` of ``sequence`` (a splice anchor or a TSS).
    """

    contig: str
    start: int
    end: int
    strand: str
    anchor: int
    centre: int
    kind: str  # donor | acceptor | decoy_donor | decoy_acceptor | promoter | background
    label: int
    split: str  # train | test
    sequence: str


@dataclass
class DerivedTask:
    """The windows of a derived task, the counts behind them and a note for the manifest."""

    windows: list[Window]
    stats: dict = field(default_factory=dict)
    note: str = ""

    def split(self, name: str) -> list[Window]:
        """The windows of split ``name`` (``train`` or ``test``), in build order."""
        return [w for w in self.windows if w.split == name]


def _reference(fasta: str | Path) -> dict[str, str]:
    path = Path(fasta)
    if not path.is_file():
        raise DerivedTaskError(f"reference FASTA {path} does not exist")
    return {name: seq.upper() for name, seq in read_fasta(path).items()}


def _cuts(ref: dict[str, str], test_fraction: float) -> dict[str, int]:
    if not 0.0 < test_fraction < 1.0:
        raise DerivedTaskError(f"test_fraction {test_fraction} must be between 0 and 1 "
                               "(exclusive), e.g. 0.2 for the last 20 % of each contig")
    return {name: round(len(seq) * (1.0 - test_fraction)) for name, seq in ref.items()}


def _split_of(start: int, end: int, cut: int) -> str | None:
    if end <= cut:
        return "train"
    if start >= cut:
        return "test"
    return None


def _oriented(seq: str, start: int, end: int, strand: str) -> str:
    piece = seq[start:end]
    return piece.translate(_COMPLEMENT)[::-1] if strand == "-" else piece


def _window_bounds(anchor: int, strand: str, width: int, centre: int) -> tuple[int, int]:
    """Genome interval whose transcript-oriented index ``centre`` is ``anchor``."""
    if strand == "+":
        start = anchor - centre
        return start, start + width
    end = anchor + centre + 1
    return end - width, end


class _BadBases:
    """O(1) 'does [start, end) hold a non-ACGT base' queries via a prefix sum."""

    def __init__(self, seq: str) -> None:
        arr = np.frombuffer(seq.encode("latin-1"), dtype=np.uint8)
        self.prefix = np.concatenate([[0], np.cumsum(~_ACGT[arr], dtype=np.int64)])
        self.length = len(seq)

    def bad(self, start: int | np.ndarray, end: int | np.ndarray) -> bool | np.ndarray:
        return self.prefix[end] - self.prefix[start] > 0


def _check_window_args(width: int, what: str) -> None:
    if not isinstance(width, int) or isinstance(width, bool) or width < 4:
        raise DerivedTaskError(f"{what} {width!r} must be an integer number of bp >= 4")


# --------------------------------------------------------------------------------------
# splice sites
# --------------------------------------------------------------------------------------


def splice_windows(exons: str | Path, fasta: str | Path, site: str, window: int = 600, *,
                   test_fraction: float = 0.2, min_distance: int = 50,
                   seed: int = 0) -> DerivedTask:
    """Splice-site windows (positives) and matched GT/AG decoys; see the module docstring.

    ``site`` is ``donor`` or ``acceptor`` (labels 0 = decoy, 1 = site) or ``all``
    (0 = decoy, 1 = donor, 2 = acceptor).
    """
    if site not in SPLICE_SITES:
        raise DerivedTaskError(f"site {site!r} is not one of {SPLICE_SITES}")
    _check_window_args(window, "window")
    if min_distance < 0:
        raise DerivedTaskError(f"min_distance {min_distance} must be >= 0")
    ref = _reference(fasta)
    cuts = _cuts(ref, test_fraction)
    all_exons = read_exon_table(exons)
    used = [e for e in all_exons if e.contig in ref]
    if not used:
        contigs = sorted({e.contig for e in all_exons})[:10]
        raise DerivedTaskError(f"no exon of {exons} lies on a record of {fasta} (exon contigs "
                               f"{contigs}, FASTA records {sorted(ref)[:10]}); use matching "
                               "names (e.g. chr2 in both)")
    anchors = junction_anchors(used)
    kinds = ("donor", "acceptor") if site == "all" else (site,)
    labels = ({"decoy": 0, "donor": 1, "acceptor": 2} if site == "all"
              else {"decoy": 0, site: 1})
    centre = window // 2
    rng = np.random.default_rng(seed)

    dropped: Counter[str] = Counter()
    positives: list[Window] = []
    for anchor in anchors:
        if anchor.kind not in kinds:
            continue
        win = _anchor_window(ref, anchor, window, centre, cuts, dropped)
        if win is None:
            continue
        if not _core_ok(win.sequence, anchor.kind, centre):
            dropped[f"{anchor.kind}_non_canonical"] += 1
            continue
        positives.append(Window(win.contig, win.start, win.end, win.strand, win.anchor,
                                centre, anchor.kind, labels[anchor.kind], win.split,
                                win.sequence))

    per_split = Counter((w.split, w.kind) for w in positives)
    annotated = _annotated_positions(anchors)
    negatives: list[Window] = []
    pools: dict[str, int] = {}
    for split in ("train", "test"):
        if site == "all":
            total = round((per_split[(split, "donor")] + per_split[(split, "acceptor")]) / 2)
            wanted = {"donor": total - total // 2, "acceptor": total // 2}
        else:
            wanted = {site: per_split[(split, site)]}
        for kind, n in wanted.items():
            if n == 0:
                continue
            pool = _decoy_pool(ref, cuts, annotated, kind, split, window, centre, min_distance)
            pools[f"{split}_{kind}"] = len(pool)
            if len(pool) < n:
                raise DerivedTaskError(f"only {len(pool)} {kind} decoy sites in the {split} "
                                       f"part of {fasta}, {n} needed; lower min_distance or "
                                       "test_fraction")
            chosen = sorted(rng.choice(len(pool), size=n, replace=False).tolist())
            for i in chosen:
                contig, pos, strand = pool[i]
                start, end = _window_bounds(pos, strand, window, centre)
                negatives.append(Window(contig, start, end, strand, pos, centre,
                                        f"decoy_{kind}", labels["decoy"], split,
                                        _oriented(ref[contig], start, end, strand)))

    windows = positives + negatives
    counts = Counter((w.split, w.kind) for w in windows)
    stats = {
        "site": site,
        "window": window,
        "centre_index": centre,
        "test_fraction": test_fraction,
        "min_distance": min_distance,
        "seed": seed,
        "labels": {kind: value for kind, value in labels.items()},
        "cut": {contig: cuts[contig] for contig in sorted({a.contig for a in anchors})},
        "annotated_sites": dict(Counter(a.kind for a in anchors)),
        "dropped_sites": dict(sorted(dropped.items())),
        "decoy_pool_sizes": pools,
        "windows": {f"{split}/{kind}": n for (split, kind), n in sorted(counts.items())},
    }
    cut_text = ", ".join(f"{c}:{p:,}" for c, p in stats["cut"].items())
    note = (f"GENCODE-derived {site} splice-site task from {exons} on {fasta} (not NT data): "
            f"{window} bp windows with the exon/intron junction at index {centre}, canonical "
            f"GT/AG sites vs. unannotated GT/AG decoys >= {min_distance} bp from any "
            f"annotated site, 1:1, seed {seed}. Split by genomic position: windows wholly "
            f"before {cut_text} are train, wholly after test, windows crossing the cut "
            "dropped, so train and test share no bases.")
    return DerivedTask(windows, stats, note)


@dataclass(frozen=True)
class _Cut:
    contig: str
    start: int
    end: int
    strand: str
    anchor: int
    split: str
    sequence: str


def _anchor_window(ref: dict[str, str], anchor: Anchor, width: int, centre: int,
                   cuts: dict[str, int], dropped: Counter[str]) -> _Cut | None:
    seq = ref[anchor.contig]
    start, end = _window_bounds(anchor.position, anchor.strand, width, centre)
    if start < 0 or end > len(seq):
        dropped[f"{anchor.kind}_off_sequence"] += 1
        return None
    piece = _oriented(seq, start, end, anchor.strand)
    if not _ACGT[np.frombuffer(piece.encode("latin-1"), dtype=np.uint8)].all():
        dropped[f"{anchor.kind}_non_acgt"] += 1
        return None
    split = _split_of(start, end, cuts[anchor.contig])
    if split is None:
        dropped[f"{anchor.kind}_crosses_split"] += 1
        return None
    return _Cut(anchor.contig, start, end, anchor.strand, anchor.position, split, piece)


def _core_ok(sequence: str, kind: str, centre: int) -> bool:
    if kind == "donor":
        return sequence[centre : centre + 2] == CORE["donor"]
    return sequence[centre - 2 : centre] == CORE["acceptor"]


def _annotated_positions(anchors: Iterable[Anchor]) -> dict[str, np.ndarray]:
    by_contig: dict[str, set[int]] = {}
    for anchor in anchors:
        by_contig.setdefault(anchor.contig, set()).add(anchor.position)
    return {contig: np.array(sorted(p), dtype=np.int64) for contig, p in by_contig.items()}


def _distance_to_nearest(positions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Distance from each of ``positions`` to the nearest of sorted ``targets``."""
    if targets.size == 0:
        return np.full(positions.shape, np.iinfo(np.int64).max, dtype=np.int64)
    idx = np.searchsorted(targets, positions)
    right = targets[np.minimum(idx, targets.size - 1)]
    left = targets[np.maximum(idx - 1, 0)]
    return np.minimum(np.abs(positions - left), np.abs(right - positions))


def _decoy_pool(ref: dict[str, str], cuts: dict[str, int], annotated: dict[str, np.ndarray],
                kind: str, split: str, width: int, centre: int,
                min_distance: int) -> list[tuple[str, int, str]]:
    """Unannotated ``kind`` dinucleotide anchors (both strands) usable in ``split``."""
    pool: list[tuple[str, int, str]] = []
    for contig in sorted(ref):
        seq = ref[contig]
        arr = np.frombuffer(seq.encode("latin-1"), dtype=np.uint8)
        bad = _BadBases(seq)
        targets = annotated.get(contig, np.empty(0, dtype=np.int64))
        for strand in ("+", "-"):
            pattern, shift = _PLUS_PATTERN[(kind, strand)]
            hits = np.nonzero((arr[:-1] == ord(pattern[0])) & (arr[1:] == ord(pattern[1])))[0]
            anchors = hits.astype(np.int64) + shift
            starts = anchors - centre if strand == "+" else anchors + centre + 1 - width
            ends = starts + width
            keep = (starts >= 0) & (ends <= len(seq))
            anchors, starts, ends = anchors[keep], starts[keep], ends[keep]
            keep = ~bad.bad(starts, ends)
            keep &= _distance_to_nearest(anchors, targets) >= max(min_distance, 1)
            keep &= (ends <= cuts[contig]) if split == "train" else (starts >= cuts[contig])
            pool.extend((contig, int(a), strand) for a in anchors[keep])
    return pool


# --------------------------------------------------------------------------------------
# promoters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tss:
    contig: str
    position: int  # 0-based genome coordinate of the first transcribed base
    strand: str
    source: str  # canonical | exons
    name: str


def read_canonical_transcripts(path: str | Path) -> list[Tss]:
    """TSSs of a SpliceAI-style canonical transcript table (NAME CHROM STRAND TX_START ...).

    Coordinates are 0-based half-open (checked on the slice: every intron
    ``[EXON_END[i], EXON_START[i+1])`` reads GT...AG on its strand), so the TSS is
    TX_START on '+' and TX_END - 1 on '-'. CHROM is kept as written (``2``); callers
    match it to FASTA names (``chr2``).
    """
    path = Path(path)
    if not path.is_file():
        raise DerivedTaskError(f"canonical transcript table {path} does not exist")
    result = []
    try:
        with open_table(path) as fh:
            rows = csv.reader(fh, delimiter="\t")
            for line, row in enumerate(rows, start=1):
                if not row or row[0].startswith("#") or not "".join(row).strip():
                    continue
                try:
                    name, chrom, strand, tx_start, tx_end = row[:5]
                    start, end = int(tx_start), int(tx_end)
                except ValueError:
                    raise DerivedTaskError(f"{path}:{line}: expected NAME CHROM STRAND TX_START "
                                           "TX_END ... with integer coordinates") from None
                if strand not in ("+", "-") or start >= end:
                    raise DerivedTaskError(f"{path}:{line}: bad strand {strand!r} or interval")
                result.append(Tss(chrom, start if strand == "+" else end - 1, strand,
                                  "canonical", name))
    except (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DerivedTaskError(f"{path}: not a readable text table ({err})") from None
    if not result:
        raise DerivedTaskError(f"{path}: no transcripts")
    return result


def exon_table_tss(path: str | Path) -> list[Tss]:
    """One TSS per transcript of an exon table (the annotation reader's), by transcript name."""
    annotation = read_annotation(path)
    annotation.require_exons()
    return [Tss(t.contig, t.position, t.strand, "exons", t.transcript)
            for t in sorted(annotation.tss(), key=lambda t: t.transcript)]


def _contig_name(name: str, ref: dict[str, str]) -> str | None:
    for candidate in (name, f"chr{name}", name.removeprefix("chr")):
        if candidate in ref:
            return candidate
    return None


def promoter_windows(fasta: str | Path, *, exons: str | Path | None = None,
                     transcripts: str | Path | None = None, upstream: int = 249,
                     downstream: int = 50, exclusion: int = 1000, tss_spacing: int = 100,
                     test_fraction: float = 0.2, seed: int = 0) -> DerivedTask:
    """Promoter windows around TSSs (label 1) and matched background (label 0).

    At least one of ``exons`` (every transcript) / ``transcripts`` (canonical table)
    must be given. See the module docstring for the derivation.
    """
    if exons is None and transcripts is None:
        raise DerivedTaskError("a promoter task needs TSSs: give exons (exon table) and/or "
                               "transcripts (canonical transcript table)")
    if upstream < 0 or downstream < 0 or exclusion < 0 or tss_spacing < 0:
        raise DerivedTaskError("upstream, downstream, exclusion and tss_spacing must be >= 0")
    width = upstream + downstream + 1
    ref = _reference(fasta)
    cuts = _cuts(ref, test_fraction)
    raw: list[Tss] = []
    if transcripts is not None:
        raw += read_canonical_transcripts(transcripts)
    if exons is not None:
        raw += exon_table_tss(exons)
    tss: list[Tss] = []
    for item in raw:
        contig = _contig_name(item.contig, ref)
        if contig is not None:
            tss.append(Tss(contig, item.position, item.strand, item.source, item.name))
    if not tss:
        raise DerivedTaskError(f"no TSS lies on a record of {fasta} (records "
                               f"{sorted(ref)[:10]}); use matching contig names")

    # merge TSSs closer than tss_spacing on the same strand (canonical first)
    kept: dict[tuple[str, str], list[int]] = {}
    merged: list[Tss] = []
    for item in sorted(tss, key=lambda t: (t.source != "canonical", t.contig, t.position)):
        positions = kept.setdefault((item.contig, item.strand), [])
        i = bisect.bisect_left(positions, item.position)
        near = [positions[j] for j in (i - 1, i) if 0 <= j < len(positions)]
        if any(abs(p - item.position) < max(tss_spacing, 1) for p in near):
            continue
        positions.insert(i, item.position)
        merged.append(item)

    dropped: Counter[str] = Counter()
    positives: list[Window] = []
    for item in sorted(merged, key=lambda t: (t.contig, t.position, t.strand)):
        seq = ref[item.contig]
        start, end = _window_bounds(item.position, item.strand, width, upstream)
        if start < 0 or end > len(seq):
            dropped["promoter_off_sequence"] += 1
            continue
        piece = _oriented(seq, start, end, item.strand)
        if not _ACGT[np.frombuffer(piece.encode("latin-1"), dtype=np.uint8)].all():
            dropped["promoter_non_acgt"] += 1
            continue
        split = _split_of(start, end, cuts[item.contig])
        if split is None:
            dropped["promoter_crosses_split"] += 1
            continue
        positives.append(Window(item.contig, start, end, item.strand, item.position,
                                upstream, "promoter", 1, split, piece))

    rng = np.random.default_rng(seed)
    negatives: list[Window] = []
    pools: dict[str, int] = {}
    for split in ("train", "test"):
        n = sum(w.split == split for w in positives)
        if n == 0:
            continue
        pool = _background_pool(ref, cuts, tss, split, width, exclusion)
        pools[split] = int(sum(len(starts) for _, starts in pool))
        chosen = _draw_non_overlapping(pool, n, width, rng)
        if len(chosen) < n:
            raise DerivedTaskError(f"only {len(chosen)} non-overlapping background windows "
                                   f"in the {split} part of {fasta}, {n} needed; lower "
                                   "exclusion or test_fraction")
        for contig, start in chosen:
            strand = "-" if rng.random() < 0.5 else "+"
            negatives.append(Window(contig, start, start + width, strand,
                                    start + (width - 1 - upstream if strand == "-" else upstream),
                                    upstream, "background", 0, split,
                                    _oriented(ref[contig], start, start + width, strand)))

    windows = positives + negatives
    counts = Counter((w.split, w.kind) for w in windows)
    stats = {
        "window": width,
        "upstream": upstream,
        "downstream": downstream,
        "exclusion": exclusion,
        "tss_spacing": tss_spacing,
        "test_fraction": test_fraction,
        "seed": seed,
        "labels": {"background": 0, "promoter": 1},
        "cut": {contig: cuts[contig] for contig in sorted({t.contig for t in tss})},
        "tss": dict(Counter(t.source for t in tss)),
        "tss_after_merging": len(merged),
        "dropped_sites": dict(sorted(dropped.items())),
        "background_pool_sizes": pools,
        "windows": {f"{split}/{kind}": n for (split, kind), n in sorted(counts.items())},
    }
    cut_text = ", ".join(f"{c}:{p:,}" for c, p in stats["cut"].items())
    sources = " and ".join(str(p) for p in (transcripts, exons) if p is not None)
    note = (f"GENCODE-derived promoter task from {sources} on {fasta} (not NT/EPD data): "
            f"{width} bp windows -{upstream}..+{downstream} around TSSs (merged within "
            f"{tss_spacing} bp) vs. background windows not within {exclusion} bp of any TSS, "
            f"1:1, seed {seed}. Split by genomic position: windows wholly before {cut_text} "
            "are train, wholly after test, windows crossing the cut dropped, so train and "
            "test share no bases.")
    return DerivedTask(windows, stats, note)


def _background_pool(ref: dict[str, str], cuts: dict[str, int], tss: list[Tss], split: str,
                     width: int, exclusion: int) -> list[tuple[str, np.ndarray]]:
    """Per contig, the window starts of ``split`` clear of N and of every TSS ± exclusion."""
    pool = []
    for contig in sorted(ref):
        seq = ref[contig]
        if len(seq) < width:
            continue
        starts = np.arange(len(seq) - width + 1, dtype=np.int64)
        ok = ~_BadBases(seq).bad(starts, starts + width)
        for item in tss:
            if item.contig == contig:
                lo = max(item.position - exclusion - width + 1, 0)
                ok[lo : item.position + exclusion + 1] = False
        cut = cuts[contig]
        ok &= (starts + width <= cut) if split == "train" else (starts >= cut)
        if ok.any():
            pool.append((contig, starts[ok]))
    return pool


def _draw_non_overlapping(pool: list[tuple[str, np.ndarray]], n: int, width: int,
                          rng: np.random.Generator) -> list[tuple[str, int]]:
    """``n`` windows drawn uniformly from ``pool``, rejecting overlaps with earlier draws."""
    if not pool:
        return []
    contig_ids = np.concatenate([np.full(len(starts), i) for i, (_, starts) in enumerate(pool)])
    all_starts = np.concatenate([starts for _, starts in pool])
    taken: dict[int, list[int]] = {}
    chosen: list[tuple[str, int]] = []
    for i in rng.permutation(len(all_starts)):
        cid, start = int(contig_ids[i]), int(all_starts[i])
        starts = taken.setdefault(cid, [])
        j = bisect.bisect_left(starts, start)
        if (j > 0 and start - starts[j - 1] < width) or (
            j < len(starts) and starts[j] - start < width
        ):
            continue
        starts.insert(j, start)
        chosen.append((pool[cid][0], start))
        if len(chosen) == n:
            break
    return sorted(chosen)
