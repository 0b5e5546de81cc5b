"""Building canonical task directories from every source format (real shipped data)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ldarnet.data.annotation import junction_anchors, read_exon_table
from ldarnet.data.fasta import read_fasta
from ldarnet.foundation.checksum import file_sha256
from ldarnet.tasks import derived
from ldarnet.tasks.registry import TaskSpec, load_registry
from ldarnet.tasks.sources import (
    TaskSourceError,
    build_task,
    stratified_subsample,
)
from ldarnet.tasks.task_data import TaskDataError, read_manifest, read_split

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo"
PROXY = DEMO / "benchmarks" / "nt-proxy"
SLICES = DEMO / "benchmarks" / "genomic_benchmarks" / "hg38_chr2_slice_sequences"
FASTA = DEMO / "hg38" / "chr2_1-2333275.fa.gz"
EXONS = DEMO / "gencode" / "exons_chr2_1-2333275.csv"
CANONICAL = DEMO / "gencode" / "canonical_transcripts_chr2_1-2333275.tsv"
TASKS = load_registry(ROOT / "config" / "tasks.tsv")
ENHANCERS = PROXY / "enhancers_ienhancer2l"
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _rc(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def _rows(path: Path) -> list[tuple[str, int]]:
    with open(path, newline="") as fh:
        return [(r["sequence"], int(r["label"])) for r in csv.DictReader(fh)]


# --------------------------------------------------------------------------------------
# files shipped as sequences
# --------------------------------------------------------------------------------------


def test_csv_proxy_build_and_manifest(tmp_path: Path) -> None:
    source = {"format": "csv", "train": str(PROXY / "histone/H3/dev.csv.gz"),
              "test": str(PROXY / "histone/H3/test.csv.gz"), "note": "GUE dev as train"}
    manifest = build_task(TASKS["H3"], source, tmp_path / "H3")
    assert sorted(p.name for p in (tmp_path / "H3").iterdir()) == [
        "task.json", "test.csv", "train.csv"]
    assert manifest == read_manifest(tmp_path / "H3")
    assert manifest["kind"] == "proxy" and manifest["format"] == "csv"
    assert manifest["note"] == "GUE dev as train"
    assert manifest["task"] == "H3" and manifest["suite"] == "nt"
    assert manifest["group"] == "histone" and manifest["classes"] == ["0", "1"]
    train = manifest["splits"]["train"]
    assert train["rows"] == train["rows_before_subsample"] == 1497
    assert train["counts"] == {"0": 735, "1": 762}
    assert manifest["splits"]["test"]["counts"] == {"0": 742, "1": 755}
    assert manifest["subsample"] is None
    for split in ("train", "test"):
        path = tmp_path / "H3" / f"{split}.csv"
        assert manifest["splits"][split]["sha256"] == file_sha256(path)
        assert len(read_split(path, TASKS["H3"])) == 1497


def test_fasta_classes_ienhancer(tmp_path: Path) -> None:
    source = {"format": "fasta_classes",
              "train": {"1": str(ENHANCERS / "original_enhancer_train.fa.gz"),
                        "0": str(ENHANCERS / "original_non_enhancer_train.fa.gz")},
              "test": {"1": str(ENHANCERS / "original_enhancer_ind.fa.gz"),
                       "0": str(ENHANCERS / "original_non_enhancer_ind.fa.gz")}}
    manifest = build_task(TASKS["enhancers"], source, tmp_path)
    assert manifest["kind"] == "proxy"
    assert manifest["splits"]["train"]["counts"] == {"0": 1484, "1": 1484}
    assert manifest["splits"]["test"]["counts"] == {"0": 200, "1": 200}
    first = read_fasta(ENHANCERS / "original_enhancer_train.fa.gz")
    train = read_split(tmp_path / "train.csv", TASKS["enhancers"])
    assert train.sequences[0] == next(iter(first.values())).upper()
    assert train.labels[0] == 1
    bad = dict(source, train={"strong": source["train"]["1"]})
    with pytest.raises(TaskSourceError, match="class 'strong' is not one of"):
        build_task(TASKS["enhancers"], bad, tmp_path / "bad")


def test_parquet_filters_task_column_and_reads_gb_seq(tmp_path: Path) -> None:
    nt = pd.DataFrame({"sequence": ["acgt" * 125, "T" * 500, "G" * 500, "C" * 10],
                       "name": ["a", "b", "c", "d"], "label": [1, 0, 1, 1],
                       "task": ["H3", "H3", "H3", "H4"]})
    nt.to_parquet(tmp_path / "train.parquet")
    nt.iloc[:2].to_parquet(tmp_path / "test.parquet")
    manifest = build_task(TASKS["H3"], {"format": "parquet", "hub": True,
                                        "train": str(tmp_path / "train.parquet"),
                                        "test": str(tmp_path / "test.parquet")},
                          tmp_path / "out")
    assert manifest["kind"] == "official"
    assert manifest["splits"]["train"]["rows"] == 3  # the H4 row (10 bp) is filtered out
    assert _rows(tmp_path / "out" / "train.csv")[0] == ("ACGT" * 125, 1)

    gb = pd.DataFrame({"seq": ["ACGT", "AC"], "label": [2, 0]})
    gb.to_parquet(tmp_path / "gb.parquet")
    spec = TASKS["human_ensembl_regulatory"]
    manifest = build_task(spec, {"format": "parquet", "train": str(tmp_path / "gb.parquet"),
                                 "test": str(tmp_path / "gb.parquet")}, tmp_path / "gb")
    assert manifest["splits"]["test"]["counts"] == {"enhancer": 1, "ocr": 0, "promoter": 1}

    pd.DataFrame({"seq": ["ACGT"], "label": [3]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(TaskDataError, match=r"bad.parquet row 1: label 3 is outside"):
        build_task(spec, {"format": "parquet", "train": str(tmp_path / "bad.parquet"),
                          "test": str(tmp_path / "gb.parquet")}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_gb_slice_counts(tmp_path: Path) -> None:
    spec = TASKS["human_ensembl_regulatory"]
    csv_path = SLICES / "human_ensembl_regulatory.chr2_1-2333275_chrM.csv"
    manifest = build_task(spec, {"format": "gb_slice", "csv": str(csv_path)}, tmp_path)
    assert manifest["kind"] == "slice"
    assert manifest["splits"]["train"]["counts"] == {"enhancer": 85, "ocr": 75, "promoter": 51}
    assert manifest["splits"]["test"]["counts"] == {"enhancer": 25, "ocr": 17, "promoter": 7}
    with pytest.raises(TaskDataError, match="not task 'human_ocr_ensembl'"):
        build_task(TASKS["human_ocr_ensembl"], {"format": "gb_slice", "csv": str(csv_path)},
                   tmp_path / "wrong")


# --------------------------------------------------------------------------------------
# Genomic Benchmarks intervals + reference
# --------------------------------------------------------------------------------------


def _intervals_from_slice(dataset: str, root: Path) -> dict[str, list[tuple[str, int]]]:
    """A Genomic Benchmarks task directory of the slice rows; the expected canonical rows."""
    spec = TASKS[dataset]
    table = pd.read_csv(SLICES / f"{dataset}.chr2_1-2333275_chrM.csv", keep_default_na=False)
    table = table[table["region"] == "chr2"]
    expected: dict[str, list[tuple[str, int]]] = {}
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        expected[split] = []
        for label, name in enumerate(spec.classes):
            part = table[(table["split"] == split) & (table["label_name"] == name)]
            part[["id", "region", "start", "end", "strand"]].to_csv(
                root / split / f"{name}.csv.gz", index=False)
            expected[split] += [(s.upper(), label) for s in part["seq"]]
    return expected


@pytest.mark.parametrize("dataset", ["human_nontata_promoters", "human_ensembl_regulatory",
                                     "demo_human_or_worm", "human_ocr_ensembl"])
def test_gb_intervals_rebuild_equals_the_shipped_sequences(tmp_path: Path, dataset: str) -> None:
    expected = _intervals_from_slice(dataset, tmp_path / "intervals")
    manifest = build_task(TASKS[dataset], {"format": "gb_intervals",
                                           "intervals": str(tmp_path / "intervals"),
                                           "fasta": str(FASTA)}, tmp_path / "out")
    assert manifest["kind"] == "official"
    for split in ("train", "test"):
        if expected[split]:
            assert _rows(tmp_path / "out" / f"{split}.csv") == expected[split]


def test_gb_intervals_with_pyfaidx_index_and_contigs_only(tmp_path: Path) -> None:
    dataset = "human_nontata_promoters"
    expected = _intervals_from_slice(dataset, tmp_path / "intervals")
    for suffix in ("", ".gzi"):
        shutil.copy(f"{FASTA}{suffix}", tmp_path / f"ref.fa.gz{suffix}")
    import pyfaidx

    pyfaidx.Fasta(str(tmp_path / "ref.fa.gz")).close()  # writes ref.fa.gz.fai
    extra = tmp_path / "intervals" / "train" / "negative.csv.gz"
    pd.DataFrame({"id": ["x", "y"], "region": ["chr7", "chr2"], "start": [5, 2_400_000],
                  "end": [256, 2_400_251], "strand": ["+", "-"]}).to_csv(extra, index=False)
    source = {"format": "gb_intervals", "intervals": str(tmp_path / "intervals"),
              "fasta": str(tmp_path / "ref.fa.gz")}
    with pytest.raises(TaskDataError, match=r"negative.csv.gz:2: region 'chr7' is not a record"):
        build_task(TASKS[dataset], source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    manifest = build_task(TASKS[dataset], {**source, "contigs_only": True}, tmp_path / "out")
    assert manifest["details"]["skipped"]["train"] == {"region_not_in_fasta": 1,
                                                       "beyond_record_end": 1}
    assert manifest["details"]["regions_not_in_fasta"] == ["chr7"]
    assert _rows(tmp_path / "out" / "train.csv") == expected["train"]
    assert _rows(tmp_path / "out" / "test.csv") == expected["test"]


def _official_intervals() -> Path | None:
    """The official interval files when the environment points at them (not shipped)."""
    for candidate in (os.environ.get("LDARNET_GB_INTERVALS", ""),):
        if candidate and (Path(candidate) / "human_nontata_promoters").is_dir():
            return Path(candidate)
    return None


@pytest.mark.skipif(_official_intervals() is None,
                    reason="Genomic Benchmarks interval files not available here")
def test_official_intervals_on_the_slice_give_the_slice_rows(tmp_path: Path) -> None:
    root = _official_intervals()
    assert root is not None
    dataset = "human_nontata_promoters"
    manifest = build_task(TASKS[dataset], {"format": "gb_intervals", "contigs_only": True,
                                           "intervals": str(root / dataset),
                                           "fasta": str(FASTA)}, tmp_path)
    table = pd.read_csv(SLICES / f"{dataset}.chr2_1-2333275_chrM.csv", keep_default_na=False)
    for split in ("train", "test"):
        part = table[table["split"] == split]
        assert sorted(s for s, _ in _rows(tmp_path / f"{split}.csv")) == sorted(
            s.upper() for s in part["seq"])
    skipped = manifest["details"]["skipped"]
    assert sum(sum(v.values()) for v in skipped.values()) == 27_097 + 9_034 - len(table)


# --------------------------------------------------------------------------------------
# subsampling, errors, atomicity
# --------------------------------------------------------------------------------------


def test_stratified_subsample_proportions_and_seed(tmp_path: Path) -> None:
    labels = np.array([0] * 700 + [1] * 200 + [2] * 100)
    idx = stratified_subsample(labels, 95, np.random.default_rng(3))
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.sum() == 95 and len(set(idx.tolist())) == 95
    assert np.all(np.abs(counts - 95 * np.array([0.7, 0.2, 0.1])) <= 1)
    again = stratified_subsample(labels, 95, np.random.default_rng(3))
    assert idx.tolist() == again.tolist()
    assert stratified_subsample(labels, 2000, np.random.default_rng(0)).tolist() == list(
        range(1000))

    source = {"format": "csv", "train": str(PROXY / "promoters/prom_300_tata/train.csv.gz"),
              "test": str(PROXY / "promoters/prom_300_tata/test.csv.gz")}
    spec = TASKS["promoter_tata"]
    one = build_task(spec, source, tmp_path / "a", subsample={"train": 301, "test": 5000},
                     seed=7)
    build_task(spec, source, tmp_path / "b", subsample={"train": 301, "test": 5000},
                     seed=7)
    build_task(spec, source, tmp_path / "c", subsample={"train": 301}, seed=8)
    train = one["splits"]["train"]
    assert train["rows_before_subsample"] == 4904 and train["rows"] == 301
    assert train["counts_before_subsample"] == {"0": 2460, "1": 2444}
    for name, before in train["counts_before_subsample"].items():
        assert abs(train["counts"][name] - 301 * before / 4904) <= 1
    assert one["splits"]["test"]["rows"] == 613  # smaller than 5000: kept whole
    assert one["subsample"] == {"train": 301, "test": 5000, "seed": 7}
    assert (tmp_path / "a/train.csv").read_bytes() == (tmp_path / "b/train.csv").read_bytes()
    assert (tmp_path / "a/train.csv").read_bytes() != (tmp_path / "c/train.csv").read_bytes()


def test_source_errors_name_task_and_key(tmp_path: Path) -> None:
    spec = TASKS["H3"]
    cases = [
        ({"train": "x"}, "task H3: source key 'format' is missing"),
        ({"format": "zip"}, "task H3: unknown source format 'zip'"),
        ({"format": "csv", "train": "x"}, "task H3: source format 'csv' needs the key 'test'"),
        ({"format": "csv", "train": "x", "test": "y", "contig_only": True},
         r"task H3: unknown source key\(s\) \['contig_only'\]"),
        ({"format": "csv", "train": "x", "test": "y", "kind": "fake"},
         "task H3: source key 'kind' is 'fake'"),
        ({"format": "csv", "train": str(tmp_path / "no.csv"), "test": "y"},
         "task H3: source key 'train': file .*no.csv does not exist"),
        ({"format": "derived_splice", "exons": str(EXONS), "fasta": str(FASTA),
          "site": "all"}, "task H3: site 'all' gives 3 classes"),
    ]
    for source, message in cases:
        with pytest.raises(TaskSourceError, match=message):
            build_task(spec, source, tmp_path / "out")
    with pytest.raises(TaskSourceError, match=r"subsample\['train'\] = 0"):
        build_task(spec, {"format": "csv", "train": "x", "test": "y"}, tmp_path / "out",
                   subsample={"train": 0})
    assert not (tmp_path / "out").exists()


def test_failed_rebuild_keeps_the_previous_build(tmp_path: Path) -> None:
    spec = TaskSpec("toy", "nt", "histone", "toy", 4, ("0", "1"), "d", "c")
    good = tmp_path / "good.csv"
    good.write_text("sequence,label\nACGT,0\nTTTT,1\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,label\nACGT,0\nACGTA,1\n")
    out = tmp_path / "out"
    build_task(spec, {"format": "csv", "train": str(good), "test": str(good)}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(TaskDataError, match=f"{bad}:3: sequence of 5 bp"):
        build_task(spec, {"format": "csv", "train": str(good), "test": str(bad)}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    empty = tmp_path / "empty.csv"
    empty.write_text("sequence,label\n")
    with pytest.raises(TaskDataError, match=rf"{empty}: no rows .* test split of task toy"):
        build_task(spec, {"format": "csv", "train": str(good), "test": str(empty)},
                   tmp_path / "new")
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------------------
# GENCODE-derived tasks
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genome() -> str:
    return read_fasta(FASTA)["chr2"].upper()


@pytest.fixture(scope="module")
def annotated() -> np.ndarray:
    anchors = junction_anchors(read_exon_table(EXONS))
    return np.array(sorted({a.position for a in anchors}))


def _no_overlap(train: list[derived.Window], test: list[derived.Window]) -> None:
    assert max(w.end for w in train) <= min(w.start for w in test)


@pytest.mark.parametrize(("site", "core", "at"), [("donor", "GT", (300, 302)),
                                                  ("acceptor", "AG", (298, 300))])
def test_derived_splice_windows(site: str, core: str, at: tuple[int, int], genome: str,
                                annotated: np.ndarray) -> None:
    task = derived.splice_windows(EXONS, FASTA, site, 600, seed=0)
    train, test = task.split("train"), task.split("test")
    assert Counter(w.label for w in train) == {0: len(train) // 2, 1: len(train) // 2}
    assert Counter(w.label for w in test) == {0: len(test) // 2, 1: len(test) // 2}
    for w in task.windows:
        assert len(w.sequence) == 600 and w.end - w.start == 600
        assert w.sequence[at[0] : at[1]] == core  # on the transcript strand
        piece = genome[w.start : w.end]
        assert w.sequence == (_rc(piece) if w.strand == "-" else piece)
        assert set(w.sequence) <= set("ACGT")
    positives = [w for w in task.windows if w.label == 1]
    negatives = [w for w in task.windows if w.label == 0]
    assert {w.strand for w in positives} == {"+", "-"} == {w.strand for w in negatives}
    assert all(w.anchor in set(annotated.tolist()) for w in positives)
    distances = [np.abs(annotated - w.anchor).min() for w in negatives]
    assert min(distances) >= 50  # decoys are not annotated sites, nor next to one
    _no_overlap(train, test)
    assert min(w.start for w in test) >= task.stats["cut"]["chr2"] == 1_866_620
    again = derived.splice_windows(EXONS, FASTA, site, 600, seed=0)
    assert again.windows == task.windows
    assert derived.splice_windows(EXONS, FASTA, site, 600, seed=1).windows != task.windows


def test_derived_splice_tasks_build(tmp_path: Path) -> None:
    source = {"format": "derived_splice", "exons": str(EXONS), "fasta": str(FASTA),
              "site": "donor"}
    manifest = build_task(TASKS["splice_sites_donors"], source, tmp_path / "d")
    assert manifest["kind"] == "derived"
    assert "split by genomic position" in manifest["note"].lower()
    assert manifest["splits"]["train"]["counts"] == {"0": 206, "1": 206}
    assert manifest["splits"]["test"]["counts"] == {"0": 32, "1": 32}
    manifest = build_task(TASKS["splice_sites_acceptors"], {**source, "site": "acceptor"},
                          tmp_path / "a")
    assert manifest["splits"]["train"]["counts"] == {"0": 187, "1": 187}
    assert manifest["splits"]["test"]["counts"] == {"0": 33, "1": 33}
    manifest = build_task(TASKS["splice_sites_all"], {**source, "site": "all"}, tmp_path / "all")
    assert manifest["details"]["window"] == 400  # the task length, like NT splice_sites_all
    assert manifest["splits"]["train"]["counts"] == {"0": 196, "1": 206, "2": 187}
    assert manifest["splits"]["test"]["counts"] == {"0": 32, "1": 32, "2": 33}
    split = read_split(tmp_path / "all" / "train.csv", TASKS["splice_sites_all"])
    for seq, label in zip(split.sequences, split.labels, strict=True):
        if label == 1:
            assert seq[200:202] == "GT"
        elif label == 2:
            assert seq[198:200] == "AG"


def test_derived_promoter(tmp_path: Path, genome: str) -> None:
    task = derived.promoter_windows(FASTA, exons=EXONS, transcripts=CANONICAL, seed=0)
    train, test = task.split("train"), task.split("test")
    _no_overlap(train, test)
    positives = [w for w in task.windows if w.label == 1]
    negatives = [w for w in task.windows if w.label == 0]
    assert len(positives) == len(negatives)
    tss = [t.position for t in derived.exon_table_tss(EXONS)]
    tss += [t.position for t in derived.read_canonical_transcripts(CANONICAL)]
    tss_arr = np.array(tss)
    for w in task.windows:
        assert len(w.sequence) == 300
        piece = genome[w.start : w.end]
        assert w.sequence == (_rc(piece) if w.strand == "-" else piece)
    for w in positives:  # TSS at index 249 on the transcript strand
        assert w.start + 249 == w.anchor if w.strand == "+" else w.end - 250 == w.anchor
    for w in negatives:  # clear of every TSS +- 1 kb
        assert np.all((tss_arr < w.start - 1000) | (tss_arr >= w.end + 1000))
    # the canonical ACP1 (+, TSS 264868) and SNTG2 (+, 950867) promoters are positives
    assert {264868, 950867} <= {w.anchor for w in positives}
    manifest = build_task(TASKS["promoter_all"],
                          {"format": "derived_promoter", "fasta": str(FASTA),
                           "exons": str(EXONS), "transcripts": str(CANONICAL)}, tmp_path)
    assert manifest["splits"]["train"]["counts"] == {"0": 119, "1": 119}
    assert manifest["splits"]["test"]["counts"] == {"0": 30, "1": 30}
    assert json.loads((tmp_path / "task.json").read_text())["details"]["tss_after_merging"] == 149


def test_every_declared_format_has_a_reader_and_no_reader_is_undeclared() -> None:
    from ldarnet.tasks.formats import DOWNLOADABLE, FORMATS, KINDS
    from ldarnet.tasks.sources import LOADERS

    assert set(LOADERS) == set(FORMATS)
    assert all(f.default_kind in KINDS for f in FORMATS.values())
    assert set(DOWNLOADABLE) == {"parquet", "gb_archive"}  # what remote.yaml suites may use
