# Helpers of the boundary analyses (boundaries.smk): what its rules and `rule all` read.
from urllib.parse import urlparse

BOUNDARIES = config["boundaries"]
ANNOTATION_NAME = os.path.basename(urlparse(BOUNDARIES["annotation_url"] or "a.gtf.gz").path)


def annotation_file(wildcards):
    """The configured local exon table, or the verified GENCODE download."""
    return BOUNDARIES["exons"] or f"results/annotation/{ANNOTATION_NAME}"


def segment_inputs(wildcards):
    inputs = {
        "model": f"results/pretrain/{wildcards.model}/seed{wildcards.seed}/model.safetensors",
        "fasta": f"results/genome/{ASSEMBLY}/genome.fa",
        "fai": f"results/genome/{ASSEMBLY}/genome.fa.fai",
    }
    if BOUNDARIES["regions"]:
        inputs["regions"] = BOUNDARIES["regions"]
    return inputs


def motif_contigs_arg(wildcards):
    contigs = BOUNDARIES["contigs"]
    return ("--contigs " + " ".join(contigs)) if contigs else ""


def expand_boundary_runs(suffix):
    """results/boundaries/{model}/seed{seed}/<suffix> for every analysed run."""
    return [f"results/boundaries/{model}/seed{seed}/{suffix}"
            for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]


def start_codon_runs():
    """start_codon_stats.tsv of every analysed run, unless boundaries.start_codons is none."""
    if BOUNDARIES["start_codons"] == "none":
        return []
    return expand_boundary_runs("start_codons/start_codon_stats.tsv")


def splice_midpoint_tasks():
    """The configured splice tasks whose test sequences the midpoint view profiles."""
    return [t for t in config["tasks"] if REGISTRY[t].group == "splice"]


def splice_midpoint_runs():
    """midpoint_stats.tsv of every analysed run, when a splice task is configured."""
    if not splice_midpoint_tasks():
        return []
    return expand_boundary_runs("splice_midpoint/midpoint_stats.tsv")


def boundary_targets():
    out = ["results/tables/boundaries.tsv"]
    out += [p.replace("_stats.tsv", "_profiles.png")
            for p in start_codon_runs() + splice_midpoint_runs()]
    if BOUNDARIES["density_tables"] or BOUNDARIES["density_tasks"]:
        out += [f"results/figures/boundary_density_{model}_seed{seed}.png"
                for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]
    out += [f"results/figures/locus_{BOUNDARIES['locus_gene']}_{model}_seed{seed}.png"
            for model in BOUNDARIES["models"] for seed in config["pretrain"]["seeds"]]
    return out
