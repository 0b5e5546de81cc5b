"""Checks and helpers shared by the Snakemake workflow and the tests.

The JSON schema (workflow/schemas/config.schema.yaml) checks keys and types; this
module checks what a schema cannot: that named files exist, that model configs load,
that cross-references (pretrained models, split contigs) are consistent. Everything fails
before any job runs, with one message naming the config key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldarnet.model.config import ConfigError, load_model_config
from ldarnet.train.train_config import TrainConfigError, load_train_config


class WorkflowConfigError(ValueError):
    """A workflow config that is well-typed but cannot describe a run."""


def lr_label(lr: float) -> str:
    """The one text form of a learning rate in paths and wildcards (``1e-05``, ``0.0002``)."""
    return f"{lr:g}"


def _exists(path: str, key: str, root: Path) -> None:
    if not (root / path).exists():
        raise WorkflowConfigError(f"config {key}: file {path} does not exist")


def _local_or_download(section: dict, name: str, local: str, url: str, md5_url: str,
                       what: str, root: Path) -> None:
    """An input is either a local file that exists, or a URL with its checksum listing."""
    if section[local]:
        _exists(section[local], f"{name}.{local}", root)
    elif not (section[url] and section[md5_url]):
        raise WorkflowConfigError(
            f"config {name}: set {name}.{local} ({what}) or both {name}.{url} and "
            f"{name}.{md5_url} (download with checksum)"
        )


def _known(names: list[str], allowed: list[str], key: str, what: str) -> None:
    """Every name of a cross-reference must exist where it points."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise WorkflowConfigError(
            f"config {key}: unknown model(s) {unknown}; {what}: {', '.join(sorted(allowed))}"
        )


def check_config(config: dict[str, Any], root: str | Path = ".") -> None:
    """Semantic checks of a schema-valid workflow config; raises WorkflowConfigError."""
    root = Path(root)
    genome = config["genome"]
    _local_or_download(genome, "genome", "fasta", "url", "md5_url", "a local FASTA", root)
    split = genome["split"]
    if split["method"] == "bed":
        if not split.get("bed"):
            raise WorkflowConfigError("config genome.split.bed: required when method is 'bed'")
        _exists(split["bed"], "genome.split.bed", root)
    else:
        valid, test = split.get("valid") or [], split.get("test") or []
        if not valid or not test:
            raise WorkflowConfigError(
                "config genome.split: method 'chromosomes' needs non-empty 'valid' and 'test' "
                "contig lists"
            )
        both = sorted(set(valid) & set(test))
        if both:
            raise WorkflowConfigError(f"config genome.split: {both} are both valid and test")
        contigs = genome["contigs"]
        if contigs:
            missing = sorted(set(valid + test) - set(contigs))
            if missing:
                raise WorkflowConfigError(
                    f"config genome.split: held-out contigs {missing} are not in genome.contigs"
                )
    if genome["multispecies"]:
        _exists(genome["multispecies"], "genome.multispecies", root)
    for name, entry in config["models"].items():
        key = f"models.{name}.config"
        _exists(entry["config"], key, root)
        try:
            load_model_config(root / entry["config"])
        except ConfigError as err:
            raise WorkflowConfigError(f"config {key}: {err}") from None
    pretrain = config["pretrain"]
    _known(pretrain["models"], list(config["models"]), "pretrain.models", "defined models")
    _exists(pretrain["config"], "pretrain.config", root)
    try:
        train = load_train_config(root / pretrain["config"])
        if pretrain["gpus"] > 1:
            train.accumulation(pretrain["gpus"])
    except TrainConfigError as err:
        raise WorkflowConfigError(f"config pretrain.config: {err}") from None
    if train.seq_len != genome["window"]:
        raise WorkflowConfigError(
            f"config pretrain.config: seq_len={train.seq_len} but genome.window="
            f"{genome['window']}; the token shards must have the training length"
        )
    boundaries = config["boundaries"]
    _known(boundaries["models"], pretrain["models"], "boundaries.models",
           "pretrained models (pretrain.models)")
    _local_or_download(boundaries, "boundaries", "exons", "annotation_url",
                       "annotation_md5_url", "a local exon table", root)
    if boundaries["regions"]:
        _exists(boundaries["regions"], "boundaries.regions", root)
    for table in boundaries["density_tables"]:
        _exists(table, "boundaries.density_tables", root)
    local = boundaries["exons"] or ""
    if boundaries["start_codons"] == "gtf" and local and not local.lower().endswith(
            (".gtf", ".gtf.gz")):
        raise WorkflowConfigError(
            f"config boundaries.start_codons: gtf needs a GTF annotation, but boundaries.exons "
            f"is {local!r} (an exon table without start codons); set start_codons to "
            "longest_orf (inferred, labelled so) or none"
        )
    stray = [t for t in boundaries["density_tasks"] if t not in config["tasks"]]
    if stray:
        raise WorkflowConfigError(
            f"config boundaries.density_tasks: {stray} are not among `tasks` (their prepared "
            "test splits are what the density plots read)"
        )
    labels = [lr_label(lr) for lr in config["grid"]["learning_rates"]]
    if len(set(labels)) != len(labels):
        raise WorkflowConfigError(
            f"config grid.learning_rates: values collide when written as text: {labels}"
        )
    _check_evaluation(config, root)
    _check_ablation(config, root)


