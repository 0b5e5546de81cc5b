"""The boundary analysis's commands (workflow/rules/boundaries.smk).

segment a genome with a model, then align its boundaries with splice junctions, promoter
motifs, start codons and splice-task midpoints, and measure their density per task. The
analyses (ldarnet.analysis) compute; ldarnet.report writes and draws what they return.
"""

from __future__ import annotations

import argparse
import json

from ldarnet.cli.options import add_device_option, add_segmentation_inputs, chosen_device


def _cmd_segment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.segment import segment_regions

    device = chosen_device(args.device)
    summary = segment_regions(args.model, args.fasta, args.regions, args.bedgraph, args.bed,
                              tile=args.tile, margin=args.margin, batch_size=args.batch_size,
                              device=device)
    print(f"{args.bedgraph}, {args.bed}: {summary['regions']} region(s), "
          f"{summary['bases']:,} bp, {summary['boundaries']:,} boundaries "
          f"(1 per {1 / max(summary['boundary_density'], 1e-12):.2f} bp), "
          f"{summary['bases_per_s']:,.0f} bp/s on {device}")
    return 0


def _cmd_splice_alignment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.splice_alignment import run_splice_alignment
    from ldarnet.report.boundary_figures import write_anchored_analysis

    summary = write_anchored_analysis(
        run_splice_alignment(args.bedgraph, args.bed, args.fasta, args.exons, flank=args.flank,
                             n_permutations=args.permutations, seed=args.seed),
        args.out_dir)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_motif_alignment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.motif_alignment import run_motif_alignment
    from ldarnet.report.boundary_figures import write_anchored_analysis

    summary = write_anchored_analysis(
        run_motif_alignment(args.model, args.fasta, args.exons, threshold=args.threshold,
                            n_permutations=args.permutations, seed=args.seed,
                            device=chosen_device(args.device), contigs=args.contigs),
        args.out_dir)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_start_codon_alignment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.start_codon_alignment import run_start_codon_alignment
    from ldarnet.report.boundary_figures import write_anchored_analysis

    summary = write_anchored_analysis(
        run_start_codon_alignment(
            args.bedgraph, args.bed, args.fasta, args.exons, source=args.source, gtf=args.gtf,
            flank=args.flank, n_permutations=args.permutations, seed=args.seed,
            min_codons=args.min_codons),
        args.out_dir)
    print(json.dumps({k: v for k, v in summary.items() if k != "offset0"}, indent=2))
    return 0


def _cmd_splice_midpoint(args: argparse.Namespace) -> int:
    from ldarnet.analysis.splice_midpoint import run_splice_midpoint
    from ldarnet.report.boundary_figures import write_anchored_analysis

    summary = write_anchored_analysis(
        run_splice_midpoint(args.model, args.sequences, test_flank=args.test_flank,
                            n_permutations=args.permutations, seed=args.seed,
                            device=chosen_device(args.device)),
        args.out_dir)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_boundary_density(args: argparse.Namespace) -> int:
    from ldarnet.analysis.density import boundary_density
    from ldarnet.foundation.tables import write_tsv
    from ldarnet.report.boundary_figures import plot_density

    density = boundary_density(args.model, args.sequences, chosen_device(args.device))
    write_tsv(args.out_tsv, density.rows)
    plot_density(density.values, density.tasks, args.out_png)
    print(f"{args.out_tsv}: {len(density.rows)} task/class rows")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The boundaries commands."""
    p = sub.add_parser(
        "segment",
        help="per-base boundary probabilities (bedGraph) and boundaries (BED) of a FASTA",
    )
    p.add_argument("--model", required=True,
                   help="model.safetensors (with config.json beside it) or a pretrain run dir")
    p.add_argument("--fasta", required=True,
                   help="prepared genome (.fa + .fai) or a small plain/gzip FASTA")
    p.add_argument("--regions", help="BED file 'chrom start end [name]' (default: every "
                   "record whole)")
    p.add_argument("--bedgraph", required=True, help="output bedGraph of boundary probability")
    p.add_argument("--bed", required=True, help="output BED, one line per boundary base")
    p.add_argument("--tile", type=int, default=4096,
                   help="bases per model call (default 4096)")
    p.add_argument("--margin", type=int, default=512,
                   help="context kept on each side of the bases a tile decides (default 512)")
    p.add_argument("--batch-size", type=int, default=8, help="tiles per model call (default 8)")
    add_device_option(p)
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("splice-alignment",
                       help="boundary profiles around annotated splice junctions vs decoys")
    add_segmentation_inputs(p)
    p.add_argument("--out-dir", required=True, help="profiles, statistics, figure, summary")
    p.add_argument("--flank", type=int, default=40, help="bases on each side (default 40)")
    p.add_argument("--permutations", type=int, default=10000, help="per test (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_splice_alignment)

    p = sub.add_parser("motif-alignment",
                       help="boundary profiles around promoter motifs, with shuffled controls")
    p.add_argument("--model", required=True, help="model.safetensors or a pretraining run dir")
    p.add_argument("--fasta", required=True, help="genome (.fa with .fai)")
    p.add_argument("--exons", required=True, help="exon table (TSS = first exon start)")
    p.add_argument("--out-dir", required=True, help="profiles, statistics, figures, summary")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="PWM threshold as a fraction of the score range (default 0.9)")
    p.add_argument("--permutations", type=int, default=10000, help="per test (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contigs", nargs="+", metavar="NAME",
                   help="only promoters on these contigs (default: all annotated)")
    add_device_option(p)
    p.set_defaults(func=_cmd_motif_alignment)

    p = sub.add_parser("start-codon-alignment",
                       help="boundary profiles around start codons (Kozak) vs non-start ATGs")
    add_segmentation_inputs(p)
    p.add_argument("--source", choices=("gtf", "longest_orf"), default="gtf",
                   help="start codons: GTF start_codon lines (default), or inferred from the "
                        "longest ORF of each transcript (labelled as inferred)")
    p.add_argument("--gtf", default=None,
                   help="GTF with start_codon lines (default: --exons when it is a GTF)")
    p.add_argument("--min-codons", type=int, default=100,
                   help="longest_orf: shortest ORF kept, in codons (default 100)")
    p.add_argument("--out-dir", required=True, help="profiles, statistics, figure, summary")
    p.add_argument("--flank", type=int, default=40, help="bases on each side (default 40)")
    p.add_argument("--permutations", type=int, default=10000, help="per test (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_start_codon_alignment)

    p = sub.add_parser("splice-midpoint",
                       help="boundary profiles around the midpoint of splice-task sequences")
    p.add_argument("--model", required=True, help="model.safetensors or a pretraining run dir")
    p.add_argument("--sequences", nargs="+", required=True,
                   help="prepared splice task splits (results/tasks/<task>/test.csv)")
    p.add_argument("--out-dir", required=True, help="profiles, statistics, figure, summary")
    p.add_argument("--test-flank", type=int, default=10,
                   help="test site vs non-site at offsets -N..+N (default 10)")
    p.add_argument("--permutations", type=int, default=10000, help="per test (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    add_device_option(p)
    p.set_defaults(func=_cmd_splice_midpoint)

    p = sub.add_parser("boundary-density", help="boundary density per task and class (box plots)")
    p.add_argument("--model", required=True, help="model.safetensors or a pretraining run dir")
    p.add_argument("--sequences", nargs="+", required=True,
                   help="CSV files with columns dataset, label_name, seq")
    p.add_argument("--out-tsv", required=True, help="summary per task and class")
    p.add_argument("--out-png", required=True, help="box-plot figure")
    add_device_option(p)
    p.set_defaults(func=_cmd_boundary_density)
