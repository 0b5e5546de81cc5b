# LDARNet: regenerate the paper from raw data.
#   snakemake --profile slurm all                          # paper scale, SLURM GPU cluster
#   snakemake --configfile config/demo.yaml --cores all    # embedded demo, CPU, minutes
# The scale is configuration only: config/config.yaml (paper, default) or config/demo.yaml.
from snakemake.utils import min_version

min_version("9.0")

# The paper config is the default; a --configfile replaces it instead of being merged
# into it, so the demo config is complete on its own.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# One rule file per stage, which includes its helpers (workflow/rules/helpers/) first;
# common.smk holds what the stages share. A file may use, while it is read, what
# common.smk and the files included before it define.
include: "workflow/rules/common.smk"
include: "workflow/rules/genome.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/boundaries.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/release.smk"  # pre-flight check, released checkpoints


localrules:
    all,
    download_genome,
    download_annotation,
    fetch_task,


rule all:
    input:
        all_targets(),
    default_target: True


onstart:
    check_cluster_environment(workflow)
