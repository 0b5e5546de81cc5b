"""The boundary-alignment commands end to end on a region of the shipped slice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.analysis.tracks import TrackError, read_bedgraph, read_boundaries
from ldarnet.cli import main
from ldarnet.data.bed import BedError
from ldarnet.data.genome import prepare_genome
from ldarnet.foundation.atomic import write_json
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.weights import save_model_file

REGION = ("chr2", 190_000, 280_000)  # AC079779.1, ACP1, SH3YL1 transcripts


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("boundaries")
    torch.manual_seed(0)
    cfg = load_model_config(MODELS / "ldarnet-tiny.yaml")
    run = work / "run"
    run.mkdir()
    save_model_file(LDARNet(cfg), run / "model.safetensors")
    write_json(run / "config.json", {"model_config": cfg.to_dict()})
    genome = work / "genome.fa"
    prepare_genome(ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz", genome)
    regions = work / "regions.bed"
    regions.write_text("\t".join(map(str, REGION)) + "\n")
    exons = work / "exons.csv"
    with open(ROOT / "resources/demo/gencode/exons_chr2_1-2333275.csv") as src:
        rows = list(csv.DictReader(src))
    keep = [r for r in rows if REGION[1] + 2000 <= int(r["Start"]) and int(r["End"]) <= REGION[2]
            - 2000]
    with open(exons, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    assert main(["segment", "--model", str(run), "--fasta", str(genome), "--regions",
                 str(regions), "--bedgraph", str(work / "p.bedGraph"), "--bed",
                 str(work / "b.bed"), "--device", "cpu", "--tile", "2048", "--margin",
                 "256"]) == 0
    return {"work": work, "run": run, "genome": genome, "exons": exons}


def test_tracks_read_back_the_segmentation(workdir) -> None:
    work = workdir["work"]
    p = read_bedgraph(work / "p.bedGraph", "chr2", 2_333_275)
    b = read_boundaries(work / "b.bed", "chr2", 2_333_275)
    inside = slice(REGION[1], REGION[2])
    assert not torch.isnan(torch.from_numpy(p[inside])).any()
    assert torch.isnan(torch.from_numpy(p[: REGION[1]])).all()  # not segmented
    assert p[REGION[1]] == 1.0 and b[REGION[1]]  # p_0 = 1 at the region start
    assert ((p[inside] > 0.5) == b[inside]).mean() > 0.99  # hard = p > 0.5 (4-decimal text)
    bad = work / "bad.bedGraph"
    bad.write_text("chr2\t10\t5\t0.5\n")
    with pytest.raises((TrackError, BedError), match=r"bad\.bedGraph:1"):
        read_bedgraph(bad, "chr2", 100)


def test_splice_alignment_command(workdir, capsys) -> None:
    work, out = workdir["work"], workdir["work"] / "splice"
    code = main(["splice-alignment", "--bedgraph", str(work / "p.bedGraph"), "--bed",
                 str(work / "b.bed"), "--fasta", str(workdir["genome"]), "--exons",
                 str(workdir["exons"]), "--out-dir", str(out), "--permutations", "200",
                 "--flank", "10"])
    assert code == 0
    summary = json.loads((out / "splice_summary.json").read_text())
    assert summary["contigs"] == ["chr2"]
    assert summary["offset0"]["donor_p"]["n_junctions"] > 10
    with open(out / "splice_stats.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {r["kind"] for r in rows} == {"donor", "acceptor"}
    assert len(rows) == 2 * 2 * 21  # kinds x signals x offsets
    assert all(0 < float(r["q_value"]) <= 1 for r in rows)
    assert (out / "splice_profiles.png").stat().st_size > 10_000


def test_motif_alignment_command(workdir) -> None:
    out = workdir["work"] / "motifs"
    code = main(["motif-alignment", "--model", str(workdir["run"]), "--fasta",
                 str(workdir["genome"]), "--exons", str(workdir["exons"]), "--out-dir", str(out),
                 "--permutations", "200", "--device", "cpu"])
    assert code == 0
    summary = json.loads((out / "motif_summary.json").read_text())
    assert summary["promoters"] >= 2
    assert "Inr (YYANWYY)" in summary["motifs"]
    for name in ("motif_profiles.tsv", "motif_stats.tsv", "boundary_logo.png"):
        assert (out / name).exists(), name


def test_missing_segmentation_is_one_clear_error(workdir, tmp_path, capsys) -> None:
    code = main(["splice-alignment", "--bedgraph", str(tmp_path / "none.bedGraph"), "--bed",
                 str(tmp_path / "none.bed"), "--fasta", str(workdir["genome"]), "--exons",
                 str(workdir["exons"]), "--out-dir", str(tmp_path / "out")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_locus_figure_and_boundary_table(workdir, tmp_path) -> None:
    work = workdir["work"]
    figure = tmp_path / "locus.png"
    assert main(["locus-figure", "--bedgraph", str(work / "p.bedGraph"), "--bed",
                 str(work / "b.bed"), "--fasta", str(workdir["genome"]), "--exons",
                 str(workdir["exons"]), "--gene", "ACP1", "--out", str(figure)]) == 0
    assert figure.stat().st_size > 10_000
    # a gene of the annotation outside the segmented region is refused clearly
    assert main(["locus-figure", "--bedgraph", str(work / "p.bedGraph"), "--bed",
                 str(work / "b.bed"), "--fasta", str(workdir["genome"]), "--exons",
                 str(workdir["exons"]), "--gene", "NOPE", "--out",
                 str(tmp_path / "x.png")]) == 2
    # the table reads the statistics of the two analyses run above
    runs = tmp_path / "results/boundaries/tiny/seed3"
    (runs / "splice").mkdir(parents=True)
    (runs / "motifs").mkdir(parents=True)
    (runs / "splice/splice_stats.tsv").write_bytes((work / "splice/splice_stats.tsv").read_bytes())
    (runs / "motifs/motif_stats.tsv").write_bytes((work / "motifs/motif_stats.tsv").read_bytes())
    out = tmp_path / "boundaries.tsv"
    assert main(["boundary-table", "--splice-stats", str(runs / "splice/splice_stats.tsv"),
                 "--motif-stats", str(runs / "motifs/motif_stats.tsv"), "--out", str(out)]) == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {(r["model"], r["seed"]) for r in rows} == {("tiny", "3")}
    assert sum(r["analysis"] == "splice junctions" for r in rows) == 4  # 2 kinds x 2 signals
    assert out.with_suffix(".md").read_text().startswith("# Boundary alignment")


def test_boundary_density_on_shipped_benchmark_sequences(workdir, tmp_path) -> None:
    tables = sorted((ROOT / "resources/demo/benchmarks/genomic_benchmarks/"
                     "hg38_chr2_slice_sequences").glob("human_enhancers_*.csv"))
    out_tsv, out_png = tmp_path / "density.tsv", tmp_path / "density.png"
    assert main(["boundary-density", "--model", str(workdir["run"]), "--sequences",
                 *map(str, tables), "--out-tsv", str(out_tsv), "--out-png", str(out_png),
                 "--device", "cpu"]) == 0
    with open(out_tsv) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {(r["task"], r["class"]) for r in rows} == {
        ("human_enhancers_cohn", "negative"), ("human_enhancers_cohn", "positive"),
        ("human_enhancers_ensembl", "negative"), ("human_enhancers_ensembl", "positive")}
    assert sum(int(r["n"]) for r in rows) == 16 + 126  # every shipped row
    for r in rows:
        assert 0 < float(r["median"]) <= 1
        assert abs(float(r["compression"]) * float(r["mean"]) - 1) < 1e-3
        assert 0 < float(r["classes_differ_p"]) <= 1
    assert out_png.stat().st_size > 10_000
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,seq\nx,ACGT\n")
    assert main(["boundary-density", "--model", str(workdir["run"]), "--sequences", str(bad),
                 "--out-tsv", str(tmp_path / "b.tsv"), "--out-png", str(tmp_path / "b.png")]) == 2


def test_density_reads_prepared_task_splits(tmp_path) -> None:
    """A prepared task split (sequence,label + task.json) is read with its class names."""
    from ldarnet.analysis.density import DensityError, read_labelled_sequences

    task = tmp_path / "human_ocr_ensembl"
    task.mkdir()
    (task / "test.csv").write_text("sequence,label\nacgt,1\nGGCC,0\n")
    write_json(task / "task.json", {"task": "human_ocr_ensembl",
                                    "classes": ["negative", "positive"]})
    assert read_labelled_sequences(task / "test.csv") == [
        ("human_ocr_ensembl", "positive", "ACGT"), ("human_ocr_ensembl", "negative", "GGCC")]
    (task / "test.csv").write_text("sequence,label\n,1\n")
    with pytest.raises(DensityError, match=r"test.csv:2: empty sequence"):
        read_labelled_sequences(task / "test.csv")


def test_start_codon_alignment_command(workdir, tmp_path) -> None:
    """Inferred start codons (ACP1, SH3YL1 in the region) profiled from the segmentation."""
    work, out = workdir["work"], tmp_path / "start_codons"
    args = ["start-codon-alignment", "--bedgraph", str(work / "p.bedGraph"), "--bed",
            str(work / "b.bed"), "--fasta", str(workdir["genome"]), "--exons",
            str(workdir["exons"]), "--out-dir", str(out), "--permutations", "200", "--flank",
            "10"]
    assert main([*args, "--source", "longest_orf"]) == 0
    summary = json.loads((out / "start_codon_summary.json").read_text())
    assert summary["label"].startswith("start codons inferred") and "not annotated" in \
        summary["label"]
    assert summary["segmented"] >= 3
    with open(out / "start_codon_stats.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {r["versus"] for r in rows} >= {"non-start ATGs", "random positions"}
    assert {r["source"] for r in rows} == {"inferred (longest ORF), not annotated"}
    assert (out / "start_codon_profiles.png").stat().st_size > 10_000
    # the demo's exon table has no start codons: asking for GTF ones is one clear error
    assert main([*args, "--source", "gtf"]) == 2
    # a GTF with exon and start_codon lines (1-based) gives the same anchors, labelled annotated
    from ldarnet.analysis.start_codons import infer_start_codons
    from ldarnet.data.annotation import read_exon_table
    from ldarnet.data.fasta import read_fasta

    exons = read_exon_table(workdir["exons"])
    starts = infer_start_codons(exons, read_fasta(workdir["genome"]))
    lines = []
    for e in exons:
        lines.append(f'chr2\tT\texon\t{e.start + 1}\t{e.end}\t.\t{e.strand}\t.\t'
                     f'transcript_id "{e.transcript}"; gene_name "{e.gene}";\n')
    for c in starts:
        if not c.split:
            lo = c.position + 1 if c.strand == "+" else c.position - 1
            lines.append(f'chr2\tT\tstart_codon\t{lo}\t{lo + 2}\t.\t{c.strand}\t0\t'
                         f'transcript_id "{c.transcript}";\n')
    gtf = tmp_path / "annotation.gtf"
    gtf.write_text("".join(lines))
    assert main([*args[:8], str(gtf), *args[9:], "--source", "gtf"]) == 0
    annotated = json.loads((out / "start_codon_summary.json").read_text())
    assert annotated["label"] == "annotated start codons (GENCODE start_codon)"
    assert annotated["segmented"] == sum(not c.split for c in starts)
    assert annotated["atg"] == annotated["segmented"]  # every anchor reads ATG


def test_splice_midpoint_command_and_table_rows(workdir, tmp_path) -> None:
    """Prepared splice task split → midpoint profiles; both new analyses reach the table."""
    task = tmp_path / "splice_sites_donors"
    task.mkdir()
    rng = torch.Generator().manual_seed(0)
    seqs = ["".join("ACGT"[i] for i in torch.randint(0, 4, (300,), generator=rng).tolist())
            for _ in range(8)]
    (task / "test.csv").write_text("sequence,label\n" + "".join(
        f"{s},{i % 2}\n" for i, s in enumerate(seqs)))
    write_json(task / "task.json", {"task": "splice_sites_donors", "classes": ["0", "1"]})
    runs = tmp_path / "results/boundaries/tiny/seed3"
    out = runs / "splice_midpoint"
    assert main(["splice-midpoint", "--model", str(workdir["run"]), "--sequences",
                 str(task / "test.csv"), "--out-dir", str(out), "--permutations", "200",
                 "--device", "cpu"]) == 0
    summary = json.loads((out / "midpoint_summary.json").read_text())
    assert summary["tasks"]["splice_sites_donors"] == {"sequences": 8, "anchor_index": [150]}
    with open(out / "midpoint_stats.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 21 and {r["sites"] for r in rows} == {"donor (1)"}
    assert (out / "midpoint_profiles.png").stat().st_size > 10_000
    table = tmp_path / "boundaries.tsv"
    assert main(["boundary-table", "--midpoint-stats", str(out / "midpoint_stats.tsv"),
                 "--out", str(table)]) == 0
    with open(table) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["model"], r["analysis"], r["sites"], r["versus"]) for r in rows] == [
        ("tiny", "splice task midpoint: splice_sites_donors", "donor (1)", "non-site (0)")]
