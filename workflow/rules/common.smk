# Config validation, wildcard constraints and target lists shared by every stage.
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

import os
import re
import shlex
import sys
from urllib.parse import urlparse

from ldarnet.cluster import (
    GPU_STAGES,
    TEST_BANNER,
    PlannedJob,
    check_submission,
    check_test_mode,
    cpu_job,
    gpu_job,
    gpus_on_cpu,
    outer_retries,
    resubmit_preempted_jobs,
    shell_command,
    stage_compute,
    stage_device,
    torch_launcher,
)
from ldarnet.evaluation.registry import load_registry
from ldarnet.evaluation.remote_sources import load_remote_sources, task_source
from ldarnet.evaluation.source_config import is_remote, load_sources, source_inputs
from ldarnet.interop.checkpoint_source import checkpoint_cache, is_checkpoint_entry
from ldarnet.pipeline import check_config, check_schema, lr_label
from ldarnet.preflight import preflight_rule_params
from ldarnet.report.eval_tables import NT_TABLES, TABLES  # the one list of results tables

# One short message naming the config file and the key, before Snakemake's own (long) one.
check_schema(config, workflow.source_path("../schemas/config.schema.yaml"), workflow.configfiles)
validate(config, schema="../schemas/config.schema.yaml")
check_config(config, workflow.basedir, workflow.configfiles)
check_test_mode(config)

GENOME = config["genome"]
ASSEMBLY = GENOME["assembly"]
SPLITS = ["train", "valid", "test"]
MODELS = sorted(config["models"])


def one_of(names):
    """A wildcard regex matching exactly ``names`` (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    assembly=ASSEMBLY,
    split="|".join(SPLITS),
    model="|".join(MODELS),
    lr=r"[0-9.e+-]+",
    bs=r"\d+",
    fold=r"\d+",
    seed=r"\d+",
    gene=r"[A-Za-z0-9._-]+",
    task=r"[A-Za-z0-9_]+",
    table=one_of(TABLES),


# ------------------------------------------------------------ the command every rule runs
# Jobs import ldarnet from this checkout (workflow/scripts/attempt.sh puts it first on
# PYTHONPATH): with --sdm conda the environments of envs/ hold only third-party packages
# (an environment shared by two clones must not run the other clone's code); otherwise
# the Python that runs Snakemake (the project's .venv) runs the commands.
USES_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = "python" if USES_CONDA else shlex.quote(sys.executable)
LDARNET = f"{PYTHON} -m ldarnet"


# ------------------------------------------------- where jobs run (ldarnet/cluster.py)
# The GPU-capable stages (pretrain, evaluation, boundaries) size their jobs from their
# config sections; every other rule is a CPU job. Rules take their threads, resources,
# retries and --device from these helpers and nowhere else, and the SLURM profile lists
# no rule (docs/cluster.md).
COMPUTE = {stage: stage_compute(config, stage) for stage in GPU_STAGES}


def gpu_threads(stage):
    """Threads of a rule that computes on the stage's GPUs (every CPU its job holds)."""
    return COMPUTE[stage].threads


def gpu_resources(stage):
    """Resources of a rule that computes on the stage's GPUs (a CPU job when gpus is 0)."""
    return gpu_job(config, stage)


def gpu_retries(stage):
    """Retries of a rule that computes on the stage's GPUs (the stage's `retries`)."""
    return retry_count(COMPUTE[stage].retries)


def gpu_device(stage):
    """`--device` of the stage's commands: cuda when its jobs hold GPUs (its `gpus`), else
    cpu; also cpu in the cluster test mode, which says so in every job log (`logged`)."""
    return stage_device(config, stage)


def cpu_resources(mem_mb, runtime):
    """Resources of a CPU rule."""
    return cpu_job(mem_mb, runtime)


def retry_count(count):
    """A rule's retries, spent by the process that submits jobs (never inside a job)."""
    return outer_retries(count, workflow.is_main_process)


ATTEMPT_SCRIPT = os.path.join(workflow.basedir, "workflow", "scripts", "attempt.sh")


def logged(command, stage=None):
    """A rule's shell command, its output in {log} and kept over attempts in {log}.attempts.

    ``{LDARNET}`` and ``{PYTHON}`` in ``command`` become the commands above.
    """
    banner = TEST_BANNER if stage and gpus_on_cpu(config) and COMPUTE[stage].gpus else None
    for name, value in (("{LDARNET}", LDARNET), ("{PYTHON}", PYTHON)):
        command = command.replace(name, value.replace("{", "{{").replace("}", "}}"))
    return shell_command(command, ATTEMPT_SCRIPT, banner=banner)


