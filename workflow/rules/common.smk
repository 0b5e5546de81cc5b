# What every stage shares: config validation, wildcard constraints, the command every rule
# runs, where jobs run (resources, retries, device), log and benchmark paths, the task
# registry and the names several stages use, and the targets of `rule all`. Each stage's
# own helpers (input functions, parameters, targets) are in helpers/<stage>.smk, which its
# rule file includes first.
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

import os
import re
import shlex
import sys

from ldarnet.pipeline.cluster import (
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
)
from ldarnet.tasks.registry import load_registry
from ldarnet.interop.checkpoint_source import is_checkpoint_entry
from ldarnet.pipeline.config_check import check_config, check_schema
from ldarnet.report.eval_tables import TABLES  # the one list of results tables

# One short message naming the config file and the key, before Snakemake's own (long) one.
check_schema(config, workflow.source_path("../schemas/config.schema.yaml"), workflow.configfiles)
validate(config, schema="../schemas/config.schema.yaml")
check_config(config, workflow.basedir, workflow.configfiles)
check_test_mode(config)

ASSEMBLY = config["genome"]["assembly"]
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


# ------------------------------------------------- where jobs run (ldarnet/pipeline/cluster.py)
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


def log_path(rule_name, *parts):
    """results/logs/<rule>/<parts>.log: one log per job, named by its wildcards."""
    return f"results/logs/{rule_name}/{'/'.join(parts) or rule_name}.log"


def benchmark_path(rule_name, *parts):
    """results/benchmarks/<rule>/<parts>.tsv: Snakemake's per-job time and memory."""
    return f"results/benchmarks/{rule_name}/{'/'.join(parts) or rule_name}.tsv"


# ------------------------------------------------------ shared by several stages
# Released checkpoints (model entries with `checkpoint:`) are fetched and imported
# (release.smk); the others are pretrained (pretrain.smk). Every pretraining job and
# download waits for the pre-flight check of this config (release.smk).
CHECKPOINT_MODELS = sorted(m for m, e in config["models"].items() if is_checkpoint_entry(e))
TRAINED_MODELS = sorted(set(MODELS) - set(CHECKPOINT_MODELS))
PREFLIGHT = "results/preflight/sources.tsv"  # ldarnet check-sources of this config

# The ablation's arms are pretrained (pretrain.smk), compared (ablation.smk) and reported
# (report.smk).
ABLATION = config["ablation"]

# The task registry: the evaluation's tasks (evaluate.smk), the tables they are shown in
# (evaluate.smk, report.smk), the splice tasks of the boundary analyses (boundaries.smk).
EVAL = config["evaluation"]
REGISTRY = load_registry(EVAL["registry"])
TASKS = list(config["tasks"])


def table_tasks(table):
    """Configured tasks shown in ``table`` (nt_summary: every configured NT task)."""
    if table == "nt_summary":
        return [t for t in TASKS if REGISTRY[t].suite == "nt"]
    return [t for t in TASKS if REGISTRY[t].group == table]


# ------------------------------------------------------------------- rule all, onstart
def all_targets():
    """Everything `rule all` builds for this config.

    Called by `rule all` in the Snakefile once every file is included (the stages' target
    lists are defined in workflow/rules/helpers/).
    """
    # token shards only when a model is pretrained here (a released checkpoint needs none)
    trained = set(TRAINED_MODELS) & {*config["pretrain"]["models"], *ABLATION["arms"]}
    targets = genome_targets() if trained else []
    targets += [PREFLIGHT]  # pre-flight of every download (release.smk)
    targets += pretrain_targets()
    targets += evaluation_targets()
    targets += ablation_targets()
    targets += boundary_targets()
    targets += report_targets()
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
