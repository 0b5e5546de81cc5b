# Genome stage: hg38 download (or a local FASTA) -> prepared FASTA + index -> token shards.
include: "helpers/genome.smk"  # its input functions, parameters and targets


rule download_genome:
    """Download the reference and verify it against the published checksum (UCSC md5sum.txt)."""
    output:
        protected(f"results/genome/{{assembly}}/source/{SOURCE_NAME}"),
    params:
        url=GENOME["url"],
        md5_url=GENOME["md5_url"],
    log:
        log_path("download_genome", "{assembly}"),
    benchmark:
        benchmark_path("download_genome", "{assembly}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=240),
    retries: retry_count(2)
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} download --url {params.url} --md5-url {params.md5_url} --out {output} "
        )


rule prepare_genome:
    """Decompress, validate and index the FASTA (pyfaidx); keep the configured contigs."""
    input:
        genome_source,
    output:
        fasta="results/genome/{assembly}/genome.fa",
        fai="results/genome/{assembly}/genome.fa.fai",
        summary="results/genome/{assembly}/genome.json",
    params:
        contigs=("--contigs " + " ".join(GENOME["contigs"])) if GENOME["contigs"] else "",
    log:
        log_path("prepare_genome", "{assembly}"),
    benchmark:
        benchmark_path("prepare_genome", "{assembly}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=120),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} prepare-genome --fasta {input} --out {output.fasta} {params.contigs} "
            "--summary {output.summary}"
        )


rule tile_genome:
    """Tile each split into N-free windows and write memory-mappable uint8 token shards."""
    input:
        unpack(tile_inputs),
    output:
        shards=expand("results/genome/{{assembly}}/windows/{split}.npy", split=SPLITS),
        manifest="results/genome/{assembly}/windows/manifest.json",
    params:
        window=GENOME["window"],
        split=tile_split_args,
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    log:
        log_path("tile_genome", "{assembly}"),
    benchmark:
        benchmark_path("tile_genome", "{assembly}")
    threads: 1
    resources:
        **cpu_resources(mem_mb=16000, runtime=120),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} tile --fasta {input.fasta} --window {params.window} {params.split} "
            "--out-dir {params.out_dir}"
        )
