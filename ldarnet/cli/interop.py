"""Models and inputs exchanged with the outside world (workflow/rules/release.smk).

The pre-flight of remote inputs (check-sources), released checkpoints (fetch-checkpoint,
import-checkpoint), embeddings (embed) and HuggingFace-style export (export-hf).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ldarnet.cli.options import add_device_option, add_offline_option, chosen_device


def _cmd_check_sources(args: argparse.Namespace) -> int:
    from ldarnet.data.remote import offline_requested
    from ldarnet.pipeline import preflight

    paths = args.config or ["config/config.yaml"]
    root = Path(".")

    def run() -> list[preflight.Row]:
        config = preflight.load_workflow_config(paths, root)
        inputs = preflight.remote_inputs(config, preflight.models_file(paths), root)
        return preflight.check_sources(inputs, offline=args.offline, timeout=args.timeout)

    rows = run()
    line = preflight.offline_line(rows, forced=offline_requested(args.offline))
    if line is not None:
        print(line)
        return preflight.EXIT_OFFLINE
    if args.pin:
        messages = preflight.pin(rows)
        for message in messages:
            print(message)
        if any(m.startswith("pinned") for m in messages):
            rows = run()  # the report of the config as now written
    if not rows:
        print("no remote inputs: everything this config reads is local")
        if args.out:
            preflight.write_tsv(rows, args.out)
        return preflight.EXIT_OK
    print(preflight.format_table(rows))
    failed = [r for r in rows if not r.ok]
    if failed:
        print(f"\n{len(failed)} of {len(rows)} remote inputs would fail: "
              f"{', '.join(r.item.name for r in failed)}", file=sys.stderr)
        if any("unpinned" in r.result for r in failed) and not args.pin:
            print("unpinned sources: run this command again with --pin to resolve and record "
                  "their commits and checksums", file=sys.stderr)
        return preflight.EXIT_FAIL
    if args.out:
        preflight.write_tsv(rows, args.out)
    print(f"\nall {len(rows)} remote inputs would download and verify"
          + (f"; report: {args.out}" if args.out else ""))
    return preflight.EXIT_OK


def _cmd_fetch_checkpoint(args: argparse.Namespace) -> int:
    from ldarnet.data.remote import fetch
    from ldarnet.interop.checkpoint_source import PIN_COMMAND, checkpoint_file, unpinned_reason

    sha256 = args.sha256 or None  # the workflow passes '' for an unpinned (null) sha256
    entry = {"checkpoint": args.source, "revision": args.revision or "main", "sha256": sha256}
    if args.base_url:
        entry["base_url"] = args.base_url
    file = checkpoint_file(args.model, entry)
    how_to_pin = f"Pin it in the workflow config with `{PIN_COMMAND}`"
    why = unpinned_reason(file, sha256)
    if why is not None:
        from ldarnet.data.remote import RemoteError

        raise RemoteError(f"checkpoint {file.describe()} is not pinned ({why}). {how_to_pin}")
    lock = fetch(file, args.out, sha256=sha256, offline=args.offline,
                 how_to_fetch=f"`snakemake {args.out}`", how_to_pin=how_to_pin,
                 extra={"model": args.model})
    print(json.dumps(lock))
    return 0


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
                          device=chosen_device(args.device), fmt=args.format)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_export_hf(args: argparse.Namespace) -> int:
    from ldarnet.interop.hf_export import export_hf

    config = export_hf(args.model, args.outdir, eval_table=args.eval_table,
                       license_id=args.license, force=args.force)
    print(f"{args.outdir}: model.safetensors, config.json, README.md "
          f"({config['num_parameters']:,} parameters)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The interop commands."""
    p = sub.add_parser(
        "check-sources",
        help="pre-flight: ask every server about every remote input of a workflow config",
        description="Resolve every remote input of a workflow config (genome, annotation, "
        "each task file, released checkpoints) without downloading it and print one table: "
        "status, size, commit, checksum, verdict. Exit 0: all would work; 1: some would fail "
        "(named); 2: the config is unusable; 3: no network (one line).")
    p.add_argument("--config", action="append", default=None, metavar="YAML",
                   help="workflow config (repeat to merge several, as snakemake --configfile; "
                   "default config/config.yaml)")
    p.add_argument("--pin", action="store_true",
                   help="write the commits (and checkpoint sha256) the servers report for "
                   "unpinned sources into the config files, then check again")
    p.add_argument("--out", default=None, help="also write the report as TSV (on success)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per request")
    add_offline_option(p, "no network: report only what is cached")
    p.set_defaults(func=_cmd_check_sources)

    p = sub.add_parser("fetch-checkpoint",
                       help="download a released checkpoint, pinned and verified (lock file)")
    p.add_argument("source", help="<owner>/<repo>/<file> on the HuggingFace hub, or a URL")
    p.add_argument("--model", default="release", help="model entry name (recorded in the lock)")
    p.add_argument("--revision", default="main", help="hub commit (40 hex) of the file")
    p.add_argument("--sha256", default=None, help="SHA-256 of the file (64 hex)")
    p.add_argument("--base-url", default=None, help="hub mirror (default huggingface.co)")
    add_offline_option(p, "use the cache only")
    p.add_argument("--out", required=True, help="destination file (a .json lock is written "
                   "beside it)")
    p.set_defaults(func=_cmd_fetch_checkpoint)

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
    add_device_option(p)
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
