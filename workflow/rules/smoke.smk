# A minutes-long CPU training run of a model config on the prepared genome: the model
# check of the demo (off at paper scale, where pretraining does the real thing).


rule smoke_model:
    """Train a model config for a few MLM steps on real windows and report the losses."""
    input:
        fasta=f"results/genome/{ASSEMBLY}/genome.fa",
        model_config=lambda wildcards: config["models"][wildcards.model]["config"],
    output:
        report="results/smoke/{model}/report.json",
        log_csv="results/smoke/{model}/train_log.csv",
    params:
        steps=config["smoke"]["steps"],
        batch_size=config["smoke"]["batch_size"],
        length=config["smoke"]["length"],
        out_dir=lambda wildcards: f"results/smoke/{wildcards.model}",
    log:
        log_path("smoke_model", "{model}"),
    benchmark:
        benchmark_path("smoke_model", "{model}")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        "ldarnet smoke --config {input.model_config} --fasta {input.fasta} "
        "--out {params.out_dir} --steps {params.steps} --batch-size {params.batch_size} "
        "--length {params.length} > {log} 2>&1"
