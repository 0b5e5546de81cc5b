"""A local HTTP server that answers like the HuggingFace hub, Zenodo and a plain file server.

It reproduces the behaviour the downloads depend on, as ``huggingface_hub`` reads it
(``file_download.get_hf_file_metadata``, ``utils._http.hf_raise_for_status``):

* ``/[datasets/]<owner>/<repo>/resolve/<revision>/<path>`` (revision URL-quoted whole):
  a Git LFS file answers **302** with an *absolute* ``Location`` on another host name
  (the CDN; here ``localhost`` instead of ``127.0.0.1``), ``X-Repo-Commit`` (the commit
  the revision resolved to), ``X-Linked-Etag`` (quoted SHA-256) and ``X-Linked-Size``;
  a regular git file answers **200** with its bytes, ``X-Repo-Commit`` and an ``ETag``
  that is a git blob hash (SHA-1, 40 hex), not a SHA-256;
* errors carry ``X-Error-Code`` / ``X-Error-Message``: an unknown path at a known
  revision is 404 ``EntryNotFound`` (with ``X-Repo-Commit``), an unknown revision 404
  ``RevisionNotFound``, an unknown repository 401 ``RepoNotFound``;
* a renamed repository answers 307 with a *relative* ``Location`` (followed by the
  client; the CDN redirect is not);
* the CDN serves the bytes with ``Range`` support (206).

Zenodo: ``/api/records/<id>`` is the record's JSON (``files``: key, size,
``checksum: "md5:<hex>"``, links), ``/records/<id>/files/<key>?download=1`` the bytes.
Anything under ``/static/`` is a plain file (genome, annotation, ``md5sum.txt``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".parquet", ".pt", ".zip", ".gz", ".safetensors")


def git_blob_sha1(body: bytes) -> str:
    """The git object id of a file (what the hub's ETag holds for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


@dataclass
class Repo:
    """A hub repository: branches point at commits, commits hold files."""

    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def add_commit(self, commit: str, files: dict[str, bytes], branch: str | None = None) -> None:
        self.commits[commit] = dict(files)
        if branch is not None:
            self.branches[branch] = commit


@dataclass
class State:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)  # (dataset|model, id)
    renamed: dict[tuple[str, str], str] = field(default_factory=dict)
    zenodo: dict[str, dict[str, bytes]] = field(default_factory=dict)
    static: dict[str, bytes] = field(default_factory=dict)
    corrupt_cdn: bool = False
    reported_commit: str | None = None  # a misbehaving mirror: this X-Repo-Commit for all
    requests: list[tuple[str, str]] = field(default_factory=list)

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.repos.setdefault((repo_type, repo_id), Repo())


