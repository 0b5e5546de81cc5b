"""What the dry run can know is checked before the first job, naming the config file and key."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from ldarnet.pipeline.config_check import WorkflowConfigError, check_config, check_schema

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
BAD = ROOT / "tests" / "data" / "malformed"


def _demo() -> dict:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda c: c["boundaries"].update(locus_gene="HBB"),
     "config boundaries.locus_gene: gene 'HBB' is not in the annotation "
     "resources/demo/gencode/exons_chr2_1-2333275.csv (41 genes, e.g."),
    (lambda c: c["boundaries"].update(regions=str(BAD / "bed_spaces.bed")),
     "config boundaries.regions: " + str(BAD / "bed_spaces.bed") + ":1: expected 3 "
     "tab-separated columns"),
    (lambda c: c["genome"]["split"].update(bed=str(BAD / "split_bad_label.bed")),
     "config genome.split.bed: " + str(BAD / "split_bad_label.bed")),
    (lambda c: c["boundaries"].update(exons=str(BAD / "exons_bad_strand.csv")),
     "config boundaries.exons: " + str(BAD / "exons_bad_strand.csv") + ":2: strand must be"),
    (lambda c: c["evaluation"].update(subsample={"train": 2, "test": 128, "seed": 0}),
     "config evaluation.subsample.train: 2 rows cannot be split into folds=3"),
    (lambda c: c["genome"].update(contigs=["chr2"]) or c["boundaries"].update(
        contigs=["chr2", "chr7"]), "config boundaries.contigs: ['chr7'] are not among"),
])
def test_inputs_are_checked_before_any_job(change, fragment, tmp_path) -> None:
    config = _demo()
    change(config)
    with pytest.raises(WorkflowConfigError) as err:
        check_config(config, ROOT, [tmp_path / "my.yaml"])
    assert str(err.value).startswith(f"{tmp_path / 'my.yaml'}: ")
    assert fragment in str(err.value)


def test_missing_task_source_file_is_named(tmp_path) -> None:
    sources = yaml.safe_load((ROOT / "config/evaluation/sources-demo.yaml").read_text())
    sources["H3"]["test"] = "resources/demo/none.csv.gz"
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(sources))
    config = _demo()
    config["evaluation"]["sources"] = str(path)
    with pytest.raises(WorkflowConfigError, match=r"task H3 names resources/demo/none\.csv\.gz, "
                                                  r"which does not exist"):
        check_config(config, ROOT)


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda c: c["boundaries"].update(locus_gen="ACP1"),
     "key boundaries: Additional properties are not allowed ('locus_gen' was unexpected)"),
    (lambda c: c["boundaries"].update(locus_gene=5), "key boundaries.locus_gene: 5 is not of "
                                                     "type 'string' (gene of the genome-locus"),
    (lambda c: c.update(tasks=["H3", "H5"]), "key tasks.1: 'H5' is not allowed; choose one "
                                             "of H3, H4,"),
])
def test_schema_errors_name_the_file_and_key_in_one_line(change, fragment, tmp_path) -> None:
    config = _demo()
    change(config)
    with pytest.raises(WorkflowConfigError) as err:
        check_schema(config, SCHEMA, [tmp_path / "my.yaml"])
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'my.yaml'}: ") and fragment in message
    assert "\n" not in message and len(message) < 400


def test_dry_run_reports_a_bad_gene_in_a_few_lines(tmp_path) -> None:
    """Before: the dry run passed and the locus figure failed after pretraining."""
    config = copy.deepcopy(_demo())
    config["boundaries"]["locus_gene"] = "NOPE1"
    path = _write(tmp_path, config)
    proc = subprocess.run([SNAKEMAKE, "-n", "--configfile", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert proc.returncode != 0 and "Job stats" not in proc.stdout
    text = proc.stderr + proc.stdout
    assert f"{path}: config boundaries.locus_gene: gene 'NOPE1' is not in the annotation" in text
    assert len(text.strip().splitlines()) <= 10


def test_dry_run_schema_error_is_short(tmp_path) -> None:
    config = _demo()
    config["boundaries"]["locus_gen"] = "ACP1"
    path = _write(tmp_path, config)
    proc = subprocess.run([SNAKEMAKE, "-n", "--configfile", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=dict(os.environ))
    text = proc.stderr + proc.stdout
    assert proc.returncode != 0 and f"{path}: key boundaries: Additional properties" in text
    assert len(text.strip().splitlines()) <= 10  # not the ~520-line schema dump