def _check_evaluation(config: dict[str, Any], root: Path) -> None:
    """Evaluation cross-references: models, registry tasks, sources, folds."""
    from ldarnet.evaluation.registry import RegistryError, load_registry
    from ldarnet.evaluation.source_config import SourceConfigError, load_sources

    ev = config["evaluation"]
    _known(ev["models"], config["pretrain"]["models"], "evaluation.models",
           "pretrained models (pretrain.models)")
    if ev["pretrain_seed"] not in config["pretrain"]["seeds"]:
        raise WorkflowConfigError(
            f"config evaluation.pretrain_seed: {ev['pretrain_seed']} is not among "
            f"pretrain.seeds {config['pretrain']['seeds']}"
        )
    _exists(ev["registry"], "evaluation.registry", root)
    try:
        registry = load_registry(root / ev["registry"])
    except RegistryError as err:
        raise WorkflowConfigError(f"config evaluation.registry: {err}") from None
    missing = [t for t in config["tasks"] if t not in registry]
    if missing:
        raise WorkflowConfigError(
            f"config tasks: {missing} are not in the registry {ev['registry']}"
        )
    if ev["sources"]:
        _exists(ev["sources"], "evaluation.sources", root)
        try:
            sources = load_sources(root / ev["sources"])
        except SourceConfigError as err:
            raise WorkflowConfigError(f"config evaluation.sources: {err}") from None
        unknown = sorted(set(sources) - set(registry))
        if unknown:
            raise WorkflowConfigError(
                f"config evaluation.sources: {ev['sources']} names unknown task(s) {unknown}"
            )
    bad = [k for k in ev["grid_folds"] if k >= config["folds"]]
    if bad:
        raise WorkflowConfigError(
            f"config evaluation.grid_folds: {bad} do not exist with folds={config['folds']} "
            f"(folds are numbered 0..{config['folds'] - 1})"
        )


def _check_ablation(config: dict[str, Any], root: Path) -> None:
    """Arms are model entries with non-learned boundaries; the reference is pretrained."""
    ab = config["ablation"]
    if not ab["arms"]:
        return
    _known([ab["reference"]], config["pretrain"]["models"], "ablation.reference",
           "pretrained models (pretrain.models)")
    _known(ab["arms"], list(config["models"]), "ablation.arms", "defined models")
    reference = load_model_config(root / config["models"][ab["reference"]]["config"])
    if reference.routing.boundaries != "learned":
        raise WorkflowConfigError(
            f"config ablation.reference: {ab['reference']} has "
            f"routing.boundaries={reference.routing.boundaries}; the reference is the "
            "learned model"
        )
    for arm in ab["arms"]:
        cfg = load_model_config(root / config["models"][arm]["config"])
        if cfg.routing.boundaries == "learned":
            raise WorkflowConfigError(
                f"config ablation.arms: {arm} has learned boundaries; an arm must set "
                "routing.boundaries to fixed_grid or random"
            )
    missing = [t for t in ab["tasks"] if t not in config["tasks"]]
    if missing or not ab["tasks"]:
        raise WorkflowConfigError(
            f"config ablation.tasks: {missing or '[]'} must be a non-empty subset of `tasks`"
        )


def table_of(task: str, registry: str | Path = "config/tasks.tsv") -> str:
    """The results table (``results/tables/<name>.tsv``) that shows ``task``."""
    from ldarnet.evaluation.registry import load_registry

    tasks = load_registry(registry)
    if task not in tasks:
        raise WorkflowConfigError(f"task {task!r} is not in the registry {registry}")
    return tasks[task].group


def main(argv: list[str] | None = None) -> int:
    """``python -m ldarnet.pipeline table-of TASK``: used by ``make rerun-cv``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "table-of":
        print("usage: python -m ldarnet.pipeline table-of TASK", file=sys.stderr)
        return 2
    try:
        print(table_of(args[1]))
    except WorkflowConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
