"""Every table and figure rendered from finished results.

eval-table, ablation-table, boundary-table, locus-figure and paper-claims (the paper's
claims vs the release vs this run); the rules are in the stage files that use them.
"""

from __future__ import annotations

import argparse
import csv
import json

from ldarnet.cli.options import add_segmentation_inputs, read_result
from ldarnet.report.eval_tables import TABLES


def _cmd_eval_table(args: argparse.Namespace) -> int:
    from ldarnet.report import eval_figure as ef
    from ldarnet.report import eval_tables as et
    from ldarnet.tasks.registry import load_registry

    registry = load_registry(args.registry)
    summaries = [read_result(p) for p in args.summaries]
    notes_by_task = {s["task"]: s.get("note", "") for s in summaries}
    nt = et.load_nt_baselines(args.nt_baselines)
    if args.table == "genomic_benchmarks":
        rows = et.gb_rows(summaries, registry, et.load_gb_baselines(args.gb_baselines))
        notes = ["Published Genomic Benchmarks numbers are accuracy (one run or 5 seeds; "
                 "protocols in config/baselines/gb.tsv), so accuracy is the comparable column."]
        et.write_table(args.out, rows, "Genomic Benchmarks (9 tasks)",
                       notes + et.data_notes(rows, notes_by_task), et.MD_GB_COLUMNS)
        if args.figure:
            ef.plot_eval_rows(args.figure, rows, "Genomic Benchmarks", metric="accuracy")
    elif args.table == "nt_summary":
        rows = et.nt_rows(summaries, registry, nt)
        summary = et.nt_summary_rows(rows, nt)
        et.write_table(args.out, summary, "NT summary: wins among < 300M models and overall",
                       [et.WIN_RULE, *et.data_notes(rows, notes_by_task)])
        if args.figure:
            ef.plot_win_counts(args.figure, summary, "NT benchmark: tasks won")
    else:
        rows = et.nt_rows(summaries, registry, nt)
        notes = ["MCC×100: mean ± 95 % t-interval over all (seed, fold) runs on the test "
                 "split; release numbers: 10 folds, one seed (spec section 7).", et.WIN_RULE]
        et.write_table(args.out, rows, et.NT_GROUP_TITLES[args.table],
                       notes + et.data_notes(rows, notes_by_task), et.MD_NT_COLUMNS)
        if args.figure:
            ef.plot_eval_rows(args.figure, rows, et.NT_GROUP_TITLES[args.table])
    print(f"{args.out}: {len(rows)} row(s)")
    return 0


def _cmd_ablation_table(args: argparse.Namespace) -> int:
    from ldarnet.report.ablation_table import ablation_rows, plot_ablation, write_ablation

    summaries = [read_result(p) for p in args.summaries]
    with open(args.flops, newline="") as fh:
        flops = list(csv.DictReader(fh, delimiter="\t"))
    rows = ablation_rows(summaries, flops, args.reference)
    notes = [
        "learned − arm: mean of the paired differences over (seed, fold) runs, in MCC "
        "percentage points, with its 95 % t-interval; paired p: two-sided t-test on them.",
        f"Pretraining compute of every arm matched to {args.reference}'s logged FLOPs "
        "(results/ablation/flops.tsv); bases / chunk: validation compression at the end of "
        "pretraining.",
    ]
    if any(r["data"] != "official" for r in rows):
        notes.append("Rows marked proxy / derived / slice were not computed on the official "
                     "benchmark data (docs/evaluation.md).")
    write_ablation(args.out, rows, notes)
    if args.figure:
        plot_ablation(args.figure, rows)
    print(json.dumps({"rows": len(rows), "out": args.out}))
    return 0


def _cmd_boundary_table(args: argparse.Namespace) -> int:
    from ldarnet.report.boundary_table import boundary_table

    rows = boundary_table(args.splice_stats, args.motif_stats, args.out,
                          start_codon_stats=args.start_codon_stats,
                          midpoint_stats=args.midpoint_stats)
    print(f"{args.out}: {len(rows)} rows")
    return 0


def _cmd_locus_figure(args: argparse.Namespace) -> int:
    from ldarnet.report.locus_figure import plot_locus

    print(json.dumps(plot_locus(args.bedgraph, args.bed, args.fasta, args.exons, args.gene,
                                args.out, flank=args.flank)))
    return 0


