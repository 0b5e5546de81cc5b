"""Splits and tiling: window counts and token ids recomputed independently, error paths, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from ldarnet.cli import main
from ldarnet.data import tiling
from ldarnet.data.bed import BedError
from ldarnet.data.fasta import read_fasta
from ldarnet.data.genome import prepare_genome
from ldarnet.data.splits import SplitError, bed_split, chromosome_split
from ldarnet.data.tiling import TilingError, tile_genome
from ldarnet.data.tokenizer import PAD, encode
from ldarnet.foundation.checksum import file_md5

DEMO = ROOT / "resources/demo/hg38"
SLICE = DEMO / "chr2_1-2333275.fa.gz"
DEMO_BED = DEMO / "splits.bed"
WINDOW = 1024


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("genome") / "hg38_slice.fa"
    prepare_genome(SLICE, out)
    return out


@pytest.fixture(scope="module")
def slice_seq() -> str:
    return read_fasta(SLICE)["chr2"]


def _expected_windows(seq: str, intervals: list[tuple[str, int, int]], window: int):
    """Plain-Python reference: kept windows (upper-cased strings) and the N-dropped count."""
    kept, dropped = [], 0
    for _, start, end in intervals:
        for s in range(start, end - window + 1, window):
            text = seq[s : s + window].upper()
            if any(base not in "ACGT" for base in text):
                dropped += 1
            else:
                kept.append(text)
    return kept, dropped


def test_demo_bed_split() -> None:
    splits = bed_split(DEMO_BED, {"chr2": 2_333_275})
    assert splits == {"train": [("chr2", 0, 1_900_000)], "valid": [("chr2", 1_900_000, 2_100_000)],
                      "test": [("chr2", 2_100_000, 2_333_275)]}


def test_tiling_the_demo_slice_matches_a_plain_python_reference(genome, slice_seq,
                                                                 tmp_path) -> None:
    splits = bed_split(DEMO_BED, {"chr2": len(slice_seq)})
    manifest = tile_genome(genome, splits, WINDOW, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json", "test.npy", "train.npy", "valid.npy"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["window"] == WINDOW and manifest["source_fasta_md5"] == file_md5(genome)
    assert manifest["vocab"]["N"] == 4 and manifest["multispecies"] is None
    lowercase_windows = 0
    for split, intervals in splits.items():
        kept, dropped = _expected_windows(slice_seq, intervals, WINDOW)
        shard = np.load(tmp_path / f"{split}.npy", mmap_mode="r", allow_pickle=False)
        assert isinstance(shard, np.memmap) and shard.dtype == np.uint8
        assert shard.shape == (len(kept), WINDOW)
        assert int(shard.max()) <= 3  # no N (id 4) inside any window
        assert np.array_equal(shard, np.stack([encode(w) for w in kept]))
        info = manifest["splits"][split]
        assert info["windows"] == len(kept) and info["bases"] == len(kept) * WINDOW
        assert info["dropped_windows_with_N"] == dropped
        (_, start, end), = intervals
        assert info["windows"] + dropped == (end - start) // WINDOW
        assert info["remainder_bases_dropped"] == (end - start) % WINDOW
        assert info["contigs"] == ["chr2"] and info["intervals"] == 1
        lowercase_windows += sum(
            any(c.islower() for c in slice_seq[s : s + WINDOW])
            for s in range(start, end - WINDOW + 1, WINDOW)
        )
    # the first 10,000 bp of the slice are N: ceil(10000 / 1024) = 10 train windows dropped
    assert manifest["splits"]["train"]["dropped_windows_with_N"] == 10
    assert lowercase_windows > 1000  # soft-masked sequence really was upper-cased, not dropped


def test_chromosome_split_on_a_small_genome(tmp_path) -> None:
    records = {
        "chr1": "ACGT" * 10 + "N" + "ACGT" * 6,  # 65 bp: windows 0-7, 8-15, ... one with N
        "chr2": "acgtACGTacgtACGTacgtA",  # 21 bp: 2 windows, lowercase
        "chr3": "GGGG",  # shorter than a window
        "chrV": "TTTTCCCCAAAAGGGG",
        "chrT": "CCCCCCCCNAAAAAAAAAAAAAAA",
    }
    src = tmp_path / "small.fa"
    src.write_text("".join(f">{k}\n{v}\n" for k, v in records.items()))
    genome = tmp_path / "small_prepared.fa"
    lengths = prepare_genome(src, genome)["lengths"]
    splits = chromosome_split(lengths, valid=["chrV"], test=["chrT"])
    assert splits["train"] == [("chr1", 0, 65), ("chr2", 0, 21), ("chr3", 0, 4)]
    manifest = tile_genome(genome, splits, 8, tmp_path / "shards")
    for split, intervals in splits.items():
        seq_of = {c: records[c] for c, _, _ in intervals}
        kept = []
        for contig, start, end in intervals:
            part, _ = _expected_windows(seq_of[contig], [(contig, start, end)], 8)
            kept += part
        shard = np.load(tmp_path / "shards" / f"{split}.npy", allow_pickle=False)
        assert shard.shape == (len(kept), 8)
        assert ["".join("ACGT"[i] for i in row) for row in shard] == kept
    train = manifest["splits"]["train"]
    assert train["windows"] == 9 and train["dropped_windows_with_N"] == 1
    assert train["intervals_shorter_than_window"] == 1
    test = manifest["splits"]["test"]  # CCCCCCCC | NAAAAAAA (dropped) | AAAAAAAA
    assert test["windows"] == 2 and test["dropped_windows_with_N"] == 1
    assert chromosome_split(lengths, ["chrV"], ["chrT"], contigs=["chr2"])["train"] == [
        ("chr2", 0, 21)]


def test_split_errors(tmp_path) -> None:
    lengths = {"chr1": 1000, "chr2": 500}
    with pytest.raises(SplitError, match="validation contigs not in the genome: chr20; the "
                                         "genome has chr1, chr2"):
        chromosome_split(lengths, ["chr20"], ["chr2"])
    with pytest.raises(SplitError, match="both the validation and the test split: chr2"):
        chromosome_split(lengths, ["chr2"], ["chr2"])
    with pytest.raises(SplitError, match="no training contig"):
        chromosome_split(lengths, ["chr1"], ["chr2"])
    cases = {
        "columns": ("chr1\t0\t100\n", r"columns.bed:2: expected 4 tab-separated columns"),
        "spaces": ("chr1 0 100 train\n", r"spaces.bed:2: .*separated by tabs"),
        "number": ("chr1\tzero\t100\ttrain\n", r"number.bed:2: start and end must be non-neg"),
        "reversed": ("chr1\t100\t10\ttrain\n", r"reversed.bed:2: start 100 >= end 10"),
        "label": ("chr1\t0\t100\ttraining\n", r"label.bed:2: unknown split label 'training'"),
        "contig": ("chrX\t0\t100\ttrain\n", r"contig.bed:2: contig 'chrX' is not in the genome"),
        "beyond": ("chr2\t0\t501\ttest\n", r"beyond.bed:2: .*ends beyond the contig"),
        "overlap": ("chr1\t0\t100\ttrain\nchr1\t300\t400\tvalid\nchr1\t99\t200\ttest\n",
                    r"overlap.bed:2: train interval chr1:0-100 overlaps the test interval "
                    r"chr1:99-200 of line 4"),
        "empty": ("", r"empty.bed: no intervals"),
    }
    for name, (body, message) in cases.items():
        path = tmp_path / f"{name}.bed"
        path.write_text("# chrom\tstart\tend\tsplit\n" + body)
        with pytest.raises((SplitError, BedError), match=message):
            bed_split(path, lengths)


def test_bed_intervals_of_one_split_are_merged(tmp_path) -> None:
    path = tmp_path / "m.bed"
    path.write_text("chr2\t50\t80\ttrain\nchr1\t0\t10\ttrain\nchr1\t5\t20\ttrain\n"
                    "chr1\t20\t30\ttrain\nchr1\t40\t60\tvalid\n")
    splits = bed_split(path, {"chr1": 100, "chr2": 100})
    assert splits == {"train": [("chr1", 0, 30), ("chr2", 50, 80)],
                      "valid": [("chr1", 40, 60)], "test": []}


def test_multispecies_shard(genome, tmp_path) -> None:
    window = 64
    long_lower = "acgt" * 40  # 160 bp, lowercase: truncated to 64 and upper-cased
    short = "GATTACA"  # padded
    n_run = "ACGT" * 2 + "N" * 50 + "ACGT"  # dropped: 50 consecutive N within the window
    late_n = "ACGT" * 16 + "N" * 60  # the N run lies after the truncation point: kept
    n49 = "A" * 10 + "n" * 49 + "C"  # 49 N: kept
    soft_n = "A" * 5 + "n" * 50  # lowercase run: an N run only once upper-cased -> dropped
    src = tmp_path / "multi.fa"
    src.write_text(f">s1\n{long_lower}\n>s2\n{short}\n>s3\n{n_run}\n>s4\n{late_n}\n"
                   f">s5\n{n49}\n>s6\n{soft_n}\n")
    splits = bed_split(DEMO_BED, {"chr2": 2_333_275})
    manifest = tile_genome(genome, splits, window, tmp_path / "out", multispecies=src)
    multi = np.load(tmp_path / "out" / "train_multispecies.npy", allow_pickle=False)
    assert multi.shape == (4, window) and multi.dtype == np.uint8
    assert np.array_equal(multi[0], encode(long_lower[:window].upper()))
    assert multi[0].max() <= 3  # upper-cased, not mapped to N as in the release
    assert np.array_equal(multi[1, :7], encode(short)) and set(multi[1, 7:].tolist()) == {PAD}
    assert np.array_equal(multi[2], encode(late_n[:window]))
    assert np.array_equal(multi[3, :60], encode(n49.upper())) and (multi[3, 60:] == PAD).all()
    info = manifest["multispecies"]
    assert info == {"file": "train_multispecies.npy", "records": 6, "windows": 4,
                    "truncated": 2, "padded": 2, "dropped_with_N_run": 2, "dropped_empty": 0,
                    "source": "multi.fa", "source_md5": file_md5(src), "n_run_threshold": 50}


def test_tiling_errors_leave_nothing_behind(genome, tmp_path) -> None:
    splits = bed_split(DEMO_BED, {"chr2": 2_333_275})
    out = tmp_path / "too_large"
    with pytest.raises(TilingError, match="no training window: window 4000000 is too large"):
        tile_genome(genome, splits, 4_000_000, out)
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(TilingError, match="outside the contig"):
        tile_genome(genome, {"train": [("chr2", 0, 3_000_000)]}, 1024, existing)
    bad_multi = tmp_path / "bad_multi.fa"
    bad_multi.write_text("ACGT\n")
    with pytest.raises(TilingError, match="sequence before the first '>' header"):
        tile_genome(genome, splits, 1024, existing, multispecies=bad_multi)
    assert list(existing.iterdir()) == []


def test_cli_tile(genome, tmp_path, capsys) -> None:
    out = tmp_path / "bed"
    assert main(["tile", "--fasta", str(genome), "--window", "4096", "--out-dir", str(out),
                 "--split-method", "bed", "--split-bed", str(DEMO_BED)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["windows"] == 1_900_000 // 4096 - 3  # 3 touch the Ns
    assert "train 460" in capsys.readouterr().out
    assert main(["tile", "--fasta", str(genome), "--window", "4096", "--out-dir",
                 str(tmp_path / "chrom"), "--split-method", "chromosomes",
                 "--valid-contigs", "chr2", "--test-contigs", "chr21"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors == ["ldarnet tile: error: test contigs not in the genome: chr21; the genome "
                      "has chr2"]
    assert main(["tile", "--fasta", str(genome), "--out-dir", str(tmp_path / "x"),
                 "--split-bed", str(DEMO_BED)]) == 2
    assert "--split-bed needs --split-method bed" in capsys.readouterr().err
    assert main(["tile", "--fasta", str(genome), "--out-dir", str(tmp_path / "x"),
                 "--split-method", "bed"]) == 2
    assert "needs --split-bed FILE" in capsys.readouterr().err
    assert main(["tile", "--fasta", str(tmp_path / "missing.fa"), "--out-dir",
                 str(tmp_path / "x")]) == 2
    assert "missing.fa does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "chrom").exists()


def test_shrink_falls_back_to_a_copy(genome, tmp_path, monkeypatch) -> None:
    """If numpy's header ever had no room for an in-place shape edit, rows are copied."""
    splits = {"train": [("chr2", 0, 200_000)]}
    fast = tile_genome(genome, splits, 1024, tmp_path / "fast")
    monkeypatch.setattr(tiling, "_header", lambda rows, window: b"too short")
    slow = tile_genome(genome, splits, 1024, tmp_path / "slow")
    assert fast["splits"] == slow["splits"] and fast["splits"]["train"]["windows"] == 185
    a = np.load(tmp_path / "fast" / "train.npy", allow_pickle=False)
    b = np.load(tmp_path / "slow" / "train.npy", allow_pickle=False)
    assert np.array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "slow").iterdir()) == [
        "manifest.json", "test.npy", "train.npy", "valid.npy"]