_RESOLVE = re.compile(r"^/(?P<prefix>datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/"
                      r"(?P<path>.+)$")


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # ------------------------------------------------------------------ plumbing
    def _reply(self, status: int, headers: dict[str, str], body: bytes = b"",
               head: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool,
               extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._reply(status, {"X-Error-Code": code, "X-Error-Message": message,
                             "Content-Type": "application/json", **(extra or {})}, body, head)

    def _bytes(self, body: bytes, head: bool, headers: dict[str, str] | None = None) -> None:
        """200, or 206 for a ``Range: bytes=N-`` request."""
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(body) - 1
            if start >= len(body):
                self._reply(416, {}, b"", head)
                return
            part = body[start:end + 1]
            self._reply(206, {**(headers or {}),
                              "Content-Range": f"bytes {start}-{start + len(part) - 1}/"
                                               f"{len(body)}"}, part, head)
            return
        self._reply(200, headers or {}, body, head)

    def _dispatch(self, head: bool) -> None:
        self.state.requests.append(("HEAD" if head else "GET", self.path))
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/cdn/"):
            self._cdn(path, head)
        elif path.startswith("/api/records/"):
            self._zenodo_api(path, head)
        elif path.startswith("/records/"):
            self._zenodo_file(path, head)
        elif path.startswith("/static/"):
            body = self.state.static.get(path.removeprefix("/static/"))
            if body is None:
                self._reply(404, {}, b"not found", head)
            else:
                self._bytes(body, head)
        else:
            self._resolve(path, head)

    # ----------------------------------------------------------------------- hub
    def _resolve(self, path: str, head: bool) -> None:
        match = _RESOLVE.match(path)
        if not match:
            self._reply(404, {}, b"not found", head)
            return
        repo_type = "dataset" if match["prefix"] else "model"
        repo_id, rev = match["repo"], urllib.parse.unquote(match["rev"])
        file_path = urllib.parse.unquote(match["path"])
        key = (repo_type, repo_id)
        if key in self.state.renamed:
            prefix = "/datasets" if repo_type == "dataset" else ""
            location = (f"{prefix}/{self.state.renamed[key]}/resolve/{match['rev']}/"
                        f"{match['path']}")
            self._reply(307, {"Location": location}, b"", head)
            return
        repo = self.state.repos.get(key)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found", head)
            return
        commit = repo.branches.get(rev) or (rev if rev in repo.commits else None)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return
        body = repo.commits[commit].get(file_path)
        if body is None:
            self._error(404, "EntryNotFound", "Entry not found", head,
                        {"X-Repo-Commit": commit})
            return
        commit = self.state.reported_commit or commit
        if file_path.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(body).hexdigest()
            port = self.server.server_address[1]
            self._reply(302, {
                "Location": f"http://localhost:{port}/cdn/{sha}?name="
                            f"{urllib.parse.quote(file_path.rsplit('/', 1)[-1])}",
                "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(body)),
            }, b"", head)
            return
        self._bytes(body, head, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(body)}"'})

    def _cdn(self, path: str, head: bool) -> None:
        sha = path.removeprefix("/cdn/")
        for repo in self.state.repos.values():
            for files in repo.commits.values():
                for body in files.values():
                    if hashlib.sha256(body).hexdigest() == sha:
                        if self.state.corrupt_cdn:  # same length, one byte flipped
                            middle = len(body) // 2
                            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + \
                                body[middle + 1:]
                        self._bytes(body, head, {"ETag": f'"{sha}"'})
                        return
        self._reply(403, {}, b"AccessDenied", head)

    # -------------------------------------------------------------------- zenodo
    def _zenodo_api(self, path: str, head: bool) -> None:
        record = path.removeprefix("/api/records/").strip("/")
        files = self.state.zenodo.get(record)
        if files is None:
            self._reply(404, {"Content-Type": "application/json"},
                        b'{"status": 404, "message": "PID does not exist."}', head)
            return
        port = self.server.server_address[1]
        doc = {"id": int(record), "files": [
            {"id": f"f{i}", "key": key, "size": len(body),
             "checksum": f"md5:{hashlib.md5(body, usedforsecurity=False).hexdigest()}",
             "links": {"self": f"http://127.0.0.1:{port}/api/records/{record}/files/{key}/"
                               "content"}}
            for i, (key, body) in enumerate(sorted(files.items()))]}
        self._reply(200, {"Content-Type": "application/json"}, json.dumps(doc).encode(), head)

    def _zenodo_file(self, path: str, head: bool) -> None:
        match = re.fullmatch(r"/records/(\d+)/files/(.+)", path)
        files = self.state.zenodo.get(match.group(1)) if match else None
        body = files.get(urllib.parse.unquote(match.group(2))) if files and match else None
        if body is None:
            self._reply(404, {}, b"not found", head)
            return
        self._bytes(body, head, {"Content-Type": "application/octet-stream"})


@contextmanager
def serve() -> Iterator[tuple[str, State]]:
    """``(base URL, state)`` of a server on an ephemeral port of 127.0.0.1."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = State()
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------- files in the real layouts
def nt_parquet(rows: list[tuple[str, int, str]]) -> bytes:
    """An NT benchmark file as on the repository's main: ``<task>/<split>.parquet`` with
    columns sequence, name, label (int64) and task; rows are (sequence, label, task)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "sequence": pa.array([s for s, _, _ in rows], pa.string()),
        "name": pa.array([f"{t}|{i}" for i, (_, _, t) in enumerate(rows)], pa.string()),
        "label": pa.array([y for _, y, _ in rows], pa.int64()),
        "task": pa.array([t for _, _, t in rows], pa.string()),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def gb_parquet(rows: list[tuple[str, int]]) -> bytes:
    """A Genomic Benchmarks file as on its conversion branch
    (``default/<split>/0000.parquet``): columns seq and label (int64)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"seq": pa.array([s for s, _ in rows], pa.string()),
                      "label": pa.array([y for _, y in rows], pa.int64())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def gb_archive(task: str, splits: dict[str, dict[str, list[str]]]) -> bytes:
    """A Genomic Benchmarks archive as on Zenodo (``<task>_v0.zip``):
    ``<task>/<split>/<class>/<id>.txt``, one sequence per file, no newline."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for split, classes in splits.items():
            for class_name, seqs in classes.items():
                for i, seq in enumerate(seqs):
                    archive.writestr(f"{task}/{split}/{class_name}/{class_name[:3]}{i}.txt", seq)
    return buffer.getvalue()