def _cmd_paper_claims(args: argparse.Namespace) -> int:
    from ldarnet.report import claims
    from ldarnet.report import eval_tables as et

    nt_rows = [r for path in args.nt_tables
               for r in claims.read_table(path, ["task", "data", "model", "runs", "mcc_x100",
                                                 "mcc_ci95_x100"])]
    gb_rows = [r for path in args.gb_tables
               for r in claims.read_table(path, ["task", "data", "model", "runs",
                                                 "accuracy_x100", "accuracy_ci95_x100"])]
    summary = (claims.read_table(args.nt_summary, ["results", "tasks", "official_tasks",
                                                   "best_small", "best_overall"])
               if args.nt_summary else None)
    ablation = (claims.read_table(args.ablation, ["task", "arm", "boundaries", "data",
                                                  "n_pairs", "diff_pp", "diff_ci95_pp",
                                                  "p_value", "flops_vs_reference"])
                if args.ablation else None)
    boundaries = (claims.read_table(args.boundaries, ["model", "seed", "analysis", "sites",
                                                      "versus", "site_mean", "versus_mean",
                                                      "q_value", "n_sites"])
                  if args.boundaries else None)
    rows = claims.claims_rows(nt_rows, gb_rows, summary, ablation, boundaries,
                              et.load_nt_baselines(args.nt_baselines))
    claims.write_claims(args.out, rows, args.scale)
    print(f"{args.out}: {len(rows)} row(s)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The report commands."""
    p = sub.add_parser("eval-table", help="render one results table (TSV + Markdown)")
    p.add_argument("table", choices=TABLES)
    p.add_argument("--summaries", nargs="+", required=True, help="eval-summary JSON files")
    p.add_argument("--registry", default="config/tasks.tsv")
    p.add_argument("--nt-baselines", default="config/baselines/nt.tsv")
    p.add_argument("--gb-baselines", default="config/baselines/gb.tsv")
    p.add_argument("--out", required=True, help="table .tsv (a .md is written beside it)")
    p.add_argument("--figure", help="also draw the table as a figure (.png/.svg/.pdf)")
    p.set_defaults(func=_cmd_eval_table)

    p = sub.add_parser("ablation-table", help="the ablation table (TSV + Markdown) and figure")
    p.add_argument("--summaries", nargs="+", required=True, help="eval-summary JSON files")
    p.add_argument("--flops", required=True, help="ablation-flops TSV")
    p.add_argument("--reference", required=True, help="NAME of the learned arm")
    p.add_argument("--out", required=True, help="table .tsv (a .md is written beside it)")
    p.add_argument("--figure", default=None, help="figure (.png/.svg/.pdf)")
    p.set_defaults(func=_cmd_ablation_table)

    p = sub.add_parser("boundary-table", help="offset-0 statistics of all boundary analyses")
    p.add_argument("--splice-stats", nargs="*", default=[], help="splice_stats.tsv files")
    p.add_argument("--motif-stats", nargs="*", default=[], help="motif_stats.tsv files")
    p.add_argument("--start-codon-stats", nargs="*", default=[],
                   help="start_codon_stats.tsv files")
    p.add_argument("--midpoint-stats", nargs="*", default=[], help="midpoint_stats.tsv files")
    p.add_argument("--out", required=True, help="table (.tsv; a .md is written beside it)")
    p.set_defaults(func=_cmd_boundary_table)

    p = sub.add_parser("locus-figure", help="boundary track, bases and exons at a gene's TSS")
    add_segmentation_inputs(p)
    p.add_argument("--gene", required=True, help="gene name of the annotation (e.g. HBB)")
    p.add_argument("--out", required=True, help="figure (.png or .svg)")
    p.add_argument("--flank", type=int, default=150, help="bases each side of the TSS")
    p.set_defaults(func=_cmd_locus_figure)

    p = sub.add_parser("paper-claims",
                       help="paper vs release vs this run, for claims C1-C4 (TSV + Markdown)")
    p.add_argument("--nt-tables", nargs="*", default=[], help="NT group tables (eval-table)")
    p.add_argument("--gb-tables", nargs="*", default=[], help="the Genomic Benchmarks table")
    p.add_argument("--nt-summary", help="results/tables/nt_summary.tsv")
    p.add_argument("--ablation", help="results/tables/ablation.tsv")
    p.add_argument("--boundaries", help="results/tables/boundaries.tsv")
    p.add_argument("--nt-baselines", default="config/baselines/nt.tsv")
    p.add_argument("--scale", required=True, help="the run's scale (config key `scale`)")
    p.add_argument("--out", required=True, help="claims .tsv (a .md is written beside it)")
    p.set_defaults(func=_cmd_paper_claims)
