"""``ldarnet segment``: checkpoint loading, global-grid tiling, output files, errors, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.analysis.segment import (
    BedGraphWriter,
    SegmentError,
    grid_tiles,
    quantize,
    segment_regions,
    segment_tokens,
)
from ldarnet.cli import main
from ldarnet.data.bed import BedError
from ldarnet.data.fasta import FastaError, read_fasta
from ldarnet.data.genome import prepare_genome
from ldarnet.data.tokenizer import encode
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained
from ldarnet.model.weights import save_model_file
from ldarnet.train.checkpoint import CheckpointError

SLICE = ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"
TILE, MARGIN = 512, 64  # stride 384: small tiles keep the tests fast
STRIDE = TILE - 2 * MARGIN


@pytest.fixture(scope="module")
def model() -> LDARNet:
    torch.manual_seed(0)
    return LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml")).eval()


@pytest.fixture(scope="module")
def run_dir(model: LDARNet, tmp_path_factory) -> Path:
    """A run directory as ``ldarnet pretrain`` leaves it: weights + config.json."""
    out = tmp_path_factory.mktemp("run")
    save_model_file(model, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps({"model_config": model.config.to_dict()}))
    return out


@pytest.fixture(scope="module")
def chr2() -> str:
    return read_fasta(SLICE)["chr2"]  # 2.3 Mb; its first 10 kb are N (telomere)


def direct(model: LDARNet, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p and b of one plain forward pass (the reference)."""
    with torch.no_grad():
        router = model(torch.from_numpy(ids.astype(np.int64))[None]).router_outputs[0]
    return router.boundary_prob[0].numpy(), router.boundary_mask[0].numpy()


