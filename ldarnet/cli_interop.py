"""The ``ldarnet`` sub-commands that exchange models and outputs with other tools.

import-checkpoint (the authors' released .pt → a model directory), embed (FASTA →
per-sequence embeddings) and export-hf (a model → a HuggingFace-style directory with a
model card). Imports happen inside the command functions so ``ldarnet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json


def _cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from ldarnet.interop.release_checkpoint import import_release_checkpoint

    doc = import_release_checkpoint(args.checkpoint, args.out, name=args.name,
                                    reverse_padding=args.reverse_padding, force=args.force)
    conv = doc["conversion"]
    print(f"{args.out}: {doc['summary']['parameters']:,} parameters from {args.checkpoint} "
          f"(release step {doc['source']['release_step']}, {conv['mapped_keys']} keys, "
          f"{conv['tied_groups_verified']} tied groups verified); load it with "
          f"load_pretrained({str(args.out)!r})")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from ldarnet.interop.embed import embed_fasta

    summary = embed_fasta(args.model, args.fasta, args.out, batch_size=args.batch_size,
                          device=args.device, fmt=args.format)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_export_hf(args: argparse.Namespace) -> int:
    from ldarnet.interop.hf_export import export_hf

    config = export_hf(args.model, args.outdir, eval_table=args.eval_table,
                       license_id=args.license, force=args.force)
    print(f"{args.outdir}: model.safetensors, config.json, README.md "
          f"({config['num_parameters']:,} parameters)")
    return 0


def add_interop_commands(sub: argparse._SubParsersAction) -> None:
    """Register import-checkpoint, embed and export-hf on the main parser."""
    p = sub.add_parser("import-checkpoint",
                       help="convert the authors' released .pt checkpoint into a model directory")
    p.add_argument("checkpoint", help="release checkpoint (model_ckpt_110m.pt from "
                   "HuggingFace darlednik/LDARNet-110M); read with weights_only=True only")
    p.add_argument("out", help="output directory (model.safetensors + config.json)")
    p.add_argument("--name", default="ldarnet-release", help="model name recorded in the config")
    p.add_argument("--reverse-padding", choices=("exact", "release"), default="exact",
                   help="reverse scan of BiMamba-2 on padded rows: exact (default, "
                   "batch-independent) or release (the release's padding leak, spec 1.4)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=_cmd_import_checkpoint)

    p = sub.add_parser("embed", help="per-sequence mean-pooled embeddings of a FASTA file")
    p.add_argument("model", help="model directory or model.safetensors with config.json beside")
    p.add_argument("fasta", help="DNA FASTA (plain or gzip); one embedding per record")
    p.add_argument("out", help="output .parquet (name, length, embedding) or .npy "
                   "(+ .names.txt beside it)")
    p.add_argument("--batch-size", type=int, default=8, help="records per model call (default 8)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="default auto: cuda when available, else cpu")
    p.add_argument("--format", choices=("parquet", "npy"), default=None,
                   help="default: from the suffix of OUT")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("export-hf",
                       help="export a model as a HuggingFace-style directory with a model card")
    p.add_argument("model", help="run directory or model.safetensors with config.json beside")
    p.add_argument("outdir", help="output directory (model.safetensors, config.json, README.md)")
    p.add_argument("--eval-table", default=None,
                   help="table pasted into the card (.tsv/.csv rendered, .md pasted), e.g. "
                   "results/tables/nt_summary.tsv")
    p.add_argument("--license", default="mit", help="license id in the card (default mit)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=_cmd_export_hf)
