"""The corpus of malformed inputs in tests/data/malformed/, run through the ``ldarnet`` CLI.

Every case asserts what a user must see: exit status 2, exactly one error line
``ldarnet <command>: error: ...`` that names the file and the problem, no traceback,
and no output left behind (not the output, not a temporary). The inputs the documented
policy accepts (CRLF, spaces inside sequence lines) give correct output and a note.
See docs/inputs.md for the policy each reader follows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.cli import main
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import save_model_file

DATA = ROOT / "tests" / "data"
BAD = DATA / "malformed"
GOOD = DATA / "valid"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A run directory as ``ldarnet pretrain`` leaves it (ldarnet-tiny, random weights)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("run")
    model = LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml")).eval()
    save_model_file(model, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps({"model_config": model.config.to_dict()}))
    return out


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> Path:
    """valid/genome.fa prepared (with its .fai), as the boundary commands read it."""
    out = tmp_path_factory.mktemp("genome") / "genome.fa"
    assert main(["prepare-genome", "--fasta", str(GOOD / "genome.fa"), "--out", str(out)]) == 0
    return out


def run_error(capsys, args: list[str], command: str, *needles: str, out: Path) -> str:
    """Run the CLI; require exit 2, one error line holding every needle, nothing in ``out``."""
    before = sorted(p.name for p in out.iterdir())
    assert main(args) == 2, args
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"ldarnet {command}: error: "), errors[0]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == before  # no output, no temporary
    return errors[0]


# --------------------------------------------------------------------------- FASTA
FASTA_CASES = {
    "fasta_duplicate_names.fa": ":3: duplicate record name 'chrA' (first at line 1)",
    "fasta_empty_record.fa": ":1: record 'chrA' has no sequence",
    "fasta_no_header.fa": ":1: sequence before the first '>' header",
    "fasta_nameless_header.fa": ":1: FASTA header '>' without a record name",
    "fasta_header_mid_line.fa": ":2: '>' in the middle of a line",
    "fasta_rna.fa": ":2: unexpected character b'U'",
    "fasta_alignment_gaps.fa": ":2: unexpected character b'-'",
    "fasta_protein.fa": ":2: unexpected character b'E'",
    "fasta_binary.fa": ":2: unexpected character b'\\x00'",
    "fasta_empty.fa": ": no FASTA records found",
    "fasta_truncated.fa.gz": ": the gzip stream is truncated or corrupt",
}


@pytest.mark.parametrize("name", sorted(FASTA_CASES))
def test_malformed_fasta_segment(name, model_dir, tmp_path, capsys) -> None:
    """``segment`` reads FASTA with the one reader: the same refusals as prepare-genome."""
    out = tmp_path / "out"
    out.mkdir()
    line = run_error(capsys, ["segment", "--model", str(model_dir), "--fasta", str(BAD / name),
                       "--bedgraph", str(out / "p.bedGraph"), "--bed", str(out / "b.bed"),
                       "--device", "cpu"], "segment", f"{name}{FASTA_CASES[name]}", out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


@pytest.mark.parametrize("name", ["fasta_duplicate_names.fa", "fasta_rna.fa",
                                  "fasta_truncated.fa.gz", "fasta_empty_record.fa"])
def test_malformed_fasta_prepare_and_embed(name, model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    line = run_error(capsys, ["prepare-genome", "--fasta", str(BAD / name), "--out",
                       str(out / "g.fa")], "prepare-genome", f"{name}{FASTA_CASES[name]}",
              out=out)
    assert str(BAD / name) in line  # the message names the file it refuses
    line = run_error(capsys, ["embed", str(model_dir), str(BAD / name), str(out / "e.npy"),
                       "--device", "cpu"], "embed", f"{name}{FASTA_CASES[name]}", out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


def _bedgraph_extent(path: Path) -> dict[str, int]:
    ends: dict[str, int] = {}
    for line in path.read_text().splitlines():
        contig, _, end, _ = line.split("\t")
        ends[contig] = max(ends.get(contig, 0), int(end))
    return ends


def test_accepted_fasta_inner_space_and_crlf(model_dir, tmp_path, capsys) -> None:
    """Normalised, not refused: 8 bp (not 9) for 'ACGT ACGT', the same as prepare-genome."""
    graph, bed = tmp_path / "p.bedGraph", tmp_path / "b.bed"
    args = ["segment", "--model", str(model_dir), "--bedgraph", str(graph), "--bed", str(bed),
            "--device", "cpu", "--fasta"]
    assert main([*args, str(BAD / "fasta_inner_space.fa")]) == 0
    assert _bedgraph_extent(graph) == {"chrA": 8}
    assert "space(s)/tab(s) inside sequence lines removed" in capsys.readouterr().err
    assert main(["prepare-genome", "--fasta", str(BAD / "fasta_inner_space.fa"), "--out",
                 str(tmp_path / "g.fa")]) == 0
    assert "8 bp" in capsys.readouterr().out
    assert main([*args, str(BAD / "fasta_crlf.fa")]) == 0
    assert _bedgraph_extent(graph) == {"chrA": 66, "chrB": 42}
    assert "carriage return(s) removed" in capsys.readouterr().err


# --------------------------------------------------------------------------- BED
BED_CASES = {
    "bed_spaces.bed": ":1: expected 3 tab-separated columns",
    "bed_empty_interval.bed": ":1: start 20 >= end 20",
    "bed_negative_start.bed": ":1: start and end must be non-negative integers",
    "bed_not_integer.bed": ":1: start and end must be non-negative integers",
    "bed_unknown_contig.bed": ":1: contig 'chr1' is not in",
    "bed_beyond_end.bed": ":2: interval chrB:10-100 ends beyond the contig",
    "bed_overlapping.bed": ":2: region chrA:20-40 overlaps line 1",
    "bed_no_intervals.bed": " has no intervals",
    "bed_too_few_columns.bed": ":1: expected 3 tab-separated columns",
    "bed_undecodable.bed": " is not a readable text BED file",
}


@pytest.mark.parametrize("name", sorted(BED_CASES))
def test_malformed_regions_bed(name, model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    line = run_error(capsys, ["segment", "--model", str(model_dir), "--fasta",
                              str(GOOD / "genome.fa"), "--regions", str(BAD / name),
                              "--bedgraph", str(out / "p.bedGraph"), "--bed", str(out / "b.bed"),
                              "--device", "cpu"], "segment",
              f"{name}{BED_CASES[name]}", out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


def test_malformed_split_bed(genome, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    name = "split_bad_label.bed"
    line = run_error(capsys, ["tile", "--fasta", str(genome), "--window", "8", "--out-dir",
                       str(out / "windows"), "--split-method", "bed", "--split-bed",
                       str(BAD / name)], "tile", f"{name}:2: unknown split label 'training'",
              out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


# --------------------------------------------------------------------------- annotation
ANNOTATION_CASES = {
    "gtf_eight_fields.gtf": ":1: a GTF line has 9 tab-separated fields, found 8",
    "gtf_bad_coordinate.gtf": ":1: start and end must be integers",
    "gtf_bad_attribute.gtf": ":1: attribute 'gene_nameGENE1' is not 'key \"value\"'",
    "gtf_no_transcript_id.gtf": ":1: exon line has no transcript_id",
    "gtf_bad_strand.gtf": ":1: strand must be '+' or '-'",
    "gtf_two_strands.gtf": ": transcript 'T1' has exons on both strands",
    "exons_missing_column.csv": ":1: missing column(s) ['Strand']",
    "exons_bad_start.csv": ":2: Start/End (and overhangs) must be integers",
    "exons_bad_strand.csv": ":2: strand must be '+' or '-'",
    "exons_empty_interval.csv": ":2: empty or negative exon interval",
}


@pytest.mark.parametrize("name", sorted(ANNOTATION_CASES))
def test_malformed_annotation(name, genome, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    line = run_error(capsys, ["locus-figure", "--bedgraph", str(out / "p.bedGraph"), "--bed",
                       str(out / "b.bed"), "--fasta", str(genome), "--exons", str(BAD / name),
                       "--gene", "GENE1", "--out", str(out / "locus.png")], "locus-figure",
              f"{name}{ANNOTATION_CASES[name]}", out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


def test_unknown_locus_gene(genome, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    line = run_error(capsys, ["locus-figure", "--bedgraph", str(out / "p.bedGraph"), "--bed",
                       str(out / "b.bed"), "--fasta", str(genome), "--exons",
                       str(GOOD / "exons.csv"), "--gene", "HBB", "--out", str(out / "l.png")],
              "locus-figure", "gene 'HBB' is not in the annotation", "exons.csv",
              "1 genes, e.g. GENE1", out=out)
    assert str(GOOD / "exons.csv") in line  # the message names the file it refuses


# --------------------------------------------------------------------------- task tables
TASK_CASES = {
    "task_header_only.csv": ": no rows (only a header, or an empty file); it is the test split",
    "task_missing_label_column.csv": ":1: missing column(s) ['label']",
    "task_label_not_integer.csv": ":2: label 'yes' is not an integer class index",
    "task_label_out_of_range.csv": ":3: label 5 is outside 0..1",
    "task_bad_character.csv": ":3: character 'Z' at position 5",
    "task_short_row.csv": ":3: 1 field(s), expected 2",
    "task_extra_field.csv": ":2: 3 field(s), expected 2",
    "task_empty_sequence.csv": ":3: empty sequence",
    "task_undecodable.csv": ": not a readable CSV file",
    "task_truncated.csv.gz": ": not a readable CSV file",
}


@pytest.mark.parametrize("name", sorted(TASK_CASES))
def test_malformed_task_table(name, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"toy:\n  format: csv\n  train: {GOOD / 'toy_train.csv'}\n"
                       f"  test: {BAD / name}\n")
    line = run_error(capsys, ["prepare-task", "toy", "--registry", str(GOOD / "tasks.tsv"),
                       "--sources", str(sources), "--out", str(out / "toy")], "prepare-task",
              f"{name}{TASK_CASES[name]}", out=out)
    assert str(BAD / name) in line  # the message names the file it refuses


# --------------------------------------------------------------------------- configs
def test_malformed_model_configs(tmp_path, capsys) -> None:
    for name, needle in (
        ("model_vocab_size_text.yaml", "vocab_size: expected an integer, got '7' (text)"),
        ("model_a_init_range_text.yaml", "ssm.A_init_range: expected a list of 2 numbers, got "
                                         "'abc' (text)"),
        ("model_not_yaml.yaml", "model_not_yaml.yaml:3: model config (see config/models/ for "
                                "examples) is not valid YAML"),
    ):
        line = run_error(capsys, ["model-info", "--config", str(BAD / name)], "model-info", name,
                  needle, out=tmp_path)
        assert str(BAD / name) in line  # the message names the file it refuses


@pytest.mark.parametrize(("name", "needle"), [
    ("pretrain_betas_scalar.yaml", "betas: expected a list of 2 numbers, got 0.9"),
    ("pretrain_lr_list.yaml", "lr: expected a number, got [0.002] (a list)"),
    ("pretrain_grad_clip_text.yaml", "grad_clip: expected a number, got 'one' (text)"),
    ("pretrain_tokens_no_dot.yaml", "tokens: expected a number or null, got '300e9' (text); "
                                    "YAML 1.1 reads an exponent without a dot as text"),
])
def test_malformed_pretrain_configs(name, needle, tmp_path, capsys) -> None:
    line = run_error(capsys, ["pretrain", "--model", str(MODELS / "ldarnet-tiny.yaml"),
                              "--config", str(BAD / name), "--shards", str(tmp_path / "none"),
                              "--out", str(tmp_path / "run"), "--device", "cpu"],
                     "pretrain", name, needle, out=tmp_path)
    assert str(BAD / name) in line and needle in line  # names the file and what is wrong
    assert not (tmp_path / "run").exists()  # refused before anything is written


# --------------------------------------------------------------------------- the console script
def test_console_script_reports_one_line(tmp_path) -> None:
    """The installed entry point (not only ``main``): exit 2, one line, no traceback."""
    out = tmp_path / "g.fa"
    proc = subprocess.run([sys.executable, "-m", "ldarnet", "prepare-genome", "--fasta",
                           str(BAD / "fasta_duplicate_names.fa"), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "error" in line] == [
        f"ldarnet prepare-genome: error: {BAD / 'fasta_duplicate_names.fa'}:3: duplicate record "
        "name 'chrA' (first at line 1); record names must be unique"]
    assert list(tmp_path.iterdir()) == []


def test_corpus_files_are_all_exercised() -> None:
    """Every malformed file is a case above (a new file without a test would prove nothing)."""
    used = (set(FASTA_CASES) | set(BED_CASES) | set(ANNOTATION_CASES) | set(TASK_CASES)
            | {"split_bad_label.bed", "fasta_inner_space.fa", "fasta_crlf.fa",
               "model_vocab_size_text.yaml", "model_a_init_range_text.yaml",
               "model_not_yaml.yaml", "pretrain_betas_scalar.yaml", "pretrain_lr_list.yaml",
               "pretrain_grad_clip_text.yaml", "pretrain_tokens_no_dot.yaml"})
    assert {p.name for p in BAD.iterdir()} == used
