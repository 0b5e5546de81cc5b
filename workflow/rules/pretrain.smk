# Pretraining: masked-LM training of each configured model entry and seed on the token
# shards. A GPU job on clusters (torchrun when it has several GPUs), a CPU job in the demo.
include: "helpers/pretrain.smk"  # its input functions, parameters and targets


rule pretrain:
    """Train (or resume) one model; checkpoints survive pre-emption and retries."""
    input:
        shards=expand(
            "results/genome/{assembly}/windows/{split}.npy", assembly=ASSEMBLY, split=SPLITS
        ),
        manifest=f"results/genome/{ASSEMBLY}/windows/manifest.json",
        model_config=lambda wildcards: config["models"][wildcards.model]["config"],
        train_config=config["pretrain"]["config"],
        budget=ablation_budget_file,  # the FLOPs budget of an ablation arm (ablation.smk)
        # every download resolves before GPU time is spent (ancient: never a rerun reason)
        preflight=ancient(PREFLIGHT),
    output:
        model=protected("results/pretrain/{model}/seed{seed}/model.safetensors"),
        config="results/pretrain/{model}/seed{seed}/config.json",
        curves=report(
            "results/pretrain/{model}/seed{seed}/curves.png",
            caption="../report/pretrain_curves.rst",
            category="3 Pretraining",
            labels={"model": "{model}", "seed": "{seed}", "figure": "curves"},
        ),
        boundaries=report(
            "results/pretrain/{model}/seed{seed}/boundaries.png",
            caption="../report/pretrain_boundaries.rst",
            category="3 Pretraining",
            labels={"model": "{model}", "seed": "{seed}", "figure": "boundaries"},
        ),
    wildcard_constraints:
        model=one_of(TRAINED_MODELS),  # released checkpoints are imported (release.smk)
    params:
        launcher=pretrain_launcher,
        shards=lambda wildcards, input: os.path.dirname(input.manifest),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
        device=gpu_device("pretrain"),
        budget=lambda wildcards, input: f"--budget {input.budget}" if input.budget else "",
        # inside a SLURM job: save and exit 75 this long before the time limit (the next
        # attempt resumes); ldarnet.train.time_limit says why this is not --signal
        stop_before_limit=config["pretrain"]["stop_before_limit"],
    log:
        log_path("pretrain", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("pretrain", "{model}", "seed{seed}")
    threads: gpu_threads("pretrain")
    resources:
        **gpu_resources("pretrain"),
    retries: gpu_retries("pretrain")
    # pretraining runs (and the arms' budgets) are the DAG's critical path: start them
    # before the fine-tuning jobs that can fill the remaining cores
    priority: 10
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{PYTHON} -m ldarnet.foundation.runlock {params.out_dir} -- "
            "{params.launcher} pretrain --model {input.model_config} --config {input.train_config} "
            "--shards {params.shards} --out {params.out_dir} --seed {wildcards.seed} "
            "--device {params.device} {params.budget} "
            "--stop-before-limit {params.stop_before_limit}",
            stage="pretrain",
        )
