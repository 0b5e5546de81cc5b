# Boundary alignment (claim C4): segment the genome with each pretrained model, then
# profile the learned boundaries around annotated splice junctions and promoter motifs.
include: "helpers/boundaries.smk"  # its input functions, parameters and targets


rule download_annotation:
    """GENCODE annotation (GTF) with its published checksum (paper scale only)."""
    output:
        protected(f"results/annotation/{ANNOTATION_NAME}"),
    params:
        url=config["boundaries"]["annotation_url"],
        md5_url=config["boundaries"]["annotation_md5_url"],
    log:
        log_path("download_annotation", "annotation"),
    benchmark:
        benchmark_path("download_annotation", "annotation")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=60),
    retries: retry_count(2)
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} download --url {params.url} --md5-url {params.md5_url} --out {output} "
        )


rule segment_genome:
    """Per-base boundary probability (bedGraph) and hard boundaries (BED) of the regions."""
    input:
        unpack(segment_inputs),
    output:
        bedgraph="results/boundaries/{model}/seed{seed}/segments.bedGraph",
        bed="results/boundaries/{model}/seed{seed}/boundaries.bed",
    params:
        regions=lambda wildcards, input: f"--regions {input.regions}"
        if "regions" in input.keys()
        else "",
        device=gpu_device("boundaries"),
    log:
        log_path("segment_genome", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("segment_genome", "{model}", "seed{seed}")
    threads: gpu_threads("boundaries")
    resources:
        **gpu_resources("boundaries"),
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} segment --model {input.model} --fasta {input.fasta} {params.regions} "
            "--bedgraph {output.bedgraph} --bed {output.bed} --device {params.device}",
            stage="boundaries",
        )


rule splice_alignment:
    """Boundary profiles at annotated splice junctions vs decoy GT/AG, with statistics."""
    input:
        bedgraph="results/boundaries/{model}/seed{seed}/segments.bedGraph",
        bed="results/boundaries/{model}/seed{seed}/boundaries.bed",
        fasta=f"results/genome/{ASSEMBLY}/genome.fa",
        exons=annotation_file,
    output:
        profiles="results/boundaries/{model}/seed{seed}/splice/splice_profiles.tsv",
        stats="results/boundaries/{model}/seed{seed}/splice/splice_stats.tsv",
        figure=report(
            "results/boundaries/{model}/seed{seed}/splice/splice_profiles.png",
            caption="../report/splice_profiles.rst",
            category="4 Boundary alignment (C4)",
        ),
        summary="results/boundaries/{model}/seed{seed}/splice/splice_summary.json",
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        permutations=config["boundaries"]["permutations"],
    log:
        log_path("splice_alignment", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("splice_alignment", "{model}", "seed{seed}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=8000, runtime=60),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} splice-alignment --bedgraph {input.bedgraph} --bed {input.bed} "
            "--fasta {input.fasta} --exons {input.exons} --out-dir {params.out_dir} "
            "--permutations {params.permutations}"
        )


rule motif_alignment:
    """Boundary profiles at promoter motifs vs background and dinucleotide-shuffled controls."""
    input:
        model="results/pretrain/{model}/seed{seed}/model.safetensors",
        fasta=f"results/genome/{ASSEMBLY}/genome.fa",
        exons=annotation_file,
    output:
        profiles="results/boundaries/{model}/seed{seed}/motifs/motif_profiles.tsv",
        stats="results/boundaries/{model}/seed{seed}/motifs/motif_stats.tsv",
        figure=report(
            "results/boundaries/{model}/seed{seed}/motifs/motif_profiles.png",
            caption="../report/motif_profiles.rst",
            category="4 Boundary alignment (C4)",
        ),
        logo="results/boundaries/{model}/seed{seed}/motifs/boundary_logo.png",
        summary="results/boundaries/{model}/seed{seed}/motifs/motif_summary.json",
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        permutations=config["boundaries"]["permutations"],
        contigs=motif_contigs_arg,
        device=gpu_device("boundaries"),
    log:
        log_path("motif_alignment", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("motif_alignment", "{model}", "seed{seed}")
    threads: gpu_threads("boundaries")
    resources:
        **gpu_resources("boundaries"),
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} motif-alignment --model {input.model} --fasta {input.fasta} "
            "--exons {input.exons} --out-dir {params.out_dir} --permutations {params.permutations} "
            "{params.contigs} --device {params.device}",
            stage="boundaries",
        )


rule locus_figure:
    """Boundary track, bases and exons around the configured gene's TSS."""
    input:
        bedgraph="results/boundaries/{model}/seed{seed}/segments.bedGraph",
        bed="results/boundaries/{model}/seed{seed}/boundaries.bed",
        fasta=f"results/genome/{ASSEMBLY}/genome.fa",
        exons=annotation_file,
    output:
        report(
            "results/figures/locus_{gene}_{model}_seed{seed}.png",
            caption="../report/locus.rst",
            category="4 Boundary alignment (C4)",
        ),
    log:
        log_path("locus_figure", "{gene}_{model}_seed{seed}"),
    benchmark:
        benchmark_path("locus_figure", "{gene}_{model}_seed{seed}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=10),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} locus-figure --bedgraph {input.bedgraph} --bed {input.bed} "
            "--fasta {input.fasta} --exons {input.exons} --gene {wildcards.gene} "
            "--out {output}"
        )


