"""The boundary-alignment statistics table: offset 0 of every test, for every run.

One row per (model, seed, analysis, site kind or motif, comparison, signal): the mean at
real sites, at the comparison sites, the difference, the permutation p-value and its
BH-adjusted q-value (adjusted across offsets within its test), and the sample sizes.
Written as TSV and as Markdown next to it.

Four analyses feed it: splice junctions vs decoy GT/AG, promoter motifs vs background and
shuffled controls, start codons (Kozak) vs non-start ATGs and random positions, and the
release's midpoint view of the splice tasks (site vs non-site class). The start-codon
rows name their source in ``analysis`` (annotated, or inferred from the longest ORF).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from ldarnet.foundation.atomic import write_text
from ldarnet.foundation.tables import markdown_table, write_tsv

COLUMNS = ["model", "seed", "analysis", "sites", "versus", "signal", "site_mean",
           "versus_mean", "difference", "p_value", "q_value", "n_sites", "n_versus"]


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _run_of(path: Path) -> tuple[str, str]:
    """(model, seed) from results/boundaries/{model}/seed{seed}/..."""
    seed_dir = path.parent.parent
    return seed_dir.parent.name, seed_dir.name.removeprefix("seed")


def _generic(path: Path, analysis: Callable[[dict], str]) -> list[dict]:
    """Offset-0 rows of a statistics TSV already in the table's columns.

    ``analysis(row)`` names the analysis of a row (the start-codon rows carry their source).
    """
    model, seed = _run_of(path)
    out = []
    for r in _read(path):
        if int(r["offset"]) != 0:
            continue
        out.append({"model": model, "seed": seed, "analysis": analysis(r),
                    "sites": r["sites"], "versus": r["versus"], "signal": r["signal"],
                    **{k: float(r[k]) for k in ("site_mean", "versus_mean", "difference",
                                                "p_value", "q_value")},
                    "n_sites": int(r["n_sites"]), "n_versus": int(r["n_versus"])})
    return out


def boundary_table(splice_stats: list[str | Path], motif_stats: list[str | Path],
                   out_tsv: str | Path, start_codon_stats: Sequence[str | Path] = (),
                   midpoint_stats: Sequence[str | Path] = ()) -> list[dict]:
    """Collect the offset-0 rows of every boundary analysis's statistics into one table."""
    rows: list[dict] = []
    for path in map(Path, splice_stats):
        model, seed = _run_of(path)
        for r in _read(path):
            if int(r["offset"]) == 0:
                rows.append({"model": model, "seed": seed, "analysis": "splice junctions",
                             "sites": r["kind"] + "s", "versus": "decoy GT/AG",
                             "signal": r["signal"], "site_mean": float(r["junction_mean"]),
                             "versus_mean": float(r["decoy_mean"]),
                             "difference": float(r["difference"]),
                             "p_value": float(r["p_value"]), "q_value": float(r["q_value"]),
                             "n_sites": int(r["n_junctions"]), "n_versus": int(r["n_decoys"])})
    for path in map(Path, motif_stats):
        model, seed = _run_of(path)
        for r in _read(path):
            if int(r["offset"]) == 0:
                rows.append({"model": model, "seed": seed, "analysis": "promoter motifs",
                             "sites": r["motif"], "versus": r["versus"], "signal": "p",
                             "site_mean": float(r["native_mean"]),
                             "versus_mean": float(r["versus_mean"]),
                             "difference": float(r["difference"]),
                             "p_value": float(r["p_value"]), "q_value": float(r["q_value"]),
                             "n_sites": int(r["n_hits"]), "n_versus": int(r["n_versus"])})
    for path in map(Path, start_codon_stats):
        rows += _generic(path, lambda r: f"start codons, {r['source']}")
    for path in map(Path, midpoint_stats):
        rows += _generic(path, lambda r: f"splice task midpoint: {r['task']}")
    out_tsv = Path(out_tsv)
    write_tsv(out_tsv, rows, COLUMNS)
    md = out_tsv.with_suffix(".md")
    write_text(md, "# Boundary alignment at offset 0 (the cut at the anchor)\n\n"
               + markdown_table(rows, COLUMNS))
    return rows
