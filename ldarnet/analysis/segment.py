"""Boundary probabilities of a DNA sequence of any length (``ldarnet segment``).

The router of LDARNet's first stage gives every nucleotide a boundary probability p
and a hard boundary b (spec 2.1). A model call sees one window at a time, and its
encoder is bidirectional, so the value at a base depends on the whole window around
it; and ``p_0 = 1`` at every window start by construction. A long sequence is therefore
cut into overlapping *tiles*, and each base keeps the value of the one tile in which it
sits at least ``margin`` bases away from both tile edges (only the two ends of the
sequence lack that context).

Tiles sit on a **global grid in absolute coordinates**: with ``stride = tile − 2·margin``,
tile k covers ``[k·stride − margin, (k+1)·stride + margin)`` and decides the bases of
``[k·stride, (k+1)·stride)``, clipped to the sequence. Which tile decides a base, and what
that tile contains, is then a function of the base's genome position and of the
sequence around it only, never of where the caller's region starts: two overlapping
regions give bit-identical values wherever the deciding tile lies inside both. A
region-relative grid would shift every tile with the region start and give a slightly
different number for the same base in every run. At the two ends of a sequence, grid
tiles are merged into one call while their windows fit in ``tile`` bases (more context,
fewer calls), so a sequence of at most ``tile`` bases is exactly one forward pass.

Bit-identity also needs every tile computed the same way whatever batch it lands in:
only tiles of equal length are batched (rows of a batch are computed independently on
the CPU), and the shorter tiles at the sequence ends run alone, unpadded, because
padding is exact in value but not in the last bit.

Only stage 0's embedding, encoder and router run: p and b are decided before
chunking, so the backbone, dechunker and decoder (most of the compute) cannot change
them. :func:`stage0_router` is the same arithmetic as ``model(ids).router_outputs[0]``
(the tests compare them bit for bit).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ldarnet.data.bed import read_bed
from ldarnet.data.fasta import open_fasta
from ldarnet.data.genome import fetch_tokens
from ldarnet.foundation.atomic import remove, temp_path
from ldarnet.foundation.errors import InputError
from ldarnet.model.network.dynamic_chunking import RouterOutput
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained

Fetch = Callable[[int, int], np.ndarray]
# bedGraph values are written with 4 decimals: p is quantized to q = round(p·10⁴).
SCALE = 10_000
_VALUE_TEXT = [f"{q // SCALE}.{q % SCALE:04d}" for q in range(SCALE + 1)]


class SegmentError(InputError):
    """Input that ``segment`` cannot use; the message says what, where, and how to fix it."""


# ----------------------------------------------------------------------------- tiling
@dataclass(frozen=True)
class Tile:
    """One model call: its window ``[start, end)`` and the bases ``[core_start, core_end)``
    it decides, all as indices into the caller's sequence."""

    start: int
    end: int
    core_start: int
    core_end: int


