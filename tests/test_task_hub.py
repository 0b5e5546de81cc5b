"""HuggingFace task download against a local server that answers like the hub."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from ldarnet.evaluation.hub import (
    DEFAULT_REVISION,
    TOFU,
    HubError,
    fetch_split,
    hub_url,
    lock_path,
)
from ldarnet.evaluation.registry import load_registry
from ldarnet.evaluation.sources import build_task
from ldarnet.evaluation.task_data import read_split

ROOT = Path(__file__).resolve().parents[1]
TASKS = load_registry(ROOT / "config" / "tasks.tsv")
SPEC = TASKS["H3"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FAST = {"backoff": 0.001, "timeout": 5.0, "retries": 1}


class _Hub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}  # (dataset, config, split)
        self.mode = "ok"  # ok | corrupt | no_sha
        self.requests: list[tuple[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    """``/datasets/<ds>/resolve/<rev>/<config>/<split>/0000.parquet`` redirects to ``/cdn``."""

    server: ThreadingHTTPServer

    def _resolve(self) -> tuple[bytes | None, str]:
        hub: _Hub = self.server.hub  # type: ignore[attr-defined]
        match = re.fullmatch(r"/datasets/(.+)/resolve/([^/]+)/([^/]+)/([^/]+)/0000\.parquet",
                             self.path)
        if not match:
            return None, ""
        dataset, revision, config, split = match.groups()
        if urllib.parse.unquote(revision) not in (DEFAULT_REVISION, COMMIT):
            return None, ""
        body = hub.files.get((dataset, config, split))
        return body, f"/cdn/{config}-{split}"

    def _redirect(self, head: bool) -> None:
        hub: _Hub = self.server.hub  # type: ignore[attr-defined]
        hub.requests.append(("HEAD" if head else "GET", self.path))
        if self.path.startswith("/cdn/"):
            self._serve(hub)
            return
        body, location = self._resolve()
        if body is None:
            self.send_error(404, "Entry not found")
            return
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("X-Repo-Commit", COMMIT)
        if hub.mode != "no_sha":
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(body)))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, hub: _Hub) -> None:
        config, split = self.path.removeprefix("/cdn/").split("-")
        body = next(b for (_, c, s), b in hub.files.items() if (c, s) == (config, split))
        if hub.mode == "corrupt":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._redirect(head=True)

    def do_GET(self) -> None:
        self._redirect(head=False)

    def log_message(self, *args) -> None:
        pass


def _parquet(rows: list[tuple[str, int]]) -> bytes:
    import io

    buffer = io.BytesIO()
    pd.DataFrame({"sequence": [s for s, _ in rows], "name": [f"r{i}" for i in range(len(rows))],
                  "label": [y for _, y in rows]}).to_parquet(buffer)
    return buffer.getvalue()


@pytest.fixture
def hub(monkeypatch) -> Iterator[tuple[str, _Hub]]:
    monkeypatch.delenv("LDARNET_OFFLINE", raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = _Hub()
    httpd.hub = state  # type: ignore[attr-defined]
    for split, rows in (("train", [("A" * 500, 0), ("c" * 500, 1), ("G" * 500, 1)]),
                        ("test", [("T" * 500, 0), ("ACGT" * 125, 1)])):
        state.files[(SPEC.hub_dataset, "H3", split)] = _parquet(rows)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_hub_url() -> None:
    assert hub_url("InstaDeepAI/nucleotide_transformer_downstream_tasks", "H3", "train") == (
        "https://huggingface.co/datasets/InstaDeepAI/nucleotide_transformer_downstream_tasks/"
        "resolve/refs%2Fconvert%2Fparquet/H3/train/0000.parquet")
    gb = TASKS["human_nontata_promoters"]
    assert hub_url(gb.hub_dataset, gb.hub_config, "test", "abc", "http://h/") == (
        "http://h/datasets/katarinagresova/Genomic_Benchmarks_human_nontata_promoters/"
        "resolve/abc/default/test/0000.parquet")


def test_fetch_verifies_pins_and_locks(hub, tmp_path: Path) -> None:
    base, state = hub
    dest = tmp_path / "source" / "train.parquet"
    lock = fetch_split(SPEC, "train", dest, base_url=base, offline=False, **FAST)
    body = state.files[(SPEC.hub_dataset, "H3", "train")]
    assert dest.read_bytes() == body
    assert json.loads(lock_path(dest).read_text()) == lock
    assert lock_path(dest) == tmp_path / "source" / "train.parquet.json"
    assert lock["url"] == hub_url(SPEC.hub_dataset, "H3", "train", base_url=base)
    assert lock["revision"] == DEFAULT_REVISION and lock["commit"] == COMMIT
    assert lock["sha256"] == hashlib.sha256(body).hexdigest()
    assert lock["bytes"] == len(body) and lock["sha256_source"].startswith("server")
    assert (lock["dataset"], lock["config"], lock["split"]) == (SPEC.hub_dataset, "H3", "train")
    # HEAD on the revision (not followed), then the file from the pinned commit
    assert [m for m, _ in state.requests] == ["HEAD", "GET", "GET"]
    assert "%2F" in state.requests[0][1] and COMMIT in state.requests[1][1]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["train.parquet",
                                                              "train.parquet.json"]

    # a second call, offline, reuses the cache without any request
    state.requests.clear()
    assert fetch_split(SPEC, "train", dest, base_url=base, offline=True) == lock
    assert state.requests == []

    # and the cached parquet builds the canonical task
    fetch_split(SPEC, "test", tmp_path / "source" / "test.parquet", base_url=base, **FAST)
    manifest = build_task(SPEC, {"format": "parquet", "hub": True,
                                 "train": str(dest),
                                 "test": str(tmp_path / "source" / "test.parquet")},
                          tmp_path / "task")
    assert manifest["splits"]["train"]["counts"] == {"0": 1, "1": 2}
    assert read_split(tmp_path / "task" / "train.csv", SPEC).sequences[1] == "C" * 500


def test_corrupted_body_fails_and_leaves_nothing(hub, tmp_path: Path) -> None:
    base, state = hub
    state.mode = "corrupt"
    with pytest.raises(HubError, match=r"checksum mismatch.*expected sha256"):
        fetch_split(SPEC, "train", tmp_path / "train.parquet", base_url=base, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_offline_without_cache_names_the_command(hub, tmp_path: Path, monkeypatch) -> None:
    base, state = hub
    dest = tmp_path / "test.parquet"
    with pytest.raises(HubError) as err:
        fetch_split(SPEC, "test", dest, base_url=base, offline=True)
    assert "ldarnet fetch-task H3 --split test" in str(err.value)
    assert str(dest) in str(err.value)
    monkeypatch.setenv("LDARNET_OFFLINE", "1")
    with pytest.raises(HubError, match="not cached"):
        fetch_split(SPEC, "test", dest, base_url=base)
    assert state.requests == [] and list(tmp_path.iterdir()) == []


def test_changed_cache_is_refetched_online_and_refused_offline(hub, tmp_path: Path) -> None:
    base, state = hub
    dest = tmp_path / "train.parquet"
    lock = fetch_split(SPEC, "train", dest, base_url=base, **FAST)
    dest.write_bytes(b"edited")
    with pytest.raises(HubError, match="does not match the sha256"):
        fetch_split(SPEC, "train", dest, base_url=base, offline=True)
    state.requests.clear()
    assert fetch_split(SPEC, "train", dest, base_url=base, **FAST)["sha256"] == lock["sha256"]
    assert [m for m, _ in state.requests] == ["HEAD", "GET", "GET"]
    with pytest.raises(HubError, match="is for revision 'refs/convert/parquet', not 'v2'"):
        fetch_split(SPEC, "train", dest, revision="v2", base_url=base, offline=True)
    # the pinned commit names the same content as the revision it resolved
    assert fetch_split(SPEC, "train", dest, revision=COMMIT, base_url=base,
                       offline=True)["commit"] == COMMIT


def test_no_server_checksum_is_trust_on_first_use(hub, tmp_path: Path) -> None:
    base, state = hub
    state.mode = "no_sha"
    dest = tmp_path / "train.parquet"
    lock = fetch_split(SPEC, "train", dest, base_url=base, **FAST)
    assert lock["sha256_source"] == TOFU and "trust on first use" in lock["sha256_source"]
    assert lock["sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest()


def test_missing_file_on_the_hub_is_a_clear_error(hub, tmp_path: Path) -> None:
    base, _ = hub
    with pytest.raises(HubError, match=r"task H4 split train: .*HTTP 404"):
        fetch_split(TASKS["H4"], "train", tmp_path / "x.parquet", base_url=base, **FAST)
    with pytest.raises(HubError, match="split 'valid' is not one of"):
        fetch_split(SPEC, "valid", tmp_path / "x.parquet", base_url=base)
