# Helpers of the evaluation (evaluate.smk): what its rules and `rule all` read.
from ldarnet.tasks.remote_sources import load_remote_sources, task_source
from ldarnet.tasks.source_config import is_remote, load_sources, source_inputs
from ldarnet.pipeline.config_check import lr_label

SOURCES = load_sources(EVAL["sources"])
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