# Released checkpoints (model entries with `checkpoint:`) are fetched and imported
# (workflow/rules/release.smk); the others are pretrained here.
CHECKPOINT_MODELS = sorted(m for m, e in config["models"].items() if is_checkpoint_entry(e))
TRAINED_MODELS = sorted(set(MODELS) - set(CHECKPOINT_MODELS))
PREFLIGHT = "results/preflight/sources.tsv"  # ldarnet check-sources of this config


def checkpoint_download(wildcards):
    """The downloaded release file of a checkpoint model entry."""
    return checkpoint_cache(wildcards.model, config["models"][wildcards.model])


def checkpoint_setting(wildcards, key, default=""):
    """One key of a checkpoint model entry as command-line text ('' when unset)."""
    value = config["models"][wildcards.model].get(key)
    return default if value is None else value


def log_path(rule_name, *parts):
    """results/logs/<rule>/<parts>.log: one log per job, named by its wildcards."""
    return f"results/logs/{rule_name}/{'/'.join(parts) or rule_name}.log"


def benchmark_path(rule_name, *parts):
    """results/benchmarks/<rule>/<parts>.tsv: Snakemake's per-job time and memory."""
    return f"results/benchmarks/{rule_name}/{'/'.join(parts) or rule_name}.tsv"


# ---------------------------------------------------------------- genome stage helpers
SOURCE_NAME = os.path.basename(urlparse(GENOME["url"] or "genome.fa.gz").path)


def genome_source(wildcards):
    """The configured local FASTA, or the verified download."""
    if GENOME["fasta"]:
        return GENOME["fasta"]
    return f"results/genome/{wildcards.assembly}/source/{SOURCE_NAME}"


def tile_inputs(wildcards):
    inputs = {
        "fasta": f"results/genome/{wildcards.assembly}/genome.fa",
        "fai": f"results/genome/{wildcards.assembly}/genome.fa.fai",
    }
    if GENOME["split"]["method"] == "bed":
        inputs["bed"] = GENOME["split"]["bed"]
    if GENOME["multispecies"]:
        inputs["multispecies"] = GENOME["multispecies"]
    return inputs


def tile_split_args(wildcards, input):
    """Split and multispecies flags of `ldarnet tile` (contigs were chosen by prepare)."""
    split = GENOME["split"]
    if split["method"] == "bed":
        args = [f"--split-method bed --split-bed {input.bed}"]
    else:
        args = [
            "--split-method chromosomes",
            "--valid-contigs " + " ".join(split["valid"]),
            "--test-contigs " + " ".join(split["test"]),
        ]
    if GENOME["multispecies"]:
        args.append(f"--multispecies {input.multispecies}")
    return " ".join(args)


def genome_targets():
    windows = f"results/genome/{ASSEMBLY}/windows"
    return [f"{windows}/{split}.npy" for split in SPLITS] + [f"{windows}/manifest.json"]


# ---------------------------------------------------------------- ablation helpers
ABLATION = config["ablation"]


def ablation_models():
    """The learned reference first, then the arms (fixed grid, random, ...)."""
    return [ABLATION["reference"], *ABLATION["arms"]]


def ablation_budget_file(wildcards):
    """An ablation arm trains the steps of its FLOPs budget; other models their config's."""
    if wildcards.model in ABLATION["arms"]:
        return f"results/ablation/{wildcards.model}/seed{wildcards.seed}/budget.json"
    return []


def pretrain_targets():
    """results/pretrain/{model}/seed{seed}/model.safetensors of every configured run."""
    p = config["pretrain"]
    models = list(dict.fromkeys([*p["models"], *ABLATION["arms"]]))
    return [f"results/pretrain/{model}/seed{seed}/model.safetensors"
            for model in models for seed in p["seeds"]]


def pretrain_launcher(wildcards):
    """torchrun for several GPUs (one process per GPU, its share of threads), else ldarnet."""
    return torch_launcher(COMPUTE["pretrain"], PYTHON)


# -------------------------------------------------------------- boundary stage helpers
BOUNDARIES = config["boundaries"]
ANNOTATION_NAME = os.path.basename(urlparse(BOUNDARIES["annotation_url"] or "a.gtf.gz").path)