rule start_codon_alignment:
    """Boundary profiles at start codons (Kozak) vs non-start ATGs and random positions."""
    input:
        bedgraph="results/boundaries/{model}/seed{seed}/segments.bedGraph",
        bed="results/boundaries/{model}/seed{seed}/boundaries.bed",
        fasta=f"results/genome/{ASSEMBLY}/genome.fa",
        exons=annotation_file,
    output:
        profiles="results/boundaries/{model}/seed{seed}/start_codons/start_codon_profiles.tsv",
        stats="results/boundaries/{model}/seed{seed}/start_codons/start_codon_stats.tsv",
        figure=report(
            "results/boundaries/{model}/seed{seed}/start_codons/start_codon_profiles.png",
            caption="../report/start_codon_profiles.rst",
            category="4 Boundary alignment (C4)",
        ),
        summary="results/boundaries/{model}/seed{seed}/start_codons/start_codon_summary.json",
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        source=config["boundaries"]["start_codons"],
        permutations=config["boundaries"]["permutations"],
    log:
        log_path("start_codon_alignment", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("start_codon_alignment", "{model}", "seed{seed}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=8000, runtime=60),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} start-codon-alignment --bedgraph {input.bedgraph} --bed {input.bed} "
            "--fasta {input.fasta} --exons {input.exons} --source {params.source} "
            "--out-dir {params.out_dir} --permutations {params.permutations}"
        )


rule splice_midpoint:
    """The release's view: boundary profiles around the midpoint of splice-task test sequences."""
    input:
        model="results/pretrain/{model}/seed{seed}/model.safetensors",
        tasks=[f"results/tasks/{t}/test.csv" for t in splice_midpoint_tasks()],
    output:
        profiles="results/boundaries/{model}/seed{seed}/splice_midpoint/midpoint_profiles.tsv",
        stats="results/boundaries/{model}/seed{seed}/splice_midpoint/midpoint_stats.tsv",
        figure=report(
            "results/boundaries/{model}/seed{seed}/splice_midpoint/midpoint_profiles.png",
            caption="../report/splice_midpoint.rst",
            category="4 Boundary alignment (C4)",
        ),
        summary="results/boundaries/{model}/seed{seed}/splice_midpoint/midpoint_summary.json",
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        permutations=config["boundaries"]["permutations"],
        device=gpu_device("boundaries"),
    log:
        log_path("splice_midpoint", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("splice_midpoint", "{model}", "seed{seed}")
    threads: gpu_threads("boundaries")
    resources:
        **gpu_resources("boundaries"),
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} splice-midpoint --model {input.model} --sequences {input.tasks} "
            "--out-dir {params.out_dir} --permutations {params.permutations} "
            "--device {params.device}",
            stage="boundaries",
        )


rule boundary_table:
    """Offset-0 statistics of every boundary analysis (splice, motifs, start codons, midpoint)."""
    input:
        splice=expand_boundary_runs("splice/splice_stats.tsv"),
        motifs=expand_boundary_runs("motifs/motif_stats.tsv"),
        start_codons=start_codon_runs(),
        midpoint=splice_midpoint_runs(),
    output:
        tsv=report(
            "results/tables/boundaries.tsv",
            caption="../report/boundary_table.rst",
            category="4 Boundary alignment (C4)",
        ),
        md="results/tables/boundaries.md",
    log:
        log_path("boundary_table", "boundaries"),
    benchmark:
        benchmark_path("boundary_table", "boundaries")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=5),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} boundary-table --splice-stats {input.splice} --motif-stats {input.motifs} "
            "--start-codon-stats {input.start_codons} --midpoint-stats {input.midpoint} "
            "--out {output.tsv}"
        )


rule boundary_density:
    """Boundary density per task and class on labelled sequences (box plots + tests)."""
    input:
        model="results/pretrain/{model}/seed{seed}/model.safetensors",
        tables=config["boundaries"]["density_tables"],
        tasks=[f"results/tasks/{t}/test.csv" for t in config["boundaries"]["density_tasks"]],
    output:
        tsv="results/boundaries/{model}/seed{seed}/density/density.tsv",
        figure=report(
            "results/figures/boundary_density_{model}_seed{seed}.png",
            caption="../report/boundary_density.rst",
            category="4 Boundary alignment (C4)",
        ),
    params:
        device=gpu_device("boundaries"),
    log:
        log_path("boundary_density", "{model}", "seed{seed}"),
    benchmark:
        benchmark_path("boundary_density", "{model}", "seed{seed}")
    threads: gpu_threads("boundaries")
    resources:
        **gpu_resources("boundaries"),
    conda:
        "../../envs/ldarnet-cuda.yaml"
    shell:
        logged(
            "{LDARNET} boundary-density --model {input.model} --sequences {input.tables} {input.tasks} "
            "--out-tsv {output.tsv} --out-png {output.figure} --device {params.device}",
            stage="boundaries",
        )
