# Downstream evaluation (claims C1-C2): each task is prepared once, every grid point is a
# job scored on validation folds only, the chosen configuration runs all K folds per seed
# (one resumable job per seed), and the per-task summaries render the results tables.
include: "helpers/evaluate.smk"  # its input functions, parameters and targets


rule fetch_task:
    """One official file of an NT / Genomic Benchmarks task at its pinned version, verified."""
    output:
        protected("resources/downloads/tasks/{task}/{file}"),
    wildcard_constraints:
        file=r"[A-Za-z0-9_]+\.[a-z]+",
    params:
        registry=EVAL["registry"],
        remote=EVAL["remote"],
        source=remote_task_file,
    log:
        log_path("fetch_task", "{task}", "{file}"),
    benchmark:
        benchmark_path("fetch_task", "{task}", "{file}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=60),
    retries: retry_count(2)
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} fetch-task {wildcards.task} --registry {params.registry} "
            "--remote {params.remote} --file {wildcards.file} --out {output}"
        )


rule prepare_task:
    """train.csv / test.csv (sequence,label) and task.json (source, counts, checksums)."""
    input:
        unpack(task_source_inputs),
    output:
        train="results/tasks/{task}/train.csv",
        test="results/tasks/{task}/test.csv",
        manifest="results/tasks/{task}/task.json",
    params:
        sources=f"--sources {EVAL['sources']}" if EVAL["sources"] else "",
        remote=EVAL["remote"],
        subsample=subsample_args,
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    log:
        log_path("prepare_task", "{task}"),
    benchmark:
        benchmark_path("prepare_task", "{task}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=30),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} prepare-task {wildcards.task} --registry {input.registry} {params.sources} "
            "--remote {params.remote} {params.subsample} --out {params.out_dir}"
        )


rule finetune_grid:
    """One (learning rate, batch size) on the grid fold(s): validation MCC; test unread."""
    input:
        train="results/tasks/{task}/train.csv",  # test.csv is deliberately not an input
        manifest="results/tasks/{task}/task.json",
        model=eval_checkpoint,
    output:
        "results/eval/{model}/{task}/grid/lr{lr}_bs{bs}.json",
    params:
        options=finetune_options,
        folds=" ".join(str(k) for k in EVAL["grid_folds"]),
        task_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        seed=config["seeds"][0],
    log:
        log_path("finetune_grid", "{model}", "{task}", "lr{lr}_bs{bs}"),
    benchmark:
        benchmark_path("finetune_grid", "{model}", "{task}", "lr{lr}_bs{bs}")
    threads: gpu_threads("evaluation")
    resources:
        **gpu_resources("evaluation"),
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} finetune-grid {wildcards.task} --task-dir {params.task_dir} "
            "--model {input.model} --lr {wildcards.lr} --batch-size {wildcards.bs} "
            "--folds {params.folds} --seed {params.seed} {params.options} --out {output} ",
            stage="evaluation",
        )


rule select_config:
    """The grid configuration with the best validation MCC (rule in the output JSON)."""
    input:
        grid_results,
    output:
        "results/eval/{model}/{task}/selected.json",
    log:
        log_path("select_config", "{model}", "{task}"),
    benchmark:
        benchmark_path("select_config", "{model}", "{task}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} select-config --grid {input} --out {output}"
        )


rule finetune_cv:
    """All K folds of the selected configuration for one seed; finished folds are kept."""
    input:
        train="results/tasks/{task}/train.csv",
        test="results/tasks/{task}/test.csv",
        manifest="results/tasks/{task}/task.json",
        selected="results/eval/{model}/{task}/selected.json",
        model=eval_checkpoint,
    output:
        "results/eval/{model}/{task}/cv/seed{seed}/result.json",
    params:
        options=finetune_options,
        task_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    log:
        log_path("finetune_cv", "{model}", "{task}", "seed{seed}"),
    benchmark:
        benchmark_path("finetune_cv", "{model}", "{task}", "seed{seed}")
    threads: gpu_threads("evaluation")
    resources:
        **gpu_resources("evaluation"),
    retries: gpu_retries("evaluation")
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} finetune-cv {wildcards.task} --task-dir {params.task_dir} "
            "--model {input.model} --selected {input.selected} --seed {wildcards.seed} "
            "{params.options} --out {output}",
            stage="evaluation",
        )


rule eval_summary:
    """A task's test metrics pooled over seeds and folds, with the chosen configuration."""
    input:
        cv=expand("results/eval/{{model}}/{{task}}/cv/seed{seed}/result.json",
                  seed=config["seeds"]),
        selected="results/eval/{model}/{task}/selected.json",
        manifest="results/tasks/{task}/task.json",
    output:
        "results/eval/{model}/{task}/summary.json",
    params:
        task_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    log:
        log_path("eval_summary", "{model}", "{task}"),
    benchmark:
        benchmark_path("eval_summary", "{model}", "{task}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} eval-summary --cv {input.cv} --selected {input.selected} "
            "--task-dir {params.task_dir} --model-name {wildcards.model} --out {output} "
        )


rule eval_table:
    """One results table (TSV + Markdown) next to the release and published baselines."""
    input:
        summaries=table_summaries,
        registry=EVAL["registry"],
        nt_baselines="config/baselines/nt.tsv",
        gb_baselines="config/baselines/gb.tsv",
    output:
        tsv=report(
            "results/tables/{table}.tsv",
            caption="../report/eval_table.rst",
            category="1 Fine-tuning (C1, C2)",
            labels={"table": "{table}", "kind": "table"},
        ),
        md="results/tables/{table}.md",
        figure=report(
            "results/figures/{table}.png",
            caption="../report/eval_figure.rst",
            category="1 Fine-tuning (C1, C2)",
            labels={"table": "{table}", "kind": "figure"},
        ),
    log:
        log_path("eval_table", "{table}"),
    benchmark:
        benchmark_path("eval_table", "{table}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} eval-table {wildcards.table} --summaries {input.summaries} "
            "--registry {input.registry} --nt-baselines {input.nt_baselines} "
            "--gb-baselines {input.gb_baselines} --out {output.tsv} --figure {output.figure} "
        )