def write_fasta(path: Path, records: dict[str, str]) -> Path:
    lines = []
    for name, seq in records.items():
        lines.append(f">{name}")
        lines += [seq[i : i + 60] for i in range(0, len(seq), 60)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_bedgraph(path: Path) -> dict[str, dict[int, float]]:
    """Per-base values of a bedGraph, checking that intervals neither overlap nor are empty."""
    values: dict[str, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        contig, start, end, value = line.split("\t")
        assert int(start) < int(end) and len(value.split(".")[1]) == 4
        per_base = values.setdefault(contig, {})
        for x in range(int(start), int(end)):
            assert x not in per_base
            per_base[x] = float(value)
    return values


# ----------------------------------------------------------------------------- loading
def test_load_pretrained_round_trip(model: LDARNet, run_dir: Path) -> None:
    ids = torch.randint(0, 5, (2, 300))
    with torch.no_grad():
        expected = model(ids).logits
        for path in (run_dir, run_dir / "model.safetensors"):
            loaded = load_pretrained(path)
            assert not loaded.training
            assert loaded.config == model.config
            assert torch.equal(loaded(ids).logits, expected)


def test_load_pretrained_errors(run_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes((run_dir / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"no config\.json beside it"):
        load_pretrained(weights)
    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(CheckpointError, match="no 'model_config'"):
        load_pretrained(tmp_path)
    other = load_model_config(MODELS / "ldarnet-2m.yaml").to_dict()
    (tmp_path / "config.json").write_text(json.dumps({"model_config": other}))
    with pytest.raises(CheckpointError, match=r"do not fit this architecture|another architect"):
        load_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"has no model\.safetensors"):
        load_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "missing.safetensors")


# ----------------------------------------------------------------------------- tiling
def test_grid_tiles_partition_the_sequence() -> None:
    # stride 6, sequence = genome [5, 25): grid tiles 0 and 1 merge (window [5, 14) fits in
    # 10 bases), tile 2 = genome [10, 20) is a whole grid tile, 3 and 4 merge into [16, 25)
    tiles = list(grid_tiles(20, offset=5, tile=10, margin=2))
    assert [(t.start, t.end, t.core_start, t.core_end) for t in tiles] == [
        (0, 9, 0, 7), (5, 15, 7, 13), (11, 20, 13, 20),
    ]
    for offset in range(0, 40, 3):
        for length in (1, 9, 10, 11, 17, 50, 101):
            tiles = list(grid_tiles(length, offset, tile=10, margin=2))
            assert tiles[0].core_start == 0 and tiles[-1].core_end == length
            for t, u in itertools.pairwise(tiles):
                assert t.core_end == u.core_start
            for t in tiles:  # every decided base has `margin` context or is near an end
                assert t.end - t.start <= 10
                assert t.core_start - t.start >= 2 or t.start == 0
                assert t.end - t.core_end >= 2 or t.end == length
            assert (len(tiles) == 1) == (length <= 10)
    assert list(grid_tiles(0, 0, 10, 2)) == []
    with pytest.raises(SegmentError, match="larger than 2"):
        list(grid_tiles(10, 0, tile=8, margin=4))


def test_sequence_up_to_one_tile_equals_direct_forward(model: LDARNet, chr2: str) -> None:
    ids = encode(chr2[20_000 : 20_000 + TILE])
    for offset, n in ((0, TILE), (0, 100), (777, TILE), (STRIDE - MARGIN, TILE)):
        p, b = segment_tokens(model, ids[:n], TILE, MARGIN, offset=offset)
        ref_p, ref_b = direct(model, ids[:n])
        assert np.array_equal(p, ref_p) and np.array_equal(b, ref_b)
        assert p[0] == 1.0 and b[0]
    # a longer sequence is tiled: it no longer equals one forward pass over everything
    long_ids = encode(chr2[20_000 : 21_500])
    p, _ = segment_tokens(model, long_ids, TILE, MARGIN)
    ref_p, _ = direct(model, long_ids)
    assert not np.array_equal(p, ref_p)
    assert np.abs(p - ref_p).max() < 0.5


def test_tiling_invariance_on_overlapping_regions(model: LDARNet, chr2: str) -> None:
    a_start, a_end, b_start, b_end = 20_000, 24_000, 21_500, 26_000
    pa, ba = segment_tokens(model, encode(chr2[a_start:a_end]), TILE, MARGIN, offset=a_start)
    pb, bb = segment_tokens(model, encode(chr2[b_start:b_end]), TILE, MARGIN, batch_size=5,
                            offset=b_start)
    # bases whose deciding grid tile (window [k·s - m, (k+1)·s + m)) lies inside both regions
    x = np.arange(b_start, a_end)
    k = x // STRIDE
    full = (k * STRIDE - MARGIN >= b_start) & ((k + 1) * STRIDE + MARGIN <= a_end)
    assert full.sum() > 1500
    in_a, in_b = x[full] - a_start, x[full] - b_start
    assert np.array_equal(pa[in_a], pb[in_b]) and np.array_equal(ba[in_a], bb[in_b])
    # a grid anchored on the region start instead would give other values there
    shifted, _ = segment_tokens(model, encode(chr2[b_start:b_end]), TILE, MARGIN, offset=0)
    assert not np.array_equal(shifted[in_b], pb[in_b])
    # the same holds from the contig start, where the first grid tile is clipped at 0
    p0, _ = segment_tokens(model, encode(chr2[:3000]), TILE, MARGIN)
    p1, _ = segment_tokens(model, encode(chr2[:2000]), TILE, MARGIN)
    assert np.array_equal(p0[: 4 * STRIDE], p1[: 4 * STRIDE])


def test_batch_size_does_not_change_results(model: LDARNet, chr2: str) -> None:
    ids = encode(chr2[30_000:33_000])
    p1, b1 = segment_tokens(model, ids, TILE, MARGIN, batch_size=1, offset=123)
    for batch_size in (3, 8):
        p, b = segment_tokens(model, ids, TILE, MARGIN, batch_size=batch_size, offset=123)
        assert np.array_equal(p, p1) and np.array_equal(b, b1)
    assert p1.min() > 0.0 and p1.max() <= 1.0 and p1.dtype == np.float32


def test_bad_ids_are_refused(model: LDARNet) -> None:
    with pytest.raises(SegmentError, match=r"ids\[2\] = 6"):
        segment_tokens(model, np.array([0, 1, 6, 2], dtype=np.uint8))
    with pytest.raises(SegmentError, match="1-D"):
        segment_tokens(model, np.zeros((2, 3), dtype=np.uint8))


# ----------------------------------------------------------------------------- outputs
def test_bedgraph_writer_merges_runs(tmp_path: Path) -> None:
    path = tmp_path / "x.bedGraph"
    with open(path, "w") as fh:
        writer = BedGraphWriter(fh)
        writer.add("c", 0, np.array([1, 1, 2]))
        writer.add("c", 3, np.array([2, 2, 10_000]))  # continues the run of 2 across calls
        writer.flush()
        writer.add("c", 10, np.array([0]))
        writer.flush()
    assert path.read_text() == ("c\t0\t2\t0.0001\nc\t2\t5\t0.0002\nc\t5\t6\t1.0000\n"
                                "c\t10\t11\t0.0000\n")
    assert quantize(np.array([0.12344, 0.12346, 1.0], dtype=np.float32)).tolist() == [
        1234, 1235, 10_000]


def test_segment_regions_files_round_trip(model: LDARNet, chr2: str, tmp_path: Path) -> None:
    records = {"seqA": chr2[40_000:41_700], "seqB": chr2[50_000:50_900]}
    fasta = write_fasta(tmp_path / "small.fa", records)
    bed = tmp_path / "regions.bed"
    bed.write_text("# comment\nseqA\t100\t1300\tfirst\n\nseqB\t0\t900\nseqA\t1300\t1650\n")
    graph, hard = tmp_path / "out" / "p.bedGraph", tmp_path / "out" / "b.bed"
    summary = segment_regions(model, fasta, bed, graph, hard, tile=TILE, margin=MARGIN)
    values = read_bedgraph(graph)
    positions = [(c, int(s)) for c, s, e in (ln.split("\t") for ln in
                                             hard.read_text().splitlines())]
    expected_positions = []
    for contig, start, end in (("seqA", 100, 1300), ("seqB", 0, 900), ("seqA", 1300, 1650)):
        p, b = segment_tokens(model, encode(records[contig][start:end]), TILE, MARGIN,
                              offset=start)
        written = np.array([values[contig][x] for x in range(start, end)])
        assert np.array_equal(written, quantize(p) / 1e4)
        expected_positions += [(contig, start + int(i)) for i in np.flatnonzero(b)]
    assert positions == expected_positions
    assert summary["bases"] == 2450 and summary["boundaries"] == len(positions)
    assert len(values["seqA"]) == 1550 and len(values["seqB"]) == 900

    # default regions = every record whole; a prepared (indexed) genome gives the same files
    prepared = tmp_path / "genome.fa"
    prepare_genome(fasta, prepared)
    for source, name in ((fasta, "plain"), (prepared, "indexed")):
        segment_regions(model, source, None, tmp_path / f"{name}.bedGraph",
                        tmp_path / f"{name}.bed", tile=TILE, margin=MARGIN)
    assert (tmp_path / "plain.bedGraph").read_text() == (tmp_path / "indexed.bedGraph").read_text()
    assert (tmp_path / "plain.bed").read_text() == (tmp_path / "indexed.bed").read_text()
    whole = read_bedgraph(tmp_path / "plain.bedGraph")
    assert {c: len(v) for c, v in whole.items()} == {"seqA": 1700, "seqB": 900}
    p, _ = segment_tokens(model, encode(records["seqB"]), TILE, MARGIN)
    assert np.array_equal([whole["seqB"][x] for x in range(900)], quantize(p) / 1e4)


@pytest.mark.parametrize(("bed_text", "message"), [
    ("chrX\t0\t100\n", r"regions\.bed:1: contig 'chrX' is not in .*known contigs: seqA, seqB"),
    ("seqA\t0\t100\nseqB\t800\t1000\n", r"regions\.bed:2: interval seqB:800-1000 ends beyond"),
    ("seqA\t50\t50\n", r"regions\.bed:1: start 50 >= end 50"),
    ("seqA\t0\n", r"regions\.bed:1: expected 3 tab-separated columns 'chrom start end'"),
    ("seqA\tzero\t10\n", r"regions\.bed:1: start and end must be non-negative integers"),
    ("#only a comment\n", r"regions\.bed has no intervals"),
    ("seqA\t0\t100\nseqA\t50\t150\n", r"regions\.bed:2: .*overlaps line 1"),
])
def test_bad_regions_are_one_clear_error(model: LDARNet, tmp_path: Path, bed_text: str,
                                         message: str) -> None:
    fasta = write_fasta(tmp_path / "small.fa", {"seqA": "ACGT" * 100, "seqB": "GATTACA" * 120})
    bed = tmp_path / "regions.bed"
    bed.write_text(bed_text)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises((SegmentError, BedError), match=message):
        segment_regions(model, fasta, bed, out / "p.bedGraph", out / "b.bed")
    assert list(out.iterdir()) == []


def test_empty_fasta_and_failures_leave_no_output(model: LDARNet, tmp_path: Path) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FastaError, match=r"empty\.fa: no FASTA records found"):
        segment_regions(model, empty, None, out / "p.bedGraph", out / "b.bed")
    fasta = write_fasta(tmp_path / "small.fa", {"seqA": "ACGT" * 300})
    with pytest.raises(SegmentError, match="larger than 2"):
        segment_regions(model, fasta, None, out / "p.bedGraph", out / "b.bed", tile=8, margin=4)
    # an error inside the computation removes the half-written temporaries and leaves an
    # existing output untouched
    (out / "p.bedGraph").write_text("previous result\n")
    broken = LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml"))
    broken.hierarchy.encoder = None  # fails inside the first model call
    with pytest.raises(TypeError):
        segment_regions(broken, fasta, None, out / "p.bedGraph", out / "b.bed")
    assert sorted(p.name for p in out.iterdir()) == ["p.bedGraph"]
    assert (out / "p.bedGraph").read_text() == "previous result\n"


# ----------------------------------------------------------------------------- CLI
def test_cli_end_to_end(run_dir: Path, model: LDARNet, chr2: str, tmp_path: Path,
                        capsys) -> None:
    bed = tmp_path / "regions.bed"
    bed.write_text("chr2\t60000\t61000\tdemo\n")
    graph, hard = tmp_path / "p.bedGraph", tmp_path / "b.bed"
    args = ["segment", "--model", str(run_dir), "--fasta", str(SLICE), "--regions", str(bed),
            "--bedgraph", str(graph), "--bed", str(hard), "--tile", str(TILE),
            "--margin", str(MARGIN), "--batch-size", "2", "--device", "cpu"]
    assert main(args) == 0
    assert "1,000 bp" in capsys.readouterr().out
    p, b = segment_tokens(model, encode(chr2[60_000:61_000]), TILE, MARGIN, offset=60_000)
    values = read_bedgraph(graph)["chr2"]
    assert np.array_equal([values[x] for x in range(60_000, 61_000)], quantize(p) / 1e4)
    assert len(hard.read_text().splitlines()) == int(b.sum())

    bed.write_text("chr2\t60000\t61000\nchr1\t0\t10\n")
    graph.unlink()
    hard.unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ldarnet segment: error:" in err and "regions.bed:2" in err and "chr2" in err
    assert "Traceback" not in err and not graph.exists() and not hard.exists()
    assert main([*args[:-1], "cpu", "--tile", "100", "--margin", "50"]) == 2
    assert "tile=100 must be larger than 2*margin=100" in capsys.readouterr().err
    assert main(["segment", "--model", str(tmp_path / "nope"), "--fasta", str(SLICE),
                 "--bedgraph", str(graph), "--bed", str(hard)]) == 2
    assert "does not exist" in capsys.readouterr().err
