"""The ``ldarnet`` command: one sub-command per workflow step.

Each sub-command is a thin shell around a library function, so every step of the
Snakemake workflow can be run, debugged and tested on its own. Errors a user can fix
(bad config, missing file) are reported as one line on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from ldarnet import __version__
from ldarnet.cli_ablation import add_ablation_commands
from ldarnet.cli_eval import add_eval_commands
from ldarnet.cli_interop import add_interop_commands
from ldarnet.cli_sources import add_sources_commands
from ldarnet.errors import LdarnetError, UserError


def _cmd_model_info(args: argparse.Namespace) -> int:
    from ldarnet.model.config import load_model_config
    from ldarnet.model.summary import model_summary

    summary = model_summary(load_model_config(args.config))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from ldarnet.cli_eval import read_result
    from ldarnet.train.pretrain import EXIT_PREEMPTED, Preempted, run_pretraining

    steps = None
    if args.budget:
        try:
            steps = int(read_result(args.budget)["steps"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"--budget {args.budget}: not a budget JSON with 'steps' ({err}); "
                            "write it with `ldarnet ablation-budget`") from None
    try:
        summary = run_pretraining(
            model_config=args.model, train_config=args.config, shards=args.shards,
            out=args.out, seed=args.seed, device=args.device, steps=steps,
            stop_before_limit=args.stop_before_limit,
        )
    except Preempted:
        return EXIT_PREEMPTED
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_splice_alignment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.splice_alignment import run_splice_alignment

    summary = run_splice_alignment(args.bedgraph, args.bed, args.fasta, args.exons,
                                   args.out_dir, flank=args.flank,
                                   n_permutations=args.permutations, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_motif_alignment(args: argparse.Namespace) -> int:
    import torch

    from ldarnet.analysis.motif_alignment import run_motif_alignment

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    summary = run_motif_alignment(args.model, args.fasta, args.exons, args.out_dir,
                                  threshold=args.threshold, n_permutations=args.permutations,
                                  seed=args.seed, device=device, contigs=args.contigs)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_locus_figure(args: argparse.Namespace) -> int:
    from ldarnet.report.locus_figure import plot_locus

    print(json.dumps(plot_locus(args.bedgraph, args.bed, args.fasta, args.exons, args.gene,
                                args.out, flank=args.flank)))
    return 0


def _cmd_boundary_density(args: argparse.Namespace) -> int:
    import torch

    from ldarnet.analysis.density import boundary_density

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = boundary_density(args.model, args.sequences, args.out_tsv, args.out_png, device)
    print(f"{args.out_tsv}: {len(rows)} task/class rows")
    return 0


def _cmd_start_codon_alignment(args: argparse.Namespace) -> int:
    from ldarnet.analysis.start_codon_alignment import run_start_codon_alignment

    summary = run_start_codon_alignment(
        args.bedgraph, args.bed, args.fasta, args.exons, args.out_dir, source=args.source,
        gtf=args.gtf, flank=args.flank, n_permutations=args.permutations, seed=args.seed,
        min_codons=args.min_codons)
    print(json.dumps({k: v for k, v in summary.items() if k != "offset0"}, indent=2))
    return 0


def _cmd_splice_midpoint(args: argparse.Namespace) -> int:
    import torch

    from ldarnet.analysis.splice_midpoint import run_splice_midpoint

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    summary = run_splice_midpoint(args.model, args.sequences, args.out_dir,
                                  test_flank=args.test_flank,
                                  n_permutations=args.permutations, seed=args.seed,
                                  device=device)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_boundary_table(args: argparse.Namespace) -> int:
    from ldarnet.report.boundary_table import boundary_table

    rows = boundary_table(args.splice_stats, args.motif_stats, args.out,
                          start_codon_stats=args.start_codon_stats,
                          midpoint_stats=args.midpoint_stats)
    print(f"{args.out}: {len(rows)} rows")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ldarnet.data.download import download

    path = download(args.url, args.out, md5=args.md5, md5_url=args.md5_url,
                    retries=args.retries, timeout=args.timeout)
    print(path)
    return 0


def _cmd_prepare_genome(args: argparse.Namespace) -> int:
    from ldarnet.data.atomic import write_json
    from ldarnet.data.genome import prepare_genome

    summary = prepare_genome(args.fasta, args.out, contigs=args.contigs)
    if args.summary:
        write_json(args.summary, summary)
    print(f"{args.out}: {summary['records']} records, {summary['total_bases']:,} bp "
          f"(source md5 {summary['source_md5']}"
          + (f", {summary['carriage_returns']:,} carriage returns removed"
             if summary["crlf_normalised"] else "") + ")")
    return 0


def _split_intervals(args: argparse.Namespace) -> dict:
    """The split intervals chosen by ``tile``'s flags (two mutually exclusive methods)."""
    from ldarnet.data.fasta import open_genome
    from ldarnet.data.splits import SplitError, bed_split, chromosome_split

    chromosome_flags = [f for f, v in (("--valid-contigs", args.valid_contigs),
                                        ("--test-contigs", args.test_contigs),
                                        ("--contigs", args.contigs)) if v is not None]
    if args.split_method == "bed":
        if args.split_bed is None:
            raise UserError("--split-method bed needs --split-bed FILE")
        if chromosome_flags:
            raise UserError(f"{', '.join(chromosome_flags)} only apply to --split-method "
                            "chromosomes; the BED file defines the splits")
    elif args.split_bed is not None:
        raise UserError("--split-bed needs --split-method bed")
    lengths = open_genome(args.fasta).lengths
    if args.split_method == "bed":
        return bed_split(args.split_bed, lengths)
    try:
        return chromosome_split(
            lengths,
            valid=args.valid_contigs if args.valid_contigs is not None else ["chr20"],
            test=args.test_contigs if args.test_contigs is not None else ["chr21"],
            contigs=args.contigs,
        )
    except SplitError as err:
        if args.valid_contigs is None or args.test_contigs is None:
            raise SplitError(f"{err} (--valid-contigs defaults to chr20 and --test-contigs "
                             "to chr21)") from err
        raise


