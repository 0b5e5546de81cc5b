"""The task registry (config/tasks.tsv) and its loader."""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import pytest

from ldarnet.tasks.registry import (
    GROUPS,
    RegistryError,
    TaskSpec,
    get_task,
    load_registry,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "tasks.tsv"
NT_TASKS = ["H3", "H4", "H3K9ac", "H3K14ac", "H4ac", "H3K4me1", "H3K4me2", "H3K4me3",
            "H3K36me3", "H3K79me3", "promoter_all", "promoter_no_tata", "promoter_tata",
            "enhancers", "enhancers_types", "splice_sites_all", "splice_sites_acceptors",
            "splice_sites_donors"]
GB_TASKS = ["demo_coding_vs_intergenomic_seqs", "demo_human_or_worm",
            "drosophila_enhancers_stark", "dummy_mouse_enhancers_ensembl",
            "human_enhancers_cohn", "human_enhancers_ensembl", "human_ensembl_regulatory",
            "human_nontata_promoters", "human_ocr_ensembl"]
HEADER = "task\tsuite\tgroup\tlabel\tlength\tclasses\thub_dataset\thub_config\n"
GOOD_ROW = "H3\tnt\thistone\tH3\t500\t0;1\tInstaDeepAI/x\tH3\n"


def _intervals_root() -> Path | None:
    """The official Genomic Benchmarks interval files, where this checkout can see them."""
    candidates = [os.environ.get("LDARNET_GB_INTERVALS", ""),
                  str(ROOT / "resources" / "demo" / "benchmarks" / "genomic_benchmarks"
                      / "intervals")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "human_nontata_promoters").is_dir():
            return Path(candidate)
    return None


def test_shipped_registry_has_the_27_tasks() -> None:
    tasks = load_registry(REGISTRY)
    assert list(tasks) == NT_TASKS + GB_TASKS
    assert sum(t.suite == "nt" for t in tasks.values()) == 18
    assert sum(t.suite == "gb" for t in tasks.values()) == 9
    groups = [t.group for t in tasks.values()]
    assert groups.count("histone") == 10
    assert groups.count("promoters") == 3
    assert groups.count("enhancers") == 2
    assert groups.count("splice") == 3
    assert groups.count("genomic_benchmarks") == 9
    assert set(groups) == set(GROUPS)


def test_shipped_registry_gb_lengths() -> None:
    """Lengths and classes as read from the official interval files (commit 605d853)."""
    tasks = load_registry(REGISTRY)
    assert {n: tasks[n].length for n in GB_TASKS} == {
        "demo_coding_vs_intergenomic_seqs": 200, "demo_human_or_worm": 200,
        "drosophila_enhancers_stark": None, "dummy_mouse_enhancers_ensembl": None,
        "human_enhancers_cohn": 500, "human_enhancers_ensembl": None,
        "human_ensembl_regulatory": None, "human_nontata_promoters": 251,
        "human_ocr_ensembl": None}
    assert tasks["human_ensembl_regulatory"].classes == ("enhancer", "ocr", "promoter")
    assert tasks["demo_human_or_worm"].classes == ("human", "worm")


def test_shipped_registry_nt_facts() -> None:
    tasks = load_registry(REGISTRY)
    lengths = {name: tasks[name].length for name in NT_TASKS}
    assert {lengths[n] for n in NT_TASKS[:10]} == {500}
    assert lengths["promoter_tata"] == lengths["promoter_all"] == 300
    assert lengths["enhancers"] == lengths["enhancers_types"] == 200
    assert lengths["splice_sites_all"] == 400
    assert lengths["splice_sites_donors"] == lengths["splice_sites_acceptors"] == 600
    three = {n for n in NT_TASKS if tasks[n].num_classes == 3}
    assert three == {"enhancers_types", "splice_sites_all"}
    assert tasks["splice_sites_all"].classes == ("0", "1", "2")
    assert tasks["promoter_tata"].label == "Promoter TATA"
    assert tasks["splice_sites_donors"].label == "Splice donor"
    assert tasks["enhancers_types"].label == "Enhancer type"
    assert tasks["H3K4me3"].label == "H3K4me3"
    h3 = tasks["H3"]
    assert h3 == TaskSpec("H3", "nt", "histone", "H3", 500, ("0", "1"),
                          "InstaDeepAI/nucleotide_transformer_downstream_tasks", "H3")


def test_shipped_registry_gb_facts() -> None:
    tasks = load_registry(REGISTRY)
    reg = tasks["human_ensembl_regulatory"]
    assert reg.classes == ("enhancer", "ocr", "promoter") and reg.length is None
    assert reg.hub_dataset == "katarinagresova/Genomic_Benchmarks_human_ensembl_regulatory"
    assert reg.hub_config == "default" and reg.label == "human_ensembl_regulatory"
    assert tasks["human_nontata_promoters"].length == 251
    assert tasks["demo_human_or_worm"].classes == ("human", "worm")
    for name in GB_TASKS:
        assert list(tasks[name].classes) == sorted(tasks[name].classes)


@pytest.mark.skipif(_intervals_root() is None,
                    reason="Genomic Benchmarks interval files not available here")
def test_gb_lengths_and_classes_match_the_interval_files() -> None:
    import yaml

    root = _intervals_root()
    assert root is not None
    tasks = load_registry(REGISTRY)
    for name in GB_TASKS:
        lengths = set()
        for path in sorted((root / name).glob("*/*.csv.gz")):
            with gzip.open(path, "rt", newline="") as fh:
                lengths |= {int(r["end"]) - int(r["start"]) for r in csv.DictReader(fh)}
        expected = lengths.pop() if len(lengths) == 1 else None
        assert tasks[name].length == expected, name
        declared = yaml.safe_load((root / name / "metadata.yaml").read_text())["classes"]
        assert list(tasks[name].classes) == sorted(declared), name


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.tsv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X\tzz\thistone\tX\t500\t0;1\td\tc\n",
         "column suite: 'zz' is not allowed; choose one of nt, gb"),
        ("X\tnt\tmarks\tX\t500\t0;1\td\tc\n", "column group: 'marks' is not allowed"),
        ("X\tgb\thistone\tX\t500\t0;1\td\tc\n", "does not go with suite"),
        ("X\tnt\thistone\tX\t5.0\t0;1\td\tc\n",
         "column length: '5.0' is not valid .a positive number"),
        ("X\tnt\thistone\tX\t0\t0;1\td\tc\n", "column length: '0' is not valid"),
        ("X\tnt\thistone\tX\t500\t0\td\tc\n", "at least 2"),
        ("X\tnt\thistone\tX\t500\t0;0\td\tc\n", "repeat a name"),
        ("X\tnt\thistone\tX\t500\t0; ;1\td\tc\n",
         "column classes: '0; ;1' is not valid .at least 2 non-empty"),
        ("X-1\tnt\thistone\tX\t500\t0;1\td\tc\n", "column task: 'X-1' is not valid"),
        ("X\tnt\thistone\tX\t500\t0;1\td\t\n", "empty value"),
        (GOOD_ROW, "duplicate task 'H3'"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = _write(tmp_path, HEADER + GOOD_ROW + row)
    with pytest.raises(RegistryError, match=message) as err:
        load_registry(path)
    assert f"{path}:3:" in str(err.value)


def test_variable_length_missing_columns_and_lookup(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD_ROW + "\n"
                  + "G\tgb\tgenomic_benchmarks\tG\tvar\ta;b;c\td\tdefault\n")
    tasks = load_registry(path)
    assert tasks["G"].length is None and tasks["G"].num_classes == 3
    assert get_task(tasks, "G") is tasks["G"]
    with pytest.raises(RegistryError, match=r"unknown task 'H5'.*H3, G"):
        get_task(tasks, "H5")
    with pytest.raises(RegistryError, match=r":1: missing column\(s\) \['hub_config'\]"):
        load_registry(_write(tmp_path, HEADER.replace("\thub_config", "") + GOOD_ROW))
    with pytest.raises(RegistryError, match="does not exist"):
        load_registry(tmp_path / "nope.tsv")
    with pytest.raises(RegistryError, match="no tasks"):
        load_registry(_write(tmp_path, HEADER))