def annotation_file(wildcards):
    """The configured local exon table, or the verified GENCODE download."""
    return BOUNDARIES["exons"] or f"results/annotation/{ANNOTATION_NAME}"


def segment_inputs(wildcards):
    inputs = {
        "model": f"results/pretrain/{wildcards.model}/seed{wildcards.seed}/model.safetensors",
        "fasta": f"results/genome/{ASSEMBLY}/genome.fa",
        "fai": f"results/genome/{ASSEMBLY}/genome.fa.fai",
    }
    if BOUNDARIES["regions"]:
        inputs["regions"] = BOUNDARIES["regions"]
    return inputs


def motif_contigs_arg(wildcards):
    contigs = BOUNDARIES["contigs"]
    return ("--contigs " + " ".join(contigs)) if contigs else ""


def expand_boundary_runs(suffix):
    """results/boundaries/{model}/seed{seed}/<suffix> for every analysed run."""
    return [f"results/boundaries/{model}/seed{seed}/{suffix}"
            for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]


def start_codon_runs():
    """start_codon_stats.tsv of every analysed run, unless boundaries.start_codons is none."""
    if BOUNDARIES["start_codons"] == "none":
        return []
    return expand_boundary_runs("start_codons/start_codon_stats.tsv")


def splice_midpoint_tasks():
    """The configured splice tasks whose test sequences the midpoint view profiles."""
    return [t for t in config["tasks"] if REGISTRY[t].group == "splice"]


def splice_midpoint_runs():
    """midpoint_stats.tsv of every analysed run, when a splice task is configured."""
    if not splice_midpoint_tasks():
        return []
    return expand_boundary_runs("splice_midpoint/midpoint_stats.tsv")


def boundary_targets():
    out = ["results/tables/boundaries.tsv"]
    out += [p.replace("_stats.tsv", "_profiles.png")
            for p in start_codon_runs() + splice_midpoint_runs()]
    if BOUNDARIES["density_tables"] or BOUNDARIES["density_tasks"]:
        out += [f"results/figures/boundary_density_{model}_seed{seed}.png"
                for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]
    out += [f"results/figures/locus_{BOUNDARIES['locus_gene']}_{model}_seed{seed}.png"
            for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]
    return out


# ---------------------------------------------------------- evaluation stage helpers
EVAL = config["evaluation"]
REGISTRY = load_registry(EVAL["registry"])
SOURCES = load_sources(EVAL["sources"])
TASKS = list(config["tasks"])
# each suite's pinned remote files (config/evaluation/remote.yaml), for tasks without a
# local source
REMOTE = load_remote_sources(EVAL["remote"]) if any(is_remote(t, SOURCES) for t in TASKS) else {}
GRID = [(lr_label(lr), bs) for lr in config["grid"]["learning_rates"]
        for bs in config["grid"]["batch_sizes"]]


def task_source_inputs(wildcards):
    """The registry and every file the task's source names (the downloads when remote)."""
    source = task_source(REGISTRY[wildcards.task], SOURCES, REMOTE, EVAL["remote"])
    return {"registry": EVAL["registry"], "sources": source_inputs(source)}


def remote_task_file(wildcards):
    """What a fetch_task job downloads (its pinned source: a rerun trigger when it changes)."""
    spec = REGISTRY[wildcards.task]
    files = REMOTE[spec.suite].files_for(spec) if spec.suite in REMOTE else {}
    if wildcards.file not in files:
        raise ValueError(f"task {spec.name} has no remote file {wildcards.file!r}; its "
                         f"suite's files are {list(files)} ({EVAL['remote']})")
    return files[wildcards.file].describe()


def subsample_args(wildcards):
    sub = EVAL["subsample"]
    if not sub:
        return ""
    return (f"--subsample-train {sub['train']} --subsample-test {sub['test']} "
            f"--subsample-seed {sub['seed']}")


def eval_checkpoint(wildcards):
    """The pretrained weights a model entry is fine-tuned from."""
    return f"results/pretrain/{wildcards.model}/seed{EVAL['pretrain_seed']}/model.safetensors"


def finetune_options(wildcards):
    """Protocol switches of finetune-grid / finetune-cv (config evaluation.*)."""
    return (f"--registry {EVAL['registry']} --n-splits {config['folds']} "
            f"--max-epochs {EVAL['max_epochs']} --patience {EVAL['patience']} "
            f"--plateau-mode {EVAL['plateau_mode']} "
            f"--decay-exemptions {EVAL['decay_exemptions']} "
            f"--eval-batch-size {EVAL['eval_batch_size']} "
            f"--device {gpu_device('evaluation')} --no-progress")


