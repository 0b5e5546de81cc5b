"""The one BED reader: line records and column chunks follow the same policy."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ldarnet.analysis.tracks import read_bedgraph
from ldarnet.data.bed import BedError, iter_bed, iter_bed_chunks, read_bed

LINES = [f"chr{1 + i % 2}\t{10 * i}\t{10 * i + 7}\t0.{i % 10}{i % 7}00\n" for i in range(500)]


def _collect(path, **kwargs):
    chunks = list(iter_bed_chunks(path, 4, numeric=True, **kwargs))
    return (np.concatenate([c.contigs for c in chunks]).tolist(),
            np.concatenate([c.starts for c in chunks]).tolist(),
            np.concatenate([c.ends for c in chunks]).tolist(),
            np.concatenate([c.fields[0] for c in chunks]).tolist())


def test_chunks_equal_records_whatever_the_route(tmp_path) -> None:
    """Fast path, small blocks, gzip, and the line reader (track line, CRLF) agree."""
    plain = tmp_path / "a.bedGraph"
    plain.write_text("".join(LINES))
    records = list(iter_bed(plain, 4))
    expected = ([r.contig for r in records], [r.start for r in records],
                [r.end for r in records], [float(r.fields[3]) for r in records])
    assert _collect(plain) == expected
    assert _collect(plain, chunk_bytes=1000) == expected
    gz = tmp_path / "a.bedGraph.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert _collect(gz) == expected
    other = tmp_path / "b.bedGraph"
    other.write_bytes(("track type=bedGraph\n" + "".join(LINES)).replace("\n", "\r\n").encode())
    assert _collect(other) == expected


@pytest.mark.parametrize(("line", "message"), [
    ("chr1\t+5\t20\t0.5\n", "start and end must be non-negative integers"),
    ("chr1\t5.0\t20\t0.5\n", "start and end must be non-negative integers"),
    ("chr1\t1e3\t2000\t0.5\n", "start and end must be non-negative integers"),
    ("chr1\t30\t20\t0.5\n", "start 30 >= end 20"),
    ("chr1\t20\n", "expected 4 tab-separated columns"),
    ("chr1\t20\t30\tabc\n", "column 4 'abc' is not a number"),
])
def test_a_bad_line_after_good_blocks_is_named_exactly(tmp_path, line, message) -> None:
    """The fast path gives whole clean blocks; the line reader names the bad line."""
    path = tmp_path / "c.bedGraph"
    path.write_text("".join(LINES) + line + "".join(LINES[:3]))
    with pytest.raises(BedError, match=f"c.bedGraph:{len(LINES) + 1}: .*{message}"):
        _collect(path, chunk_bytes=2000)


def test_tracks_read_through_the_reader(tmp_path) -> None:
    path = tmp_path / "t.bedGraph"
    path.write_text("chr1\t0\t3\t0.2500\nchr2\t1\t2\t1.0000\nchr1\t5\t6\t0.5000\n")
    values = read_bedgraph(path, "chr1", 8)
    assert np.allclose(values, [0.25, 0.25, 0.25, np.nan, np.nan, 0.5, np.nan, np.nan],
                       equal_nan=True)


def test_an_empty_bed_is_an_error(tmp_path) -> None:
    path = tmp_path / "e.bed"
    path.write_text("# nothing\n\n")
    with pytest.raises(BedError, match="has no intervals"):
        read_bed(path)
    assert list(iter_bed_chunks(path, 3)) == []
