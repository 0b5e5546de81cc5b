# Helpers of the ablation (ablation.smk): what its rules and `rule all` read.


def ablation_models():
    """The learned reference first, then the arms (fixed grid, random, ...)."""
    return [ABLATION["reference"], *ABLATION["arms"]]


def ablation_targets():
    """The ablation table, its figure and the FLOPs accounting (when arms are configured)."""
    if not ABLATION["arms"]:
        return []
    return ["results/ablation/flops.tsv", "results/tables/ablation.tsv",
            "results/figures/ablation.png"]