def _cmd_tile(args: argparse.Namespace) -> int:
    from ldarnet.data.tiling import tile_genome

    manifest = tile_genome(args.fasta, _split_intervals(args), args.window, args.out_dir,
                           multispecies=args.multispecies)
    counts = ", ".join(f"{s} {v['windows']:,}" for s, v in manifest["splits"].items())
    if manifest["multispecies"]:
        counts += f", train_multispecies {manifest['multispecies']['windows']:,}"
    print(f"{args.out_dir}: windows of {args.window} bp: {counts}")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    import torch

    from ldarnet.analysis.segment import segment_regions

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    summary = segment_regions(args.model, args.fasta, args.regions, args.bedgraph, args.bed,
                              tile=args.tile, margin=args.margin, batch_size=args.batch_size,
                              device=device)
    print(f"{args.bedgraph}, {args.bed}: {summary['regions']} region(s), "
          f"{summary['bases']:,} bp, {summary['boundaries']:,} boundaries "
          f"(1 per {1 / max(summary['boundary_density'], 1e-12):.2f} bp), "
          f"{summary['bases_per_s']:,.0f} bp/s on {device}")
    return 0


def _add_segmentation_inputs(p: argparse.ArgumentParser) -> None:
    """The inputs every analysis of a segmentation reads."""
    p.add_argument("--bedgraph", required=True, help="boundary probabilities (ldarnet segment)")
    p.add_argument("--bed", required=True, help="hard boundaries (ldarnet segment)")
    p.add_argument("--fasta", required=True, help="the segmented genome (.fa with .fai)")
    p.add_argument("--exons", required=True, help="exon table (.csv as shipped, or GENCODE .gtf)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ldarnet",
        description="LDARNet: hierarchical DNA language model with learned, dynamic tokenization.",
    )
    parser.add_argument(
        "--kernels", choices=("auto", "torch", "cuda"), default=None,
        help="compute kernels: auto (CUDA fast paths when available, the default), torch "
             "(the pure-PyTorch reference), cuda (fast paths or an error); overrides the "
             "LDARNET_KERNELS environment variable (docs/cuda.md)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("model-info", help="parameter counts and layout of a model config (JSON)")
    p.add_argument("--config", required=True, help="model config YAML (config/models/*.yaml)")
    p.set_defaults(func=_cmd_model_info)


    p = sub.add_parser("download", help="download a file over HTTP(S), resumable, md5-verified")
    p.add_argument("--url", required=True, help="file to download")
    checksum = p.add_mutually_exclusive_group(required=True)
    checksum.add_argument("--md5", help="expected MD5 digest (32 hex characters)")
    checksum.add_argument("--md5-url", help="md5sum.txt-style listing holding the file's MD5 "
                          "(looked up by the URL's file name)")
    p.add_argument("--out", required=True, help="destination path (written only when verified)")
    p.add_argument("--retries", type=int, default=5,
                   help="attempts after the first failure (default 5)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="network timeout in seconds (default 60)")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("prepare-genome",
                       help="validate a FASTA (plain/gzip/bgzip) into an indexed, uncompressed .fa")
    p.add_argument("--fasta", required=True, help="source FASTA (.fa, .fa.gz)")
    p.add_argument("--out", required=True, help="output FASTA (.fa); its .fai is written beside")
    p.add_argument("--contigs", nargs="+", metavar="NAME",
                   help="keep only these records, in this order (default: all)")
    p.add_argument("--summary", help="write the summary (lengths, md5, ...) to this JSON file")
    p.set_defaults(func=_cmd_prepare_genome)

    p = sub.add_parser("tile", help="tile the splits of a prepared genome into token shards")
    p.add_argument("--fasta", required=True, help="genome written by prepare-genome (.fa + .fai)")
    p.add_argument("--window", type=int, default=4096, help="window length in bp (default 4096)")
    p.add_argument("--out-dir", required=True,
                   help="output directory ({train,valid,test}.npy, manifest.json)")
    p.add_argument("--split-method", choices=("chromosomes", "bed"), default="chromosomes",
                   help="whole-chromosome hold-out (default) or a BED file of intervals")
    p.add_argument("--valid-contigs", nargs="+", metavar="NAME",
                   help="chromosomes method: validation contigs (default chr20)")
    p.add_argument("--test-contigs", nargs="+", metavar="NAME",
                   help="chromosomes method: test contigs (default chr21)")
    p.add_argument("--contigs", nargs="+", metavar="NAME",
                   help="chromosomes method: contigs eligible for training (default: all)")
    p.add_argument("--split-bed", help="bed method: BED file 'chrom start end split'")
    p.add_argument("--multispecies", help="optional FASTA of other genomes -> "
                   "train_multispecies.npy (one window per record)")
    p.set_defaults(func=_cmd_tile)

    p = sub.add_parser(
        "pretrain",
        help="masked-LM pretraining on token shards (resumes from OUT; torchrun for DDP)",
    )
    p.add_argument("--model", required=True, help="model config YAML (config/models/*.yaml)")
    p.add_argument("--config", required=True, help="pretraining config YAML (config/pretrain/)")
    p.add_argument("--shards", required=True,
                   help="directory with train.npy and valid.npy (the genome stage's windows/)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, plots)")
    p.add_argument("--seed", type=int, default=1337, help="seed of init, data order, masks")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available, else cpu")
    p.add_argument("--budget", default=None,
                   help="ablation arm: budget JSON whose 'steps' replace the config's budget")
    p.add_argument("--stop-before-limit", type=int, default=0, metavar="SECONDS",
                   help="inside a SLURM job: save the state and exit 75 this many seconds "
                        "before the job's time limit (default 0: only on SIGTERM/SIGUSR1)")
    p.set_defaults(func=_cmd_pretrain)

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
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available, else cpu")
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("splice-alignment",
                       help="boundary profiles around annotated splice junctions vs decoys")
    _add_segmentation_inputs(p)
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
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.set_defaults(func=_cmd_motif_alignment)

    p = sub.add_parser("locus-figure", help="boundary track, bases and exons at a gene's TSS")
    _add_segmentation_inputs(p)
    p.add_argument("--gene", required=True, help="gene name of the annotation (e.g. HBB)")
    p.add_argument("--out", required=True, help="figure (.png or .svg)")
    p.add_argument("--flank", type=int, default=150, help="bases each side of the TSS")
    p.set_defaults(func=_cmd_locus_figure)

    p = sub.add_parser("boundary-density", help="boundary density per task and class (box plots)")
    p.add_argument("--model", required=True, help="model.safetensors or a pretraining run dir")
    p.add_argument("--sequences", nargs="+", required=True,
                   help="CSV files with columns dataset, label_name, seq")
    p.add_argument("--out-tsv", required=True, help="summary per task and class")
    p.add_argument("--out-png", required=True, help="box-plot figure")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.set_defaults(func=_cmd_boundary_density)

    p = sub.add_parser("start-codon-alignment",
                       help="boundary profiles around start codons (Kozak) vs non-start ATGs")
    _add_segmentation_inputs(p)
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
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.set_defaults(func=_cmd_splice_midpoint)

    p = sub.add_parser("boundary-table", help="offset-0 statistics of all boundary analyses")
    p.add_argument("--splice-stats", nargs="*", default=[], help="splice_stats.tsv files")
    p.add_argument("--motif-stats", nargs="*", default=[], help="motif_stats.tsv files")
    p.add_argument("--start-codon-stats", nargs="*", default=[],
                   help="start_codon_stats.tsv files")
    p.add_argument("--midpoint-stats", nargs="*", default=[], help="midpoint_stats.tsv files")
    p.add_argument("--out", required=True, help="table (.tsv; a .md is written beside it)")
    p.set_defaults(func=_cmd_boundary_table)

    add_eval_commands(sub)
    add_ablation_commands(sub)
    add_interop_commands(sub)
    add_sources_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ldarnet`` console script."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if args.kernels is not None:
        from ldarnet.model import kernels

        try:
            kernels.configure(args.kernels)
        except (ValueError, RuntimeError) as err:  # e.g. --kernels cuda on a CPU machine
            print(f"ldarnet: error: {err}", file=sys.stderr)
            return 2
    try:
        return func(args)
    except LdarnetError as err:
        print(f"ldarnet {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception:  # not an input problem: a bug, shown in full so it can be fixed
        traceback.print_exc()
        print(f"\nldarnet {args.command}: internal error (ldarnet {__version__}): the above is "
              "a bug in ldarnet, not a problem with your input. Please report it with the "
              "command line and this traceback.", file=sys.stderr)
        return 1


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a log line per error, whatever the message holds)."""
    return re.sub(r"\s*\n\s*", " ", str(err)).strip()


if __name__ == "__main__":
    sys.exit(main())
