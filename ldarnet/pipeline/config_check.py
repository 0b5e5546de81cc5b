"""Checks and helpers shared by the Snakemake workflow and the tests.

The JSON schema (workflow/schemas/config.schema.yaml) checks keys and types; this
module checks what a schema cannot: that named files exist, that model configs load,
that cross-references (pretrained models, split contigs) are consistent. Everything fails
before any job runs, with one message naming the config key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ldarnet.foundation.errors import InputError
from ldarnet.foundation.schema import load_schema, schema_problem
from ldarnet.model.config import ConfigError, load_model_config
from ldarnet.train.train_config import TrainConfigError, load_train_config


class WorkflowConfigError(InputError):
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


def check_config(config: dict[str, Any], root: str | Path = ".",
                 config_files: Sequence[str | Path] = ()) -> None:
    """Semantic checks of a schema-valid workflow config; raises WorkflowConfigError.

    ``config_files`` (Snakemake's ``workflow.configfiles``) are named in every message.
    """
    try:
        _check_config(config, Path(root))
    except WorkflowConfigError as err:
        if not config_files:
            raise
        raise WorkflowConfigError(f"{_files(config_files)}: {err}") from None


def _check_config(config: dict[str, Any], root: Path) -> None:
    pretrain = config["pretrain"]
    if pretrain["stop_before_limit"] >= 60 * pretrain["runtime"]:
        raise WorkflowConfigError(
            f"config pretrain.stop_before_limit: {pretrain['stop_before_limit']} s is not less "
            f"than the job's time limit (pretrain.runtime: {pretrain['runtime']} min); every "
            "attempt would stop after one step. Use a lead of a few percent of the runtime")
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
        if "checkpoint" in entry:  # released weights: fetched and imported, not pretrained
            _check_checkpoint_entry(name, entry)
            continue
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
    _check_inputs(config, root)


def _check_checkpoint_entry(name: str, entry: dict[str, Any]) -> None:
    """A released-checkpoint model entry must name a hub file or URL it can be fetched from."""
    from ldarnet.interop.checkpoint_source import checkpoint_file
    from ldarnet.interop.errors import InteropError

    try:
        checkpoint_file(name, entry)
    except InteropError as err:
        raise WorkflowConfigError(str(err)) from None


def _check_remote(config: dict[str, Any], registry: dict, sources: dict, root: Path) -> None:
    """Every task without a local source has a remote source for its suite."""
    from ldarnet.tasks.remote_sources import load_remote_sources
    from ldarnet.tasks.source_config import SourceConfigError, is_remote

    ev = config["evaluation"]
    remote_tasks = [t for t in config["tasks"] if is_remote(t, sources)]
    if not remote_tasks:
        return
    _exists(ev["remote"], "evaluation.remote", root)
    try:
        remote = load_remote_sources(root / ev["remote"])
    except SourceConfigError as err:
        raise WorkflowConfigError(f"config evaluation.remote: {err}") from None
    missing = sorted({registry[t].suite for t in remote_tasks} - set(remote))
    if missing:
        raise WorkflowConfigError(
            f"config evaluation.remote: {ev['remote']} has no entry for suite(s) {missing}, "
            f"needed by the tasks without a local source"
        )
    for suite in remote.values():
        counts = suite.reader.get("expected_counts")
        if counts:
            _exists(counts, f"evaluation.remote ({suite.suite}.expected_counts)", root)


def _check_evaluation(config: dict[str, Any], root: Path) -> None:
    """Evaluation cross-references: models, registry tasks, sources, folds."""
    from ldarnet.tasks.registry import RegistryError, load_registry
    from ldarnet.tasks.source_config import SourceConfigError, load_sources

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
    sources: dict = {}
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
    _check_remote(config, registry, sources, root)
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
    released = [m for m in [ab["reference"], *ab["arms"]] if "checkpoint" in config["models"][m]]
    if released:
        raise WorkflowConfigError(
            f"config ablation: {released} are released checkpoints; the FLOPs-matched ablation "
            "pretrains every arm from the same data order, so its models need a config"
        )
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


# ------------------------------------------------------------------ schema, early inputs
def _files(config_files: Sequence[str | Path]) -> str:
    return ", ".join(str(f) for f in config_files) or "the workflow config"


def check_schema(config: dict[str, Any], schema_path: str | Path,
                 config_files: Sequence[str | Path] = ()) -> None:
    """Validate ``config`` against the JSON schema; one short message naming file and key.

    Snakemake's own ``validate`` reports a failure with the whole sub-schema of the
    failing section (hundreds of lines for ``boundaries``) and without the config file;
    this runs first and says ``<file>: key <a.b.c>: <problem>`` instead.
    """
    found = schema_problem(config, load_schema(schema_path))
    if found is not None:
        key, problem = found
        raise WorkflowConfigError(f"{_files(config_files)}: key {key}: {problem}; every key is "
                                  "documented in config/README.md")


def _check_inputs(config: dict[str, Any], root: Path) -> None:
    """What the dry run can know about the inputs themselves, before any job runs.

    Local files are opened with the same readers the jobs use (a BED that does not
    parse, an annotation without the locus gene, a task source file that is missing),
    so that a mistake fails now and not after hours of pretraining.
    """
    genome, boundaries = config["genome"], config["boundaries"]
    contigs = set(genome["contigs"] or [])
    bed_contigs = _bed_contigs(genome["split"].get("bed"), "genome.split.bed", root, 4,
                               genome["split"]["method"] == "bed")
    if contigs and bed_contigs - contigs:
        raise WorkflowConfigError(
            f"config genome.split.bed: contigs {sorted(bed_contigs - contigs)} are not among "
            f"genome.contigs {sorted(contigs)}")
    regions = _bed_contigs(boundaries["regions"], "boundaries.regions", root, 3, True)
    if contigs and regions - contigs:
        raise WorkflowConfigError(
            f"config boundaries.regions: contigs {sorted(regions - contigs)} are not among "
            f"genome.contigs {sorted(contigs)} (only those are prepared)")
    if contigs and boundaries["contigs"]:
        stray = sorted(set(boundaries["contigs"]) - contigs)
        if stray:
            raise WorkflowConfigError(f"config boundaries.contigs: {stray} are not among "
                                      f"genome.contigs {sorted(contigs)}")
    _check_locus_gene(config, root, regions or contigs)
    _check_task_sources(config, root)
    subsample = config["evaluation"]["subsample"]
    if subsample and subsample.get("train") is not None and subsample["train"] < config["folds"]:
        raise WorkflowConfigError(
            f"config evaluation.subsample.train: {subsample['train']} rows cannot be split into "
            f"folds={config['folds']} cross-validation folds; use at least {config['folds']}")


def _bed_contigs(path: str | None, key: str, root: Path, columns: int, used: bool) -> set[str]:
    """Contigs of a configured BED file, read (and so checked) by the one BED reader.

    A split BED (4 columns) also has its labels checked, as ``ldarnet tile`` will.
    """
    from ldarnet.data.bed import read_bed
    from ldarnet.data.splits import SPLITS
    from ldarnet.foundation.errors import LdarnetError

    if not path or not used:
        return set()
    _exists(path, key, root)
    try:
        records = read_bed(root / path, columns, what=key)
    except LdarnetError as err:
        raise WorkflowConfigError(f"config {key}: {err}") from None
    for record in records if columns == 4 else []:
        if record.fields[3].strip() not in SPLITS:
            raise WorkflowConfigError(
                f"config {key}: {path}:{record.line}: unknown split label "
                f"{record.fields[3].strip()!r}; the 4th column must be one of {', '.join(SPLITS)}")
    return {record.contig for record in records}


# An annotation larger than this is not parsed by the dry run (a GENCODE GTF takes a
# minute); the locus figure's own step checks the gene then.
_EARLY_ANNOTATION_BYTES = 64 << 20


def _check_locus_gene(config: dict[str, Any], root: Path, segmented: set[str]) -> None:
    """``boundaries.locus_gene`` is a gene of the annotation, on a segmented contig."""
    from ldarnet.data.annotation import read_annotation
    from ldarnet.foundation.errors import LdarnetError

    boundaries = config["boundaries"]
    if not boundaries["models"]:
        return
    local = boundaries["exons"]
    key = "boundaries.exons"
    if not local:  # a download: checked by the steps that read it
        return
    path = root / local
    if not path.is_file() or path.stat().st_size > _EARLY_ANNOTATION_BYTES:
        return
    try:
        annotation = read_annotation(path)
        annotation.require_exons()
    except LdarnetError as err:
        raise WorkflowConfigError(f"config {key}: {err}") from None
    gene = boundaries["locus_gene"]
    if gene not in annotation.genes():
        raise WorkflowConfigError(
            f"config boundaries.locus_gene: gene {gene!r} is not in the annotation {local} "
            f"({annotation.gene_hint()}); name a gene of the annotated (and segmented) region")
    contig = annotation.gene_tss(gene)[0]
    if segmented and contig not in segmented:
        raise WorkflowConfigError(
            f"config boundaries.locus_gene: {gene} lies on {contig}, which is not segmented "
            f"(boundaries.regions / genome.contigs: {sorted(segmented)})")


def _check_task_sources(config: dict[str, Any], root: Path) -> None:
    """Every local file a configured task's source names exists (remote suites aside)."""
    from ldarnet.tasks.source_config import (
        SourceConfigError,
        is_remote,
        load_sources,
        source_inputs,
    )

    sources_file = config["evaluation"]["sources"]
    if not sources_file:
        return
    try:
        sources = load_sources(root / sources_file)
    except SourceConfigError as err:
        raise WorkflowConfigError(f"config evaluation.sources: {err}") from None
    for task in config["tasks"]:
        if is_remote(task, sources):
            continue
        for file in source_inputs(sources[task]):
            if not (root / file).exists():
                raise WorkflowConfigError(
                    f"config evaluation.sources: {sources_file}: task {task} names {file}, "
                    "which does not exist (paths are relative to the workflow directory)")


def table_of(task: str, registry: str | Path = "config/tasks.tsv") -> str:
    """The results table (``results/tables/<name>.tsv``) that shows ``task``."""
    from ldarnet.tasks.registry import load_registry

    tasks = load_registry(registry)
    if task not in tasks:
        raise WorkflowConfigError(f"task {task!r} is not in the registry {registry}")
    return tasks[task].group


def main(argv: list[str] | None = None) -> int:
    """``python -m ldarnet.pipeline.config_check table-of TASK``: used by ``make rerun-cv``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "table-of":
        print("usage: python -m ldarnet.pipeline.config_check table-of TASK", file=sys.stderr)
        return 2
    try:
        print(table_of(args[1]))
    except WorkflowConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