def grid_results(wildcards):
    """The 36 (or configured) grid points of one model and task."""
    return [f"results/eval/{wildcards.model}/{wildcards.task}/grid/lr{lr}_bs{bs}.json"
            for lr, bs in GRID]


def table_tasks(table):
    """Configured tasks shown in ``table`` (nt_summary: every configured NT task)."""
    if table == "nt_summary":
        return [t for t in TASKS if REGISTRY[t].suite == "nt"]
    return [t for t in TASKS if REGISTRY[t].group == table]


def table_summaries(wildcards):
    tasks = table_tasks(wildcards.table)
    if not tasks:
        raise ValueError(
            f"results/tables/{wildcards.table}.tsv: none of the configured tasks belongs to "
            f"this table; add one to `tasks` in the config"
        )
    return [f"results/eval/{model}/{task}/summary.json"
            for model in EVAL["models"] for task in tasks]


def evaluation_targets():
    """Every results table that has at least one configured task."""
    return [f"results/tables/{t}.tsv" for t in TABLES if table_tasks(t)]


def ablation_targets():
    """The ablation table, its figure and the FLOPs accounting (when arms are configured)."""
    if not ABLATION["arms"]:
        return []
    return ["results/ablation/flops.tsv", "results/tables/ablation.tsv",
            "results/figures/ablation.png"]


# ------------------------------------------------ paper vs this run (report.smk)
def claims_inputs(wildcards):
    """The result tables that exist for this config (a stage left out adds no input)."""
    tables = {t: f"results/tables/{t}.tsv" for t in NT_TABLES if table_tasks(t)}
    inputs = {"nt_baselines": "config/baselines/nt.tsv"}
    if tables:
        inputs["nt"] = list(tables.values())
        inputs["nt_summary"] = "results/tables/nt_summary.tsv"
    if table_tasks("genomic_benchmarks"):
        inputs["gb"] = "results/tables/genomic_benchmarks.tsv"
    if ABLATION["arms"]:
        inputs["ablation"] = "results/tables/ablation.tsv"
    if BOUNDARIES["models"]:
        inputs["boundaries"] = "results/tables/boundaries.tsv"
    return inputs


def claims_args(wildcards, input):
    """Command-line options naming each input table that this config produces."""
    options = {"nt": "--nt-tables", "gb": "--gb-tables", "nt_summary": "--nt-summary",
               "ablation": "--ablation", "boundaries": "--boundaries"}
    keys = set(input.keys())
    return " ".join(f"{flag} {' '.join(input[key]) if key == 'nt' else input[key]}"
                    for key, flag in options.items() if key in keys)



def all_targets():
    """Everything `rule all` builds for this config."""
    # token shards only when a model is pretrained here (a released checkpoint needs none)
    trained = set(TRAINED_MODELS) & {*config["pretrain"]["models"], *ABLATION["arms"]}
    targets = genome_targets() if trained else []
    targets += [PREFLIGHT]  # pre-flight of every download (workflow/rules/release.smk)
    targets += pretrain_targets()
    targets += evaluation_targets()
    targets += ablation_targets()
    targets += boundary_targets()
    targets += ["results/tables/claims.tsv"]  # paper vs this run (workflow/rules/report.smk)
    return targets


def executor_name(workflow):
    plugin = workflow.executor_plugin
    return getattr(plugin, "name", "") if plugin is not None else ""


def check_cluster_environment(workflow):
    """Before the first SLURM submission: site variables set, GPU jobs on a GPU partition."""
    if gpus_on_cpu(config):
        print(f"\n{TEST_BANNER}\n", file=sys.stderr)
    if executor_name(workflow) != "slurm":
        return
    if workflow.is_main_process:
        # jobs that SLURM pre-empts or cancels are resubmitted, not waited on forever. Here
        # and not at the top level: Snakemake names its executor only once the Snakefile
        # has been read (workflow.executor_plugin is None while it is parsed).
        from snakemake_executor_plugin_slurm import Executor as SlurmExecutor

        resubmit_preempted_jobs(SlurmExecutor)
    planned, seen = [], set()
    for job in workflow.dag.needrun_jobs():
        if job.rule.name not in seen and not job.is_local:
            seen.add(job.rule.name)
            planned.append(PlannedJob(job.rule.name, dict(job.resources.items())))
    check_submission(planned)
