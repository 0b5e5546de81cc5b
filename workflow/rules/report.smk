# The paper-vs-this table: every claim (C1-C4) with the paper's number, the release's and
# this run's, read from the result tables the other stages wrote.
include: "helpers/report.smk"  # its input functions, parameters and targets


rule paper_claims:
    """Paper vs release vs this run, one row per quantity behind claims C1-C4."""
    input:
        unpack(claims_inputs),
    output:
        tsv=report(
            "results/tables/claims.tsv",
            caption="../report/claims.rst",
            category="0 Paper vs this run",
        ),
        md="results/tables/claims.md",
    params:
        tables=claims_args,
        scale=config["scale"],
    log:
        log_path("paper_claims", "claims"),
    benchmark:
        benchmark_path("paper_claims", "claims")
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=5),
    conda:
        "../../envs/ldarnet-cpu.yaml"
    shell:
        logged(
            "{LDARNET} paper-claims {params.tables} --nt-baselines {input.nt_baselines} "
            "--scale {params.scale} --out {output.tsv}"
        )
