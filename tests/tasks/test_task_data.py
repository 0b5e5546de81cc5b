"""Canonical task files: reading (every row checked), writing, manifests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from ldarnet.tasks.registry import TaskSpec, load_registry
from ldarnet.tasks.task_data import (
    TaskDataError,
    check_row,
    read_manifest,
    read_split,
    write_split,
)
from ldarnet.tasks.task_split import TaskSplit

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "resources" / "demo" / "benchmarks" / "nt-proxy"
TASKS = load_registry(ROOT / "config" / "tasks.tsv")
SPEC4 = TaskSpec("toy", "nt", "histone", "toy", 4, ("0", "1"), "d", "c")
VAR3 = TaskSpec("toy3", "gb", "genomic_benchmarks", "toy3", None, ("a", "b", "c"), "d", "c")


def test_shipped_proxy_files_read_with_documented_counts() -> None:
    h3 = read_split(PROXY / "histone" / "H3" / "dev.csv.gz", TASKS["H3"])
    assert len(h3) == 1497
    assert np.bincount(h3.labels).tolist() == [735, 762]
    assert {len(s) for s in h3.sequences} == {500}
    assert h3.labels.dtype == np.int64
    tata = read_split(PROXY / "promoters" / "prom_300_tata" / "train.csv.gz",
                      TASKS["promoter_tata"])
    assert len(tata) == 4904 and np.bincount(tata.labels).tolist() == [2460, 2444]
    splice = read_split(PROXY / "splice_gue" / "test.csv.gz", TASKS["splice_sites_all"])
    assert len(splice) == 4562 and sorted(set(splice.labels.tolist())) == [0, 1, 2]


def test_round_trip_upper_cases_and_keeps_order(tmp_path: Path) -> None:
    split = TaskSplit(["ACGT", "NNRY", "ttgg"], np.array([1, 0, 1]))
    path = write_split(tmp_path / "sub" / "train.csv", split)
    assert path.read_text() == "sequence,label\nACGT,1\nNNRY,0\nttgg,1\n"
    assert [p.name for p in path.parent.iterdir()] == ["train.csv"]  # no temporary left
    back = read_split(path, SPEC4)
    assert back.sequences == ["ACGT", "NNRY", "TTGG"]
    assert back.labels.tolist() == [1, 0, 1]


def test_gzip_extra_columns_and_variable_length(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"id,label,sequence\nx,2,ACGTACGT\ny,0,A\n"))
    split = read_split(path, VAR3)
    assert split.sequences == ["ACGTACGT", "A"] and split.labels.tolist() == [2, 0]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("sequence,lbl\nACGT,1\n", 1, r"missing column\(s\) \['label'\]"),
        ("sequence,label\nACGT,1\nACGT,5\n", 3, "label 5 is outside 0..1"),
        ("sequence,label\nACGT,1\nACGT,-1\n", 3, "label -1 is outside"),
        ("sequence,label\nACGT,yes\n", 2, "label 'yes' is not an integer"),
        ("sequence,label\nACGT,1.5\n", 2, "label '1.5' is not an integer"),
        ("sequence,label\nACGT,0\nACG,1\n", 3, "sequence of 3 bp, but task toy has fixed "
                                               "length 4"),
        ("sequence,label\nACGT,0\nACXT,1\n", 3, "character 'X' at position 3"),
        ("sequence,label\nAC-T,0\n", 2, "character '-' at position 3"),
        ("sequence,label\nACGT,0\n,1\n", 3, "empty sequence"),
        ("sequence,label\nACGT\n", 2, "1 field"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, text: str, line: int,
                                     message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TaskDataError, match=message) as err:
        read_split(path, SPEC4)
    assert f"{path}:{line}:" in str(err.value)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("sequence,label\n")
    with pytest.raises(TaskDataError, match="no rows") as err:
        read_split(empty, SPEC4)
    assert str(empty) in str(err.value)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(TaskDataError, match=f"{blank}:1: empty file"):
        read_split(blank, SPEC4)
    with pytest.raises(TaskDataError, match=r"missing\.csv: file does not exist"):
        read_split(tmp_path / "missing.csv", SPEC4)


def test_check_row_accepts_numbers_and_iupac() -> None:
    assert check_row("acgtnrykmswbdhv", np.int64(2), VAR3, "x") == ("ACGTNRYKMSWBDHV", 2)
    assert check_row(" ACGT ", 1.0, SPEC4, "x") == ("ACGT", 1)
    with pytest.raises(TaskDataError, match=r"^here: label True"):
        check_row("ACGT", True, SPEC4, "here")


def test_read_manifest(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"task\.json: manifest does not exist"):
        read_manifest(tmp_path)
    (tmp_path / "task.json").write_text("{not json")
    with pytest.raises(TaskDataError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "task.json").write_text(json.dumps({"task": "x"}))
    with pytest.raises(TaskDataError, match="manifest lacks"):
        read_manifest(tmp_path)
    full = {"task": "x", "suite": "nt", "group": "histone", "classes": ["0", "1"],
            "format": "csv", "kind": "proxy", "splits": {}}
    (tmp_path / "task.json").write_text(json.dumps(full))
    assert read_manifest(tmp_path) == full
