"""The genome stage's commands: download → prepare-genome → tile (token shards).

One per rule of workflow/rules/genome.smk; the library functions are in ldarnet.data.
"""

from __future__ import annotations

import argparse

from ldarnet.foundation.errors import UserError


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


def _cmd_download(args: argparse.Namespace) -> int:
    from ldarnet.data.download import download

    path = download(args.url, args.out, md5=args.md5, md5_url=args.md5_url,
                    retries=args.retries, timeout=args.timeout)
    print(path)
    return 0


def _cmd_prepare_genome(args: argparse.Namespace) -> int:
    from ldarnet.data.genome import prepare_genome
    from ldarnet.foundation.atomic import write_json

    summary = prepare_genome(args.fasta, args.out, contigs=args.contigs)
    if args.summary:
        write_json(args.summary, summary)
    print(f"{args.out}: {summary['records']} records, {summary['total_bases']:,} bp "
          f"(source md5 {summary['source_md5']}"
          + (f", {summary['carriage_returns']:,} carriage returns removed"
             if summary["crlf_normalised"] else "") + ")")
    return 0


def _cmd_tile(args: argparse.Namespace) -> int:
    from ldarnet.data.tiling import tile_genome

    manifest = tile_genome(args.fasta, _split_intervals(args), args.window, args.out_dir,
                           multispecies=args.multispecies)
    counts = ", ".join(f"{s} {v['windows']:,}" for s, v in manifest["splits"].items())
    if manifest["multispecies"]:
        counts += f", train_multispecies {manifest['multispecies']['windows']:,}"
    print(f"{args.out_dir}: windows of {args.window} bp: {counts}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The genome commands."""
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
