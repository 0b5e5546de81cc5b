"""Split intervals -> fixed-length token windows in memory-mapped ``.npy`` shards.

The release tiles its training intervals on the fly inside the data loader (spec 3.2);
here the tiling is done once, ahead of training, so that the training step only has to
index rows of a memory-mapped array and the exact windows it sees are on disk, counted
and checksummed. The rules follow the release:

* each interval is cut into non-overlapping windows of ``window`` bp starting at the
  interval start (stride = window); the remainder shorter than a window is dropped and
  an interval shorter than a window yields nothing;
* a window containing any N (after the tokenizer's mapping, so IUPAC codes count as N)
  is dropped and counted. The release instead draws a random other window in its
  place at every visit; dropping keeps an epoch's windows fixed and each one seen
  once, and the manifest records how many were lost.

Outputs in ``out_dir``: ``train.npy``, ``valid.npy``, ``test.npy`` (uint8 token ids,
shape ``(n_windows, window)``; read them with ``np.load(path, mmap_mode="r")``), the
optional ``train_multispecies.npy`` and ``manifest.json``. Every file is written under a
temporary name and renamed only when all of them are complete.

The work is vectorised: an interval is fetched and encoded in large chunks (a whole
number of windows, at most ``chunk_bases``), reshaped to ``(windows, window)``, and
the N test is one numpy reduction per chunk.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npformat
from numpy.lib.format import open_memmap
from tqdm import tqdm

from ldarnet import __version__
from ldarnet.data.fasta import HEADER, Fasta, FastaError, FastaStream, open_genome
from ldarnet.data.genome import fetch_tokens
from ldarnet.data.splits import SPLITS, Interval
from ldarnet.data.tokenizer import PAD, VOCAB, N, encode
from ldarnet.foundation.atomic import remove, temp_path, write_json
from ldarnet.foundation.checksum import file_md5
from ldarnet.foundation.errors import InputError, MissingInputError

CHUNK_BASES = 1 << 24
MULTISPECIES_N_RUN = 50
SHARD_FORMAT_VERSION = 1


class TilingError(InputError):
    """Splits or inputs that cannot be tiled; the message says what to change."""


def _check_intervals(splits: dict[str, list[Interval]], lengths: dict[str, int]) -> None:
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise TilingError(f"unknown split names {', '.join(unknown)}; expected "
                          f"{', '.join(SPLITS)}")
    for split, intervals in splits.items():
        for contig, start, end in intervals:
            if contig not in lengths:
                raise TilingError(f"{split} interval {contig}:{start}-{end}: contig not in "
                                  "the genome FASTA; were the splits made for another genome?")
            if not 0 <= start <= end <= lengths[contig]:
                raise TilingError(f"{split} interval {contig}:{start}-{end} lies outside "
                                  f"the contig (length {lengths[contig]:,})")


def _header(rows: int, window: int) -> bytes:
    """The ``.npy`` (version 1.0) header of a C-order uint8 array of shape (rows, window)."""
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(buffer, {"descr": npformat.dtype_to_descr(np.dtype(np.uint8)),
                                             "fortran_order": False, "shape": (rows, window)})
    return buffer.getvalue()


def _shrink(tmp: Path, rows: int, final: Path, temps: list[Path]) -> Path:
    """Cut an over-allocated shard down to its first ``rows`` rows.

    The number of N-free windows is known only after reading the sequence, but
    ``open_memmap`` needs the shape up front, so the shard is allocated for every
    window of the intervals. numpy pads ``.npy`` headers so that the first dimension
    can be rewritten in place (``GROWTH_AXIS_MAX_DIGITS``): the header is rewritten
    with the true row count and the file truncated after the last kept row, with no
    copy. Should the header length ever differ (another numpy layout), the kept rows
    are copied into an exact-size shard instead.
    """
    with open(tmp, "r+b") as fh:
        version = npformat.read_magic(fh)
        shape, _, _ = npformat.read_array_header_1_0(fh) if version == (1, 0) else (None, 0, 0)
        offset = fh.tell()
        if shape is not None and shape[0] == rows:
            return tmp
        if shape is not None:
            header = _header(rows, shape[1])
            if len(header) == offset:
                fh.seek(0)
                fh.write(header)
                fh.truncate(offset + rows * shape[1])
                return tmp
    big = np.load(tmp, mmap_mode="r", allow_pickle=False)
    exact_tmp = temp_path(final)
    temps.append(exact_tmp)
    exact = open_memmap(exact_tmp, mode="w+", dtype=np.uint8, shape=(rows, big.shape[1]))
    step = max(1, CHUNK_BASES // max(1, big.shape[1]))
    for i in range(0, rows, step):
        stop = min(i + step, rows)
        exact[i:stop] = big[i:stop]
    del exact, big
    tmp.unlink()
    return exact_tmp


def _tile_split(fasta: Fasta, split: str, intervals: list[Interval], window: int,
                final: Path, temps: list[Path], chunk_bases: int) -> tuple[Path, dict]:
    """Write the N-free windows of ``intervals`` to a temporary shard; returns it and stats."""
    upper = sum((end - start) // window for _, start, end in intervals)
    tmp = temp_path(final)
    temps.append(tmp)
    shard = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(upper, window))
    chunk_windows = max(1, chunk_bases // window)
    kept = dropped = too_short = 0
    interval_bases = sum(end - start for _, start, end in intervals)
    with tqdm(total=interval_bases, unit="bp", unit_scale=True, desc=f"tile {split}",
              file=sys.stderr, leave=False) as bar:
        for contig, start, end in intervals:
            n_windows = (end - start) // window
            if n_windows == 0:
                too_short += 1
            for first in range(0, n_windows, chunk_windows):
                count = min(chunk_windows, n_windows - first)
                begin = start + first * window
                tokens = fetch_tokens(fasta, contig, begin, begin + count * window)
                tokens = tokens.reshape(count, window)
                clean = ~(tokens == N).any(axis=1)
                good = int(clean.sum())
                shard[kept : kept + good] = tokens[clean]
                kept += good
                dropped += count - good
                bar.update(count * window)
            bar.update((end - start) - n_windows * window)
    del shard  # unmapped; the pages are in the file (no msync: visibility, not durability)
    stats = {
        "file": final.name,
        "windows": kept,
        "bases": kept * window,
        "dropped_windows_with_N": dropped,
        "intervals": len(intervals),
        "intervals_shorter_than_window": too_short,
        "interval_bases": interval_bases,
        "remainder_bases_dropped": sum((e - s) % window for _, s, e in intervals),
        "contigs": list(dict.fromkeys(c for c, _, _ in intervals)),
    }
    return _shrink(tmp, kept, final, temps), stats


def _has_n_run(sequence: bytes, run: int) -> bool:
    return b"N" * run in sequence


def _multispecies_shard(path: Path, window: int, final: Path,
                        temps: list[Path]) -> tuple[Path, dict]:
    """One row per multispecies record: upper-cased, truncated / [PAD]-padded to ``window``.

    Records are streamed and only their first ``window`` bases kept, so the input may
    hold whole chromosomes. Rows are appended to a raw scratch file (the count is not
    known in advance) and then copied into an exact-size ``.npy``.
    """
    stream = FastaStream(path, unique_names=False)  # a collection: names are labels
    raw = temp_path(final.with_name(final.name + ".rows"))
    temps.append(raw)
    stats = {"file": final.name, "records": 0, "windows": 0, "truncated": 0, "padded": 0,
             "dropped_with_N_run": 0, "dropped_empty": 0}
    row = np.empty(window, dtype=np.uint8)

    def finish(prefix: bytearray | None, length: int, fh: BinaryIO) -> None:
        if prefix is None:
            return
        stats["records"] += 1
        if length == 0:
            stats["dropped_empty"] += 1
            return
        # the release forgot to upper-case here (spec 3.2): soft-masked bases became N
        sequence = bytes(prefix).upper()
        if _has_n_run(sequence, MULTISPECIES_N_RUN):
            stats["dropped_with_N_run"] += 1
            return
        stats["truncated"] += int(length > window)
        stats["padded"] += int(length < window)
        row[: len(sequence)] = encode(sequence)
        row[len(sequence) :] = PAD
        fh.write(row.tobytes())
        stats["windows"] += 1

    try:
        with open(raw, "wb") as fh:
            prefix: bytearray | None = None
            length = 0
            for kind, value, _ in stream:
                if kind == HEADER:
                    finish(prefix, length, fh)
                    prefix, length = bytearray(), 0
                else:
                    assert prefix is not None and isinstance(value, bytes)
                    if len(prefix) < window:
                        prefix += value[: window - len(prefix)]
                    length += len(value)
            finish(prefix, length, fh)
    except FastaError as err:
        raise TilingError(f"multispecies input: {err}") from err
    if stats["records"] == 0:
        raise TilingError(f"{path}: no FASTA records in the multispecies input")
    if stats["windows"] == 0:
        raise TilingError(f"{path}: all {stats['records']} multispecies records were dropped "
                          f"(empty or containing {MULTISPECIES_N_RUN} consecutive N)")
    rows = np.memmap(raw, dtype=np.uint8, mode="r", shape=(stats["windows"], window))
    tmp = temp_path(final)
    temps.append(tmp)
    shard = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=rows.shape)
    step = max(1, CHUNK_BASES // window)
    for i in range(0, rows.shape[0], step):
        shard[i : i + step] = rows[i : i + step]
    del shard, rows
    raw.unlink()
    stats["source"] = path.name
    stats["source_md5"] = stream.md5
    stats["n_run_threshold"] = MULTISPECIES_N_RUN
    return tmp, stats


def tile_genome(
    fasta: str | Path,
    splits: dict[str, list[Interval]],
    window: int,
    out_dir: str | Path,
    multispecies: str | Path | None = None,
    chunk_bases: int = CHUNK_BASES,
) -> dict:
    """Tile every split of a prepared genome into token shards; returns the manifest.

    ``fasta`` is a genome written by :func:`ldarnet.data.genome.prepare_genome` (with
    its ``.fai``); ``splits`` maps split name to intervals (:mod:`ldarnet.data.splits`).
    ``multispecies``, off by default, is a FASTA of other genomes turned into
    ``train_multispecies.npy`` (one row per record, spec 3.2).
    """
    fasta, out_dir = Path(fasta), Path(out_dir)
    if window < 1:
        raise TilingError(f"window must be a positive number of bases, got {window}")
    if multispecies is not None and not Path(multispecies).is_file():
        raise MissingInputError(f"multispecies FASTA {multispecies} does not exist")
    genome = open_genome(fasta)
    lengths = genome.lengths
    _check_intervals(splits, lengths)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    ready: list[tuple[Path, Path]] = []
    try:
        per_split = {}
        for split in SPLITS:
            final = out_dir / f"{split}.npy"
            tmp, stats = _tile_split(genome, split, list(splits.get(split, [])), window,
                                     final, temps, chunk_bases)
            ready.append((tmp, final))
            per_split[split] = stats
        if per_split["train"]["windows"] == 0:
            train = per_split["train"]
            raise TilingError(
                f"no training window: window {window} is too large for the training "
                f"intervals (intervals: {train['intervals']}, shorter than the window: "
                f"{train['intervals_shorter_than_window']}, windows dropped for N: "
                f"{train['dropped_windows_with_N']}); use a smaller --window or larger "
                "intervals"
            )
        multi = None
        if multispecies is not None:
            final = out_dir / "train_multispecies.npy"
            tmp, multi = _multispecies_shard(Path(multispecies), window, final, temps)
            ready.append((tmp, final))
        manifest = {
            "format": "ldarnet-token-shards",
            "format_version": SHARD_FORMAT_VERSION,
            "created_by": f"ldarnet {__version__}",
            "window": window,
            "dtype": "uint8",
            "vocab": {token: i for i, token in enumerate(VOCAB)},
            "source_fasta": fasta.name,
            "source_fasta_md5": file_md5(fasta),
            "splits": per_split,
            "multispecies": multi,
        }
        stale = out_dir / "train_multispecies.npy"
        if multispecies is None and stale.exists():
            stale.unlink()  # from an earlier run with --multispecies: no longer described
        for tmp, final in ready:
            os.replace(tmp, final)
        write_json(out_dir / "manifest.json", manifest)
    except BaseException:
        remove(temps)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # leave no trace of a failed first run
        raise
    return manifest
