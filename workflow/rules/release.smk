# Remote inputs: the pre-flight check of every download, and released checkpoints as model
# entries. A model entry with `checkpoint:` (config/release.yaml) is fetched (pinned,
# sha256-verified, lock file) and imported (torch.load(weights_only=True)) into
# results/pretrain/<model>/seed<seed>/, where every later stage expects pretrained weights:
# the grid and CV on all tasks, the boundary analyses and the tables run on it unchanged.
include: "helpers/release.smk"  # its input functions and parameters


localrules:
    check_sources,
    fetch_checkpoint,


rule check_sources:
    """Pre-flight: every remote input of this config resolves (ldarnet check-sources)."""
    output:
        PREFLIGHT,
    priority: 100  # first: the downloads and GPU jobs are what it checks
    params:
        configs=PREFLIGHT_PARAMS["configs"],
        inputs=PREFLIGHT_PARAMS["inputs"],
    log:
        log_path("check_sources"),
    benchmark:
        benchmark_path("check_sources")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged("{LDARNET} check-sources {params.configs} --out {output}")


rule fetch_checkpoint:
    """A released checkpoint, at its pinned commit, sha256-verified, with a lock file."""
    output:
        protected("resources/downloads/checkpoints/{model}/{file}"),
    wildcard_constraints:
        model=one_of(CHECKPOINT_MODELS),
    params:
        source=lambda wildcards: config["models"][wildcards.model]["checkpoint"],
        revision=lambda wildcards: checkpoint_setting(wildcards, "revision"),
        sha256=lambda wildcards: checkpoint_setting(wildcards, "sha256"),
        base_url=lambda wildcards: checkpoint_setting(wildcards, "base_url", "https://huggingface.co"),
    log:
        log_path("fetch_checkpoint", "{model}", "{file}"),
    benchmark:
        benchmark_path("fetch_checkpoint", "{model}", "{file}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=120),
    retries: retry_count(2)
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} fetch-checkpoint {params.source} --model {wildcards.model} "
            "--revision '{params.revision}' --sha256 '{params.sha256}' "
            "--base-url {params.base_url} --out {output}"
        )


rule import_checkpoint:
    """The released .pt as a model directory (weights_only=True), in place of pretraining."""
    input:
        checkpoint=checkpoint_download,
        preflight=ancient(PREFLIGHT),
    output:
        model=protected("results/pretrain/{model}/seed{seed}/model.safetensors"),
        config="results/pretrain/{model}/seed{seed}/config.json",
    wildcard_constraints:
        model=one_of(CHECKPOINT_MODELS),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
        reverse_padding=lambda wildcards: checkpoint_setting(wildcards, "reverse_padding", "exact"),
    log:
        log_path("import_checkpoint", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("import_checkpoint", "{model}", "seed{seed}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=16000, runtime=30),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} import-checkpoint {input.checkpoint} {params.out_dir} "
            "--name {wildcards.model} --reverse-padding {params.reverse_padding} --force"
        )
