# Helpers of the paper-vs-this-run table (report.smk): what its rules and `rule all` read.
from ldarnet.report.eval_tables import NT_TABLES


def claims_inputs(wildcards):
    """The result tables that exist for this config (a stage left out adds no input)."""
    tables = {t: f"results/tables/{t}.tsv" for t in NT_TABLES if table_tasks(t)}
    inputs = {"nt_baselines": "config/baselines/nt.tsv"}
    if tables:
        inputs["nt"] = list(tables.values())
        inputs["nt_summary"] = "results/tables/nt_summary.tsv"
    if table_tasks("genomic_benchmarks"):
        inputs["gb"] = "results/tables/genomic_benchmarks.tsv"
    if ABLATION["arms"]:
        inputs["ablation"] = "results/tables/ablation.tsv"
    if BOUNDARIES["models"]:
        inputs["boundaries"] = "results/tables/boundaries.tsv"
    return inputs


def claims_args(wildcards, input):
    """Command-line options naming each input table that this config produces."""
    options = {"nt": "--nt-tables", "gb": "--gb-tables", "nt_summary": "--nt-summary",
               "ablation": "--ablation", "boundaries": "--boundaries"}
    keys = set(input.keys())
    return " ".join(f"{flag} {' '.join(input[key]) if key == 'nt' else input[key]}"
                    for key, flag in options.items() if key in keys)


def report_targets():
    """The paper-vs-this-run table."""
    return ["results/tables/claims.tsv"]
