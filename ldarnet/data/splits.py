"""Train / validation / test intervals of a genome: whole-chromosome hold-out or a BED file.

Both methods return ``{"train": [...], "valid": [...], "test": [...]}``, each a list of
``(contig, start, end)`` intervals, 0-based and half-open (BED convention), in genome
order. Tiling (:mod:`ldarnet.data.tiling`) turns them into windows.

* :func:`chromosome_split` holds out whole contigs (the default: chr20 for validation,
  chr21 for test). No window of a held-out chromosome can share sequence with a
  training window, which a random split of overlapping regions cannot promise.
* :func:`bed_split` reads a ``chrom start end split`` BED file like the Basenji /
  HyenaDNA ``human-sequences.bed`` the release expects (spec 3.1). It is read with the
  one BED reader (:mod:`ldarnet.data.bed`), so every problem names ``file:line``;
  overlaps between splits are found and each split's intervals sorted and merged with
  bedtools. Book-ended intervals of one split merge into one, so tiling runs
  across the junction instead of restarting there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pybedtools

from ldarnet.data.bed import iter_bed
from ldarnet.data.fasta import names_hint
from ldarnet.foundation.atomic import scratch_dir
from ldarnet.foundation.errors import InputError

SPLITS = ("train", "valid", "test")
Interval = tuple[str, int, int]


class SplitError(InputError):
    """A split definition that does not fit the genome; the message says what and where."""


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def chromosome_split(
    lengths: dict[str, int],
    valid: list[str],
    test: list[str],
    contigs: list[str] | None = None,
) -> dict[str, list[Interval]]:
    """Whole contigs per split: train = (``contigs`` or all) minus ``valid`` minus ``test``.

    ``lengths`` maps contig name to length in genome order (the ``.fai`` order).
    """
    valid, test = _unique(list(valid)), _unique(list(test))
    universe = list(lengths) if contigs is None else _unique(list(contigs))
    for label, names in (("validation", valid), ("test", test), ("--contigs", universe)):
        missing = [c for c in names if c not in lengths]
        if missing:
            raise SplitError(
                f"{label} contigs not in the genome: {', '.join(missing)}; the genome has "
                f"{names_hint(list(lengths))}"
            )
    both = [c for c in valid if c in test]
    if both:
        raise SplitError(f"contigs in both the validation and the test split: "
                         f"{', '.join(both)}; a contig may belong to one split only")
    held_out = set(valid) | set(test)
    train = [c for c in universe if c not in held_out]
    if not train:
        raise SplitError("no training contig left after removing the validation and test "
                         f"contigs from {names_hint(universe)}")
    return {
        "train": [(c, 0, lengths[c]) for c in train],
        "valid": [(c, 0, lengths[c]) for c in valid],
        "test": [(c, 0, lengths[c]) for c in test],
    }


@contextlib.contextmanager
def _bedtools_scratch() -> Iterator[None]:
    """Run pybedtools with a private temporary directory, removed afterwards.

    Every pybedtools operation writes a temporary file and keeps it until the process
    ends; a long-lived process (Snakemake, tests) would otherwise accumulate them. The
    directory carries its owner, so a killed run's is removed by the next one
    (:func:`ldarnet.foundation.atomic.scratch_dir`).
    """
    previous = pybedtools.get_tempdir()
    with scratch_dir("ldarnet-bedtools") as scratch:
        pybedtools.set_tempdir(str(scratch))
        try:
            yield
        finally:
            pybedtools.set_tempdir(previous)


def bed_split(path: str | Path, lengths: dict[str, int]) -> dict[str, list[Interval]]:
    """Per-split intervals of a ``chrom start end split`` BED file, checked and merged.

    Header lines (``#``, ``track``, ``browser``) and blank lines are skipped; further
    columns after the 4th are ignored. Intervals of *different* splits must not overlap.
    """
    path = Path(path)
    per_split: dict[str, list] = {s: [] for s in SPLITS}
    for record in iter_bed(path, 4, lengths, what="split BED file", fasta="the genome"):
        split = record.fields[3].strip()
        if split not in SPLITS:
            raise SplitError(f"{path}:{record.line}: unknown split label {split!r}; the 4th "
                             f"column must be one of {', '.join(SPLITS)}")
        per_split[split].append(pybedtools.create_interval_from_list(
            [record.contig, str(record.start), str(record.end), f"{split}:{record.line}"]))
    if not any(per_split.values()):
        raise SplitError(f"{path}: no intervals found; expected lines 'chrom<TAB>start<TAB>"
                         "end<TAB>split' with split one of train, valid, test")
    order = {name: i for i, name in enumerate(lengths)}
    result: dict[str, list[Interval]] = {}
    with _bedtools_scratch():
        beds = {s: pybedtools.BedTool(ivs).saveas() for s, ivs in per_split.items() if ivs}
        names = list(beds)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for hit in beds[a].intersect(beds[b], wa=True, wb=True):
                    f = hit.fields
                    la, lb = f[3].split(":")[-1], f[7].split(":")[-1]
                    raise SplitError(
                        f"{path}:{la}: {a} interval {f[0]}:{f[1]}-{f[2]} overlaps the {b} "
                        f"interval {f[4]}:{f[5]}-{f[6]} of line {lb}; a base may belong to "
                        "one split only"
                    )
        for split in SPLITS:
            merged = beds[split].sort().merge() if split in beds else []
            intervals = [(iv.chrom, int(iv.start), int(iv.end)) for iv in merged]
            result[split] = sorted(intervals, key=lambda iv: (order[iv[0]], iv[1]))
    return result