def check_tiling(tile: int, margin: int, batch_size: int = 1) -> None:
    """Refuse tiling parameters that cannot work, before any work is done."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise SegmentError(f"tile must be a positive integer, got {tile!r}")
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise SegmentError(f"margin must be an integer >= 0, got {margin!r}")
    if tile - 2 * margin < 1:
        raise SegmentError(
            f"tile={tile} must be larger than 2*margin={2 * margin}: each tile decides "
            "tile - 2*margin bases; use a larger --tile or a smaller --margin"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SegmentError(f"batch_size must be a positive integer, got {batch_size!r}")


def grid_tiles(length: int, offset: int, tile: int, margin: int) -> Iterator[Tile]:
    """The model calls covering ``length`` bases whose first base is at genome ``offset``.

    Grid tile k covers absolute ``[k·s − m, (k+1)·s + m)`` and decides ``[k·s, (k+1)·s)``
    (s = tile − 2m), both clipped to ``[offset, offset + length)``. At each end of the
    sequence, grid tiles are merged into one call while the union of their clipped
    windows still fits in ``tile`` bases: the merged window contains each of theirs, so
    their bases only gain context, and a sequence of at most ``tile`` bases becomes a
    single call, the model's direct forward. A tile lying wholly inside the sequence
    has exactly ``tile`` bases and is never merged or changed, which is what makes the
    result tiling-invariant.
    """
    check_tiling(tile, margin)
    if offset < 0:
        raise SegmentError(f"offset must be >= 0 (a genome coordinate), got {offset}")
    if length <= 0:
        return
    stride = tile - 2 * margin
    end = offset + length
    first, last = offset // stride, (end - 1) // stride

    def group(i: int, j: int) -> Tile:
        """Grid tiles i..j as one call: the union of their clipped windows and cores."""
        return Tile(start=max(i * stride - margin, offset) - offset,
                    end=min((j + 1) * stride + margin, end) - offset,
                    core_start=max(i * stride, offset) - offset,
                    core_end=min((j + 1) * stride, end) - offset)

    def width(i: int, j: int) -> int:
        t = group(i, j)
        return t.end - t.start

    head = first
    while head < last and width(first, head + 1) <= tile:
        head += 1
    if head == last:
        yield group(first, last)
        return
    tail = last
    while tail - 1 > head and width(tail - 1, last) <= tile:
        tail -= 1
    yield group(first, head)
    for k in range(head + 1, tail):
        yield group(k, k)
    yield group(tail, last)


# ----------------------------------------------------------------------------- model calls
def stage0_router(model: LDARNet, input_ids: Tensor) -> RouterOutput:
    """Stage 0's router output for ``input_ids`` (b, l): :meth:`LDARNet.route`.

    Bit-identical to ``model(input_ids).router_outputs[0]``'s p and b; the backbone and
    decoder, which cannot influence them, are skipped.
    """
    if model.hierarchy.is_innermost:
        raise SegmentError(
            f"model {model.config.name!r} has no chunking stage (layout "
            f"{model.config.arch_layout}), hence no router and no boundaries to segment with"
        )
    return model.route(input_ids)


def _model_device(model: LDARNet) -> torch.device:
    return next(model.parameters()).device


def iter_segments(
    model: LDARNet,
    fetch: Fetch,
    length: int,
    offset: int = 0,
    tile: int = 4096,
    margin: int = 512,
    batch_size: int = 8,
    bar: tqdm | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(core_start, p, b)`` of each grid tile of a sequence, in sequence order.

    ``fetch(start, end)`` returns the token ids of ``[start, end)`` (sequence indices),
    so a caller can stream a chromosome without holding it whole; one fetch serves a
    batch. Consecutive tiles of equal length are batched up to ``batch_size``.
    """
    check_tiling(tile, margin, batch_size)
    device = _model_device(model)

    def run(batch: list[Tile]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        base = batch[0].start
        span = np.asarray(fetch(base, batch[-1].end))
        rows = np.stack([span[t.start - base : t.end - base] for t in batch])
        ids = torch.from_numpy(rows.astype(np.int64)).to(device)
        with torch.no_grad():
            router = stage0_router(model, ids)
        p = router.boundary_prob.float().cpu().numpy()
        b = router.boundary_mask.cpu().numpy()
        for i, t in enumerate(batch):
            lo, hi = t.core_start - t.start, t.core_end - t.start
            yield t.core_start, p[i, lo:hi], b[i, lo:hi]
            if bar is not None:
                bar.update(hi - lo)

    pending: list[Tile] = []
    for t in grid_tiles(length, offset, tile, margin):
        if pending and (len(pending) == batch_size
                        or t.end - t.start != pending[0].end - pending[0].start):
            yield from run(pending)
            pending = []
        pending.append(t)
    if pending:
        yield from run(pending)


def _check_ids(ids: np.ndarray, model: LDARNet) -> None:
    """Token ids the model can segment: 1-D integers in the vocabulary, no [PAD]."""
    if ids.ndim != 1:
        raise SegmentError(f"ids must be a 1-D array of token ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise SegmentError(f"ids must be integer token ids (ldarnet.data.tokenizer.encode), "
                           f"got dtype {ids.dtype}")
    cfg = model.config
    bad = np.flatnonzero((ids < 0) | (ids >= cfg.vocab_size) | (ids == cfg.pad_token_id))
    if len(bad):
        i = int(bad[0])
        raise SegmentError(
            f"ids[{i}] = {int(ids[i])} is not a token to segment: ids must lie in "
            f"0..{cfg.vocab_size - 1} and not be [PAD] ({cfg.pad_token_id}); encode DNA "
            "with ldarnet.data.tokenizer.encode"
        )


def segment_tokens(
    model: LDARNet,
    ids: np.ndarray,
    tile: int = 4096,
    margin: int = 512,
    batch_size: int = 8,
    offset: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary probability p (float32) and hard boundary b (bool) of every base of ``ids``.

    ``offset`` is the genome coordinate of ``ids[0]``: it anchors the tile grid, so the
    same base gets the same value from any region that contains its grid tile's window
    (see :func:`grid_tiles`). Up to ``tile`` bases are one call: the direct forward.
    """
    ids = np.asarray(ids)
    _check_ids(ids, model)
    n = len(ids)
    p = np.empty(n, dtype=np.float32)
    b = np.empty(n, dtype=bool)
    with tqdm(total=n, unit="bp", unit_scale=True, desc="segment", file=sys.stderr,
              leave=False, disable=not progress) as bar:
        for start, tp, tb in iter_segments(model, lambda s, e: ids[s:e], n, offset, tile,
                                           margin, batch_size, bar):
            p[start : start + len(tp)] = tp
            b[start : start + len(tb)] = tb
    return p, b


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Region:
    """A 0-based half-open interval to segment; ``line`` is its BED line (0: whole record)."""

    contig: str
    start: int
    end: int
    line: int = 0


def whole_records(lengths: dict[str, int]) -> list[Region]:
    """Every non-empty record, whole, in FASTA order (the default without ``--regions``)."""
    return [Region(name, 0, n) for name, n in lengths.items() if n > 0]


def read_regions(path: str | Path, lengths: dict[str, int], fasta: str | Path = "the FASTA"
                 ) -> list[Region]:
    """Regions of a BED file (``chrom start end [name ...]``), checked against ``lengths``.

    Read with the one BED reader (:mod:`ldarnet.data.bed`: every problem names
    ``file:line``). Overlapping regions are refused here: a bedGraph gives each base one
    value, and bedtools merges them in one command.
    """
    regions = [Region(r.contig, r.start, r.end, r.line)
               for r in read_bed(path, 3, lengths, what="regions BED", fasta=fasta)]
    ordered = sorted(regions, key=lambda r: (r.contig, r.start))
    for a, b in itertools.pairwise(ordered):
        if a.contig == b.contig and b.start < a.end:
            raise SegmentError(
                f"{path}:{b.line}: region {b.contig}:{b.start}-{b.end} overlaps line {a.line} "
                f"({a.contig}:{a.start}-{a.end}); merge overlapping regions first "
                "(bedtools merge) so that every base gets one value"
            )
    return regions


# ----------------------------------------------------------------------------- outputs
def quantize(p: np.ndarray) -> np.ndarray:
    """p as written to the bedGraph, in units of 10⁻⁴: ``round(p·10⁴)`` (int32, 0…10000)."""
    return np.rint(np.asarray(p, dtype=np.float64) * SCALE).astype(np.int32)


class BedGraphWriter:
    """Writes per-base values as bedGraph lines, merging runs of equal (4-decimal) value.

    Values arrive tile by tile; the last run of each call is held back in case the next
    tile continues it, and :meth:`flush` ends it at a region's end.
    """

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.lines = 0
        self._pending: tuple[str, int, int, int] | None = None

    def _write(self, contig: str, starts: list[int], ends: list[int], values: list[int]) -> None:
        self.fh.write("".join(f"{contig}\t{s}\t{e}\t{_VALUE_TEXT[v]}\n"
                              for s, e, v in zip(starts, ends, values, strict=True)))
        self.lines += len(starts)

    def add(self, contig: str, start: int, q: np.ndarray) -> None:
        """Quantized values ``q`` of bases ``start, start + 1, ...`` of ``contig``."""
        n = len(q)
        if n == 0:
            return
        cuts = np.flatnonzero(q[1:] != q[:-1]) + 1
        first = np.concatenate(([0], cuts))
        starts = (first + start).tolist()
        ends = (np.concatenate((cuts, [n])) + start).tolist()
        values = q[first].tolist()
        pending = self._pending
        if pending is not None:
            if pending[0] == contig and pending[2] == starts[0] and pending[3] == values[0]:
                starts[0] = pending[1]
            else:
                self._write(pending[0], [pending[1]], [pending[2]], [pending[3]])
        self._pending = (contig, starts[-1], ends[-1], values[-1])
        self._write(contig, starts[:-1], ends[:-1], values[:-1])

    def flush(self) -> None:
        """Write the held-back run (at the end of a region)."""
        if self._pending is not None:
            contig, start, end, value = self._pending
            self._write(contig, [start], [end], [value])
            self._pending = None


def write_boundaries(fh: TextIO, contig: str, start: int, b: np.ndarray) -> int:
    """One BED line per boundary base of ``b`` (bases ``start, start + 1, ...``); the count."""
    positions = (np.flatnonzero(b) + start).tolist()
    fh.write("".join(f"{contig}\t{x}\t{x + 1}\n" for x in positions))
    return len(positions)


def segment_regions(
    model: LDARNet | str | Path,
    fasta: str | Path,
    regions: str | Path | None,
    out_bedgraph: str | Path,
    out_bed: str | Path,
    tile: int = 4096,
    margin: int = 512,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> dict:
    """Segment ``regions`` of ``fasta`` (default: every record whole) with ``model``.

    ``model`` is an :class:`LDARNet` or a path for :func:`load_pretrained` (loaded onto
    ``device``). Writes a bedGraph of p (``chrom start end value``, 4 decimals, runs of
    equal value merged) and a BED of hard boundaries (one line per boundary base), both
    atomically: on any error neither file is created or changed. Inputs are checked
    before the model is loaded. Returns a summary (regions, bases, boundaries, speed).
    """
    check_tiling(tile, margin, batch_size)
    out_bedgraph, out_bed = Path(out_bedgraph), Path(out_bed)
    if out_bedgraph.resolve() == out_bed.resolve():
        raise SegmentError(f"--bedgraph and --bed are the same file ({out_bed}); give two paths")
    sequences = open_fasta(fasta)
    chosen = (whole_records(sequences.lengths) if regions is None
              else read_regions(regions, sequences.lengths, fasta))
    net = model if isinstance(model, LDARNet) else load_pretrained(model, device)
    total = sum(r.end - r.start for r in chosen)
    for out in (out_bedgraph, out_bed):
        out.parent.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    boundaries = 0
    began = time.perf_counter()
    try:
        temps.append(temp_path(out_bedgraph))
        temps.append(temp_path(out_bed))
        with open(temps[0], "w") as graph_fh, open(temps[1], "w") as bed_fh, tqdm(
            total=total, unit="bp", unit_scale=True, desc=f"segment {Path(fasta).name}",
            file=sys.stderr, leave=False,
        ) as bar:
            graph = BedGraphWriter(graph_fh)
            for region in chosen:
                def fetch(s: int, e: int, r: Region = region) -> np.ndarray:
                    return fetch_tokens(sequences, r.contig, r.start + s, r.start + e)

                for core, p, b in iter_segments(net, fetch, region.end - region.start,
                                                region.start, tile, margin, batch_size, bar):
                    graph.add(region.contig, region.start + core, quantize(p))
                    boundaries += write_boundaries(bed_fh, region.contig, region.start + core, b)
                graph.flush()
        os.replace(temps[0], out_bedgraph)
        os.replace(temps[1], out_bed)
    except BaseException:
        remove(temps)
        raise
    seconds = time.perf_counter() - began
    return {
        "regions": len(chosen),
        "bases": total,
        "boundaries": boundaries,
        "boundary_density": boundaries / total,
        "bedgraph_lines": graph.lines,
        "seconds": seconds,
        "bases_per_s": total / seconds if seconds > 0 else float("inf"),
    }
