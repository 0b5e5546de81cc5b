# Pretraining: masked-LM training of each configured model entry and seed on the token
# shards. A GPU job on clusters (torchrun when it has several GPUs), a CPU job in the demo.


rule pretrain:
    """Train (or resume) one model; checkpoints survive pre-emption and retries."""
    input:
        shards=expand(
            "results/genome/{assembly}/windows/{split}.npy", assembly=ASSEMBLY, split=SPLITS
        ),
        manifest=f"results/genome/{ASSEMBLY}/windows/manifest.json",
        model_config=lambda wildcards: config["models"][wildcards.model]["config"],
        train_config=config["pretrain"]["config"],
    output:
        model=protected("results/pretrain/{model}/seed{seed}/model.safetensors"),
        config="results/pretrain/{model}/seed{seed}/config.json",
    params:
        launcher=pretrain_launcher,
        shards=lambda wildcards, input: os.path.dirname(input.manifest),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
        device="cuda" if config["pretrain"]["gpus"] > 0 else "cpu",
    log:
        log_path("pretrain", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("pretrain", "{model}", "seed{seed}")
    threads: max(1, config["pretrain"]["gpus"]) * config["pretrain"]["cpus_per_gpu"]
    resources:
        gpu=config["pretrain"]["gpus"],
        cpus_per_gpu=config["pretrain"]["cpus_per_gpu"],
        mem_mb=config["pretrain"]["mem_mb"],
        runtime=config["pretrain"]["runtime"],
    retries: config["pretrain"]["retries"]
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        "{params.launcher} pretrain --model {input.model_config} --config {input.train_config} "
        "--shards {params.shards} --out {params.out_dir} --seed {wildcards.seed} "
        "--device {params.device} > {log} 2>&1"
