"""The downstream evaluation's commands (workflow/rules/evaluate.smk).

fetch-task → prepare-task → finetune-grid (× grid) → select-config → finetune-cv
(× seeds) → eval-summary; the tables are ``eval-table`` (report).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldarnet.cli.options import (
    add_device_option,
    add_offline_option,
    chosen_device,
    log,
    read_result,
    write_result,
)


def _registry(path: str):
    from ldarnet.tasks.registry import load_registry

    return load_registry(path)


def _spec(args: argparse.Namespace):
    from ldarnet.foundation.errors import UserError

    registry = _registry(args.registry)
    if args.task not in registry:
        raise UserError(f"task {args.task!r} is not in the registry {args.registry}; "
                        f"known tasks: {', '.join(registry)}")
    return registry[args.task]


def _finetune_config(args: argparse.Namespace, lr: float, batch_size: int, seed: int):
    from ldarnet.evaluation.finetune import FinetuneConfig

    return FinetuneConfig(
        lr=lr, batch_size=batch_size, max_epochs=args.max_epochs, patience=args.patience,
        plateau_mode=args.plateau_mode, decay_exemptions=args.decay_exemptions,
        eval_batch_size=args.eval_batch_size, seed=seed, device=chosen_device(args.device),
    )


def _backbone_loader(model: str, device: str):
    """A function that loads the pretrained backbone afresh (every fold starts from it)."""
    from ldarnet.model.pretrained import load_pretrained

    def load():
        return load_pretrained(model, device=device)

    load()  # fail now, with the loader's message, rather than inside the first fold
    return load


def _kept_result(path: Path, key: dict) -> dict | None:
    """A result of exactly these inputs that another job wrote while this one waited."""
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return result if result.get("key") == key else None


def _finetune_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="task name (config/tasks.tsv)")
    p.add_argument("--registry", default="config/tasks.tsv", help="task registry TSV")
    p.add_argument("--task-dir", required=True, help="prepared task (ldarnet prepare-task)")
    p.add_argument("--model", required=True, help="pretrained run directory or .safetensors")
    p.add_argument("--n-splits", type=int, default=10, help="K of the K-fold split")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=5, help="early stopping on validation MCC")
    p.add_argument("--plateau-mode", choices=["max", "min"], default="max",
                   help="LR halving on validation MCC: max (correct) or min (the release)")
    p.add_argument("--decay-exemptions", choices=["standard", "release"], default="standard")
    p.add_argument("--eval-batch-size", type=int, default=128)
    add_device_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="result JSON")


def _cmd_fetch_task(args: argparse.Namespace) -> int:
    from ldarnet.foundation.errors import UserError
    from ldarnet.tasks.remote_sources import (
        fetch_task_file,
        load_remote_sources,
        suite_of,
        task_cache,
    )

    spec = _spec(args)
    suite = suite_of(spec, load_remote_sources(args.remote), args.remote)
    names = args.file or list(suite.files_for(spec))
    if args.out and len(names) != 1:
        raise UserError(f"--out names one file, but {len(names)} are fetched ({names}); "
                        "give --file NAME with --out")
    for name in names:
        dest = args.out or task_cache(spec.name, name)
        lock = fetch_task_file(spec, suite, name, dest, offline=args.offline)
        print(json.dumps(lock))
    return 0


def _cmd_prepare_task(args: argparse.Namespace) -> int:
    from ldarnet.tasks.remote_sources import load_remote_sources, task_source
    from ldarnet.tasks.source_config import is_remote, load_sources
    from ldarnet.tasks.sources import build_task

    spec = _spec(args)
    sources = load_sources(args.sources)
    remote = load_remote_sources(args.remote) if is_remote(spec.name, sources) else {}
    source = task_source(spec, sources, remote, args.remote)
    subsample = None
    if args.subsample_train or args.subsample_test:
        subsample = {k: v for k, v in (("train", args.subsample_train),
                                       ("test", args.subsample_test)) if v}
    manifest = build_task(spec, source, args.out, subsample=subsample, seed=args.subsample_seed)
    print(json.dumps(manifest, indent=2))
    return 0


def _cmd_finetune_grid(args: argparse.Namespace) -> int:
    from ldarnet.evaluation.protocol import run_grid_point

    spec = _spec(args)
    cfg = _finetune_config(args, args.lr, args.batch_size, args.seed)
    result = run_grid_point(args.task_dir, spec, _backbone_loader(args.model, cfg.device), cfg,
                            folds=args.folds, n_splits=args.n_splits,
                            progress=not args.no_progress, log=log)
    write_result(args.out, result)
    print(f"{args.out}: {spec.name} lr={args.lr:g} bs={args.batch_size}: validation MCC "
          f"{result['val_mcc']:.4f} over fold(s) {args.folds}")
    return 0


def _cmd_select_config(args: argparse.Namespace) -> int:
    from ldarnet.evaluation.selection import select_configuration

    grid = []
    for path in args.grid:
        point = read_result(path)
        # every top-level key but the per-epoch runs: a grid file that carries test
        # metrics is refused by the selection instead of being silently trimmed
        grid.append({**{k: v for k, v in point.items() if k != "runs"}, "file": path})
    chosen = select_configuration(grid)
    chosen["grid"] = grid
    write_result(args.out, chosen)
    print(f"{args.out}: lr={chosen['lr']:g} bs={chosen['batch_size']} "
          f"(validation MCC {chosen['val_mcc']:.4f}, best of {len(grid)})")
    return 0


def _cmd_finetune_cv(args: argparse.Namespace) -> int:
    from ldarnet.evaluation.protocol import cv_key, discard_partial_folds, run_cv
    from ldarnet.foundation.runlock import exclusive

    spec = _spec(args)
    selected = read_result(args.selected)
    cfg = _finetune_config(args, float(selected["lr"]), int(selected["batch_size"]), args.seed)
    out, out_dir = Path(args.out), Path(args.out).parent
    with exclusive(out_dir, log=log):
        key = cv_key(args.model, args.task_dir, cfg, args.n_splits)
        result = _kept_result(out, key)
        if result is not None:
            log(f"{out}: written by another job of the same inputs while this one waited; "
                 "kept")
        else:
            result = run_cv(args.task_dir, spec, _backbone_loader(args.model, cfg.device),
                            cfg, n_splits=args.n_splits, out_dir=out_dir, key=key,
                            progress=not args.no_progress, log=log)
            result["selected"] = args.selected
            write_result(args.out, result)
            discard_partial_folds(out_dir)
    mcc = result["test"]["mcc"]
    print(f"{args.out}: {spec.name} seed {args.seed}: test MCC {mcc['mean']:.4f} ± "
          f"{mcc['ci95']:.4f} over {mcc['n']} folds")
    return 0


def _cmd_eval_summary(args: argparse.Namespace) -> int:
    from ldarnet.evaluation.protocol import summarize_task
    from ldarnet.tasks.task_data import read_manifest

    cv = [read_result(p) for p in args.cv]
    selected = read_result(args.selected)
    summary = summarize_task(cv, selected, read_manifest(args.task_dir), args.model_name)
    write_result(args.out, summary)
    mcc = summary["test"]["mcc"]
    print(f"{args.out}: MCC {mcc['mean']:.4f} ± {mcc['ci95']:.4f} (n={mcc['n']})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The evaluate commands."""
    p = sub.add_parser("fetch-task", help="download a task's official files (pinned, verified, "
                       "locked; NT from the hub, GB from Zenodo)")
    p.add_argument("task")
    p.add_argument("--registry", default="config/tasks.tsv")
    p.add_argument("--remote", default="config/evaluation/remote.yaml",
                   help="remote-sources file: where each suite's files live, pinned")
    p.add_argument("--file", nargs="+", default=None,
                   help="which of the task's files (train.parquet, test.parquet, "
                   "archive.zip; default: all of them)")
    add_offline_option(p, "use the cache only")
    p.add_argument("--out", default=None, help="destination of one --file (default: the "
                   "workflow cache resources/downloads/tasks/<task>/<file>)")
    p.set_defaults(func=_cmd_fetch_task)

    p = sub.add_parser("prepare-task", help="build a task's train.csv/test.csv/task.json")
    p.add_argument("task")
    p.add_argument("--registry", default="config/tasks.tsv")
    p.add_argument("--sources", default=None,
                   help="local sources YAML (default: every task from its remote source)")
    p.add_argument("--remote", default="config/evaluation/remote.yaml",
                   help="remote-sources file of the tasks without a local source")
    p.add_argument("--subsample-train", type=int, default=0, help="stratified rows (0 = all)")
    p.add_argument("--subsample-test", type=int, default=0, help="stratified rows (0 = all)")
    p.add_argument("--subsample-seed", type=int, default=0)
    p.add_argument("--out", required=True, help="task directory")
    p.set_defaults(func=_cmd_prepare_task)

    p = sub.add_parser("finetune-grid", help="one grid configuration, validation MCC only")
    _finetune_options(p)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--folds", type=int, nargs="+", default=[0], help="grid fold(s)")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_cmd_finetune_grid)

    p = sub.add_parser("select-config", help="choose the grid configuration by validation MCC")
    p.add_argument("--grid", nargs="+", required=True, help="finetune-grid JSON files")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_select_config)

    p = sub.add_parser("finetune-cv", help="the selected configuration on every fold (resumes)")
    _finetune_options(p)
    p.add_argument("--selected", required=True, help="select-config JSON")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_cmd_finetune_cv)

    p = sub.add_parser("eval-summary", help="pool a task's CV runs of all seeds")
    p.add_argument("--cv", nargs="+", required=True, help="finetune-cv JSON files")
    p.add_argument("--selected", required=True)
    p.add_argument("--task-dir", required=True)
    p.add_argument("--model-name", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_eval_summary)
