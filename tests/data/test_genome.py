"""``prepare_genome`` / ``open_genome`` / ``fetch_tokens`` on the shipped slice and bad files."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pyfaidx
import pytest

from conftest import ROOT
from ldarnet.cli import main
from ldarnet.data.fasta import HEADER, FastaError, FastaStream, open_genome, read_fasta
from ldarnet.data.genome import GenomeError, fetch_tokens, prepare_genome
from ldarnet.data.tokenizer import encode

SLICE = ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"
SLICE_LENGTH = 2_333_275


@pytest.fixture(scope="module")
def slice_seq() -> str:
    return read_fasta(SLICE)["chr2"]


def test_prepare_shipped_bgzip_slice(tmp_path, slice_seq) -> None:
    out = tmp_path / "genome" / "hg38.fa"
    summary = prepare_genome(SLICE, out)
    assert summary["lengths"] == {"chr2": SLICE_LENGTH}
    assert summary["records"] == summary["records_in_source"] == 1
    assert summary["source_md5"] == hashlib.md5(SLICE.read_bytes()).hexdigest()
    # facts stated in resources/demo/hg38/SOURCE.md
    assert summary["soft_masked_bases"] == 831_507
    assert summary["n_bases"] == 10_000 and summary["other_non_acgt_bases"] == 0
    assert summary["crlf_normalised"] is False
    lines = out.read_text().splitlines()
    assert lines[0] == ">chr2" and {len(x) for x in lines[1:-1]} == {60}
    assert "".join(lines[1:]) == slice_seq
    # our .fai is byte-identical to the one pyfaidx builds itself from the same file
    copy = tmp_path / "copy.fa"
    shutil.copy(out, copy)
    pyfaidx.Faidx(str(copy)).close()
    assert Path(f"{out}.fai").read_text() == Path(f"{copy}.fai").read_text()
    fasta = open_genome(out)
    assert fasta.fetch("chr2", 1_000_000, 1_000_200) == slice_seq[1_000_000:1_000_200]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_plain_gzip_gives_the_same_genome(tmp_path, slice_seq) -> None:
    gz = tmp_path / "slice.fa.gz"
    gz.write_bytes(gzip.compress(f">chr2 some description\n{slice_seq}\n".encode(), 1))
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    prepare_genome(SLICE, a)
    prepare_genome(gz, b)  # one 2.3 Mb line: rewrapped at 60
    assert a.read_bytes() == b.read_bytes()


def test_fetch_tokens_uppercases_and_maps_other_letters_to_n(tmp_path, slice_seq) -> None:
    out = tmp_path / "g.fa"
    prepare_genome(SLICE, out)
    fasta = open_genome(out)
    start = next(i for i in range(10_000, SLICE_LENGTH) if slice_seq[i].islower())
    tokens = fetch_tokens(fasta, "chr2", start, start + 5000)
    assert tokens.dtype == np.uint8
    assert np.array_equal(tokens, encode(slice_seq[start : start + 5000].upper()))
    assert tokens[0] < 4  # a soft-masked base is a nucleotide, not N
    assert set(fetch_tokens(fasta, "chr2", 0, 10_000).tolist()) == {4}
    with pytest.raises(FastaError, match="outside the contig"):
        fetch_tokens(fasta, "chr2", 0, SLICE_LENGTH + 1)
    with pytest.raises(FastaError, match="'chrZ' is not in"):
        fetch_tokens(fasta, "chrZ", 0, 1)

    small = tmp_path / "iupac.fa"
    small.write_text(">r\nACGTRYKMacgtnv\n")
    prepare_genome(small, tmp_path / "iupac_out.fa")
    ids = fetch_tokens(open_genome(tmp_path / "iupac_out.fa"), "r", 0, 14)
    assert ids.tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 0, 1, 2, 3, 4, 4]


def test_crlf_is_normalised(tmp_path) -> None:
    text = ">a first\nACGTACGTAC\nGTAC\n>b\nacgtnnACGT\n"
    lf, crlf = tmp_path / "lf.fa", tmp_path / "crlf.fa"
    lf.write_bytes(text.encode())
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    summary_lf = prepare_genome(lf, tmp_path / "lf_out.fa")
    summary = prepare_genome(crlf, tmp_path / "crlf_out.fa")
    assert (tmp_path / "lf_out.fa").read_bytes() == (tmp_path / "crlf_out.fa").read_bytes()
    assert (tmp_path / "lf_out.fa.fai").read_bytes() == (tmp_path / "crlf_out.fa.fai").read_bytes()
    assert summary["crlf_normalised"] is True and summary["carriage_returns"] == 5
    assert summary_lf["crlf_normalised"] is False
    assert summary["lengths"] == {"a": 14, "b": 10}
    assert open_genome(tmp_path / "crlf_out.fa").fetch("b", 0, 10) == "acgtnnACGT"


def test_contigs_are_selected_in_the_given_order(tmp_path) -> None:
    src = tmp_path / "multi.fa"
    records = {"chr1": "ACGT" * 40, "chr2": "GGCC" * 33 + "A", "chrM": "TTTTA" * 7}
    src.write_text("".join(f">{k}\n{v[:50]}\n{v[50:]}\n" for k, v in records.items()))
    out = tmp_path / "sel.fa"
    summary = prepare_genome(src, out, contigs=["chrM", "chr1"])
    assert list(summary["lengths"]) == ["chrM", "chr1"] and summary["records_in_source"] == 3
    assert [line.split("\t")[0] for line in Path(f"{out}.fai").read_text().splitlines()] == [
        "chrM", "chr1"]
    fasta = open_genome(out)
    assert fasta.fetch("chrM", 0, 35) == records["chrM"]
    assert fasta.fetch("chr1", 0, 160) == records["chr1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi.fa", "sel.fa", "sel.fa.fai"]


def _bad_cases(slice_gz: bytes) -> list[tuple[str, bytes, dict, str]]:
    return [
        ("empty.fa", b"", {}, "no FASTA records"),
        ("noheader.fa", b"\nACGT\n>a\nACGT\n", {}, r"noheader.fa:2: sequence before the first"),
        ("noname.fa", b">a\nAC\n> \nGT\n", {}, r"noname.fa:3: FASTA header '>' without a record"),
        ("dup.fa", b">a\nAC\n>b\nGG\n>a x\nTT\n", {}, r"dup.fa:5: duplicate record name 'a' "
         r"\(first at line 1\)"),
        ("emptyrec.fa", b">a\n>b\nAC\n", {}, r"emptyrec.fa:1: record 'a' has no sequence"),
        ("binary.fa", b">a\nAC\x00GT\n", {}, r"binary.fa:2: unexpected character"),
        ("truncated.fa.gz", slice_gz[: len(slice_gz) // 2], {}, "truncated or corrupt"),
        ("missing.fa", b">chr1\nAC\n>chr2\nGG\n", {"contigs": ["chr2", "chr9", "chrX"]},
         r"requested contigs not in the file: chr9, chrX; available: chr1, chr2"),
    ]


def test_bad_inputs_raise_one_clear_error_and_write_nothing(tmp_path) -> None:
    for name, content, kwargs, message in _bad_cases(SLICE.read_bytes()):
        case = tmp_path / name.replace(".", "_")
        case.mkdir()
        src = case / name
        src.write_bytes(content)
        out = case / "out.fa"
        with pytest.raises(GenomeError, match=message):
            prepare_genome(src, out, **kwargs)
        assert [p.name for p in case.iterdir()] == [name], name  # no out, .fai or temporary


def test_open_genome_refuses_missing_or_stale_index(tmp_path) -> None:
    src = tmp_path / "x.fa"
    src.write_text(">a\nACGTACGT\n")
    out = tmp_path / "prepared.fa"
    prepare_genome(src, out)
    with open(out, "a") as fh:
        fh.write(">b\nGG\n")  # the FASTA changed after indexing
    with pytest.raises(FastaError, match="does not match"):
        open_genome(out)
    Path(f"{out}.fai").unlink()
    with pytest.raises(FastaError, match=r"no index prepared\.fa\.fai"):
        open_genome(out)
    with pytest.raises(GenomeError, match="must be an uncompressed FASTA"):
        prepare_genome(src, tmp_path / "y.fa.gz")


def test_cli_prepare_genome(tmp_path, capsys) -> None:
    out = tmp_path / "g.fa"
    summary = tmp_path / "summary.json"
    assert main(["prepare-genome", "--fasta", str(SLICE), "--out", str(out),
                 "--summary", str(summary), "--contigs", "chr2"]) == 0
    assert '"chr2": 2333275' in summary.read_text()
    assert "2,333,275 bp" in capsys.readouterr().out
    assert main(["prepare-genome", "--fasta", str(SLICE), "--out", str(tmp_path / "h.fa"),
                 "--contigs", "chr1"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "requested contigs not in the file: chr1" in errors[0]
    assert "Traceback" not in err and not (tmp_path / "h.fa").exists()


@pytest.mark.parametrize("block", [1, 2, 5, 64])
def test_stream_parser_is_independent_of_block_boundaries(tmp_path, block) -> None:
    text = ">first record\r\nACGTN\r\nacg\r\n\r\n>second\r\nTTTT\r\n>third desc\nGGCCA"
    path = tmp_path / "blocks.fa"
    path.write_bytes(text.encode())
    records: dict[str, bytes] = {}
    lines = {}
    stream = FastaStream(path, block_bytes=block)
    for kind, value, line in stream:
        if kind == HEADER:
            records[value] = b""
            lines[value] = line
        else:
            records[list(records)[-1]] += value
    assert records == {"first": b"ACGTNacg", "second": b"TTTT", "third": b"GGCCA"}
    assert lines == {"first": 1, "second": 5, "third": 7}
    assert stream.carriage_returns == 6 and stream.md5 == hashlib.md5(text.encode()).hexdigest()


def test_open_fasta_is_indexed_or_in_memory_with_one_threshold(tmp_path, monkeypatch) -> None:
    """Without a .fai a FASTA is read whole up to IN_MEMORY_BYTES, else refused with the fix;
    with its .fai it is read through the index; both give the same sequence."""
    from ldarnet.data import fasta as fasta_module
    from ldarnet.data.fasta import FastaError, open_fasta

    src = tmp_path / "small.fa"
    src.write_text(">a\nACGTACGTAC\nGT\n>b\nacgtnn\n")
    in_memory = open_fasta(src)
    assert not in_memory.is_indexed and in_memory.lengths == {"a": 12, "b": 6}
    monkeypatch.setattr(fasta_module, "IN_MEMORY_BYTES", 10)
    with pytest.raises(FastaError, match=r"has no \.fai index and is too large .* prepare-genome"):
        open_fasta(src)
    prepared = tmp_path / "prepared.fa"
    prepare_genome(src, prepared)
    indexed = open_fasta(prepared)  # larger than the limit, but indexed
    assert indexed.is_indexed and indexed.lengths == in_memory.lengths
    for name, length in indexed.lengths.items():
        assert indexed.fetch(name, 0, length) == in_memory.fetch(name, 0, length)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared.fa", "prepared.fa.fai",
                                                          "small.fa"]  # no index written
