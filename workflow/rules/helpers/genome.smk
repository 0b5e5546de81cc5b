# Helpers of the genome stage (genome.smk): what its rules and `rule all` read.
from urllib.parse import urlparse

GENOME = config["genome"]
SOURCE_NAME = os.path.basename(urlparse(GENOME["url"] or "genome.fa.gz").path)


def genome_source(wildcards):
    """The configured local FASTA, or the verified download."""
    if GENOME["fasta"]:
        return GENOME["fasta"]
    return f"results/genome/{wildcards.assembly}/source/{SOURCE_NAME}"


def tile_inputs(wildcards):
    inputs = {
        "fasta": f"results/genome/{wildcards.assembly}/genome.fa",
        "fai": f"results/genome/{wildcards.assembly}/genome.fa.fai",
    }
    if GENOME["split"]["method"] == "bed":
        inputs["bed"] = GENOME["split"]["bed"]
    if GENOME["multispecies"]:
        inputs["multispecies"] = GENOME["multispecies"]
    return inputs


def tile_split_args(wildcards, input):
    """Split and multispecies flags of `ldarnet tile` (contigs were chosen by prepare)."""
    split = GENOME["split"]
    if split["method"] == "bed":
        args = [f"--split-method bed --split-bed {input.bed}"]
    else:
        args = [
            "--split-method chromosomes",
            "--valid-contigs " + " ".join(split["valid"]),
            "--test-contigs " + " ".join(split["test"]),
        ]
    if GENOME["multispecies"]:
        args.append(f"--multispecies {input.multispecies}")
    return " ".join(args)


def genome_targets():
    windows = f"results/genome/{ASSEMBLY}/windows"
    return [f"{windows}/{split}.npy" for split in SPLITS] + [f"{windows}/manifest.json"]
