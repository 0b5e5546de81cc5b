"""``ldarnet.data.download`` against a local HTTP server with Range support and faults."""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ldarnet.cli import main
from ldarnet.data.download import DownloadError, download, parse_md5sum, url_basename

FAST = {"backoff": 0.001, "timeout": 5.0}


def _fasta_gz() -> bytes:
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGT"), 60_000))
    text = ">chrT test\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n"
    return gzip.compress(text.encode(), mtime=0)


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_done = False


class _Handler(BaseHTTPRequestHandler):
    """Serves ``state.files``; ``state.modes[path]`` injects one kind of fault."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        mode = state.modes.get(self.path, "ok")
        if mode == "fail500":
            self.send_error(500, "server on fire")
            return
        if self.path not in state.files:
            self.send_error(404, "no such file")
            return
        body = state.files[self.path]
        if mode == "corrupt":  # same length, one flipped byte in the middle
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and mode != "no_range":
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416, "range not satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if mode == "cut_once" and not state.cut_done:
            state.cut_done = True
            self.wfile.write(payload[: len(payload) // 2])  # then HTTP/1.0 closes the socket
            return
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, _State]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    data = _fasta_gz()
    state: _State = httpd.state  # type: ignore[attr-defined]
    state.files["/genome/test.fa.gz"] = data
    state.files["/genome/md5sum.txt"] = (
        f"{hashlib.md5(data).hexdigest()}  test.fa.gz\n"
        f"{'0' * 32}  other.fa.gz\n"
    ).encode()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _hits(state: _State, path: str) -> list[str | None]:
    return [rng for p, rng in state.requests if p == path]


def test_md5_listing_parsing() -> None:
    listing = "d41d8cd98f00b204e9800998ecf8427e  ./a.fa.gz\nD41D8CD98F00B204E9800998ECF8427F *b\n"
    assert parse_md5sum(listing) == {"a.fa.gz": "d41d8cd98f00b204e9800998ecf8427e",
                                     "b": "d41d8cd98f00b204e9800998ecf8427f"}
    assert url_basename("https://host/goldenPath/hg38/bigZips/hg38.fa.gz?x=1") == "hg38.fa.gz"


def test_download_verified_by_md5_listing_and_kept(server, tmp_path) -> None:
    base, state = server
    out = tmp_path / "sub" / "test.fa.gz"
    url = f"{base}/genome/test.fa.gz"
    assert download(url, out, md5_url=f"{base}/genome/md5sum.txt", **FAST) == out
    assert out.read_bytes() == state.files["/genome/test.fa.gz"]
    assert gzip.decompress(out.read_bytes()).startswith(b">chrT test\n")
    assert not out.with_name("test.fa.gz.part").exists()
    assert _hits(state, "/genome/test.fa.gz") == [None]
    # a second call finds a verified file and does not fetch it again
    download(url, out, md5=hashlib.md5(out.read_bytes()).hexdigest(), **FAST)
    assert len(_hits(state, "/genome/test.fa.gz")) == 1


def test_corrupted_transfer_is_rejected(server, tmp_path) -> None:
    base, state = server
    state.modes["/genome/test.fa.gz"] = "corrupt"
    out = tmp_path / "test.fa.gz"
    expected = hashlib.md5(state.files["/genome/test.fa.gz"]).hexdigest()
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        download(f"{base}/genome/test.fa.gz", out, md5_url=f"{base}/genome/md5sum.txt", **FAST)
    assert expected in str(err.value)
    assert re.search(r"got [0-9a-f]{32}", str(err.value))
    assert list(tmp_path.iterdir()) == []  # neither out nor .part


def test_interrupted_transfer_resumes_with_range(server, tmp_path) -> None:
    base, state = server
    state.modes["/genome/test.fa.gz"] = "cut_once"
    data = state.files["/genome/test.fa.gz"]
    out = tmp_path / "test.fa.gz"
    download(f"{base}/genome/test.fa.gz", out, md5=hashlib.md5(data).hexdigest(), **FAST)
    assert out.read_bytes() == data
    assert _hits(state, "/genome/test.fa.gz") == [None, f"bytes={len(data) // 2}-"]


def test_existing_part_file_is_resumed(server, tmp_path) -> None:
    base, state = server
    data = state.files["/genome/test.fa.gz"]
    out = tmp_path / "test.fa.gz"
    out.with_name("test.fa.gz.part").write_bytes(data[:1000])
    download(f"{base}/genome/test.fa.gz", out, md5=hashlib.md5(data).hexdigest(), **FAST)
    assert out.read_bytes() == data
    assert _hits(state, "/genome/test.fa.gz") == ["bytes=1000-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path) -> None:
    base, state = server
    state.modes["/genome/test.fa.gz"] = "no_range"
    data = state.files["/genome/test.fa.gz"]
    out = tmp_path / "test.fa.gz"
    out.with_name("test.fa.gz.part").write_bytes(b"garbage" * 100)  # would corrupt an append
    download(f"{base}/genome/test.fa.gz", out, md5=hashlib.md5(data).hexdigest(), **FAST)
    assert out.read_bytes() == data


def test_missing_md5_entry_is_a_clear_error(server, tmp_path) -> None:
    base, state = server
    state.files["/genome/unlisted.fa.gz"] = b"x"
    with pytest.raises(DownloadError, match=r"no checksum for 'unlisted.fa.gz'.*other.fa.gz"):
        download(f"{base}/genome/unlisted.fa.gz", tmp_path / "u.fa.gz",
                 md5_url=f"{base}/genome/md5sum.txt", **FAST)
    assert _hits(state, "/genome/unlisted.fa.gz") == []
    assert list(tmp_path.iterdir()) == []


def test_server_errors_are_retried_then_fail(server, tmp_path) -> None:
    base, state = server
    state.modes["/genome/test.fa.gz"] = "fail500"
    with pytest.raises(DownloadError, match=r"failed after 3 attempts.*HTTP 500"):
        download(f"{base}/genome/test.fa.gz", tmp_path / "t.fa.gz", md5="0" * 32, retries=2,
                 **FAST)
    assert len(_hits(state, "/genome/test.fa.gz")) == 3
    assert list(tmp_path.iterdir()) == []


def test_not_found_is_not_retried(server, tmp_path) -> None:
    base, state = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/genome/missing.fa.gz", tmp_path / "m.fa.gz", md5="0" * 32, **FAST)
    assert len(_hits(state, "/genome/missing.fa.gz")) == 1


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(DownloadError, match="exactly one"):
        download("http://127.0.0.1:9/x", tmp_path / "x")
    with pytest.raises(DownloadError, match="not a 32-character"):
        download("http://127.0.0.1:9/x", tmp_path / "x", md5="abc")
    with pytest.raises(DownloadError, match="'htp://host/x' is not an http"):
        download("htp://host/x", tmp_path / "x", md5="0" * 32)


def test_cli_download(server, tmp_path, capsys) -> None:
    base, state = server
    out = tmp_path / "test.fa.gz"
    args = ["download", "--url", f"{base}/genome/test.fa.gz", "--out", str(out)]
    assert main([*args, "--md5-url", f"{base}/genome/md5sum.txt"]) == 0
    assert out.read_bytes() == state.files["/genome/test.fa.gz"]
    capsys.readouterr()
    out.unlink()
    assert main([*args, "--md5", "f" * 32, "--retries", "0"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # not the progress bar
    assert len(errors) == 1 and errors[0].startswith("ldarnet download: error: ")
    assert "checksum mismatch" in errors[0]
    assert "Traceback" not in err and not out.exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse: one checksum source is required
        main(args)
    assert exit_info.value.code == 2
