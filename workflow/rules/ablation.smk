# The boundary-selection ablation (claim C3, docs/ablation.md): each arm (fixed grid,
# random, ...) is pretrained on the FLOPs budget of the learned reference (its budget here,
# its training in pretrain.smk), fine-tuned like every model (evaluate.smk), and compared
# with the reference: FLOPs accounting, paired differences per task, table and figure.
include: "helpers/ablation.smk"  # its input functions, parameters and targets


rule ablation_budget:
    """Steps of an ablation arm whose pretraining FLOPs equal the learned arm's (logged)."""
    input:
        reference=lambda wildcards: (
            f"results/pretrain/{ABLATION['reference']}/seed{wildcards.seed}/model.safetensors"
        ),
        arm_config=lambda wildcards: config["models"][wildcards.model]["config"],
        train_config=config["pretrain"]["config"],
    output:
        "results/ablation/{model}/seed{seed}/budget.json",
    priority: 10
    params:
        reference=lambda wildcards, input: os.path.dirname(input.reference),
        match=ABLATION["match"],
    log:
        log_path("ablation_budget", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("ablation_budget", "{model}", "seed{seed}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} ablation-budget --reference {params.reference} --arm-config {input.arm_config} "
            "--config {input.train_config} --match {params.match} --out {output}"
        )


rule ablation_flops:
    """What every arm actually spent in pretraining, next to the learned arm (TSV)."""
    input:
        runs=lambda wildcards: [
            f"results/pretrain/{m}/seed{EVAL['pretrain_seed']}/model.safetensors"
            for m in ablation_models()
        ],
    output:
        report(
            "results/ablation/flops.tsv",
            caption="../report/ablation_flops.rst",
            category="2 Ablation (C3)",
            labels={"item": "FLOPs accounting"},
        ),
    params:
        runs=lambda wildcards, input: " ".join(
            f"{m}={os.path.dirname(path)}" for m, path in zip(ablation_models(), input.runs)
        ),
        reference=ABLATION["reference"],
    log:
        log_path("ablation_flops", "flops"),
    benchmark:
        benchmark_path("ablation_flops", "flops")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} ablation-flops --runs {params.runs} --reference {params.reference} "
            "--out {output}"
        )


rule ablation_table:
    """Learned vs fixed-grid vs random per task: paired differences, FLOPs, compression."""
    input:
        summaries=lambda wildcards: [
            f"results/eval/{m}/{t}/summary.json"
            for t in ABLATION["tasks"]
            for m in ablation_models()
        ],
        flops="results/ablation/flops.tsv",
    output:
        tsv=report(
            "results/tables/ablation.tsv",
            caption="../report/ablation_table.rst",
            category="2 Ablation (C3)",
            labels={"item": "ablation table"},
        ),
        md="results/tables/ablation.md",
        figure=report(
            "results/figures/ablation.png",
            caption="../report/ablation_table.rst",
            category="2 Ablation (C3)",
            labels={"item": "ablation figure"},
        ),
    params:
        reference=ABLATION["reference"],
    log:
        log_path("ablation_table", "ablation"),
    benchmark:
        benchmark_path("ablation_table", "ablation")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} ablation-table --summaries {input.summaries} --flops {input.flops} "
            "--reference {params.reference} --out {output.tsv} --figure {output.figure} "
        )
