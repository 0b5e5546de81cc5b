"""Download one task split (parquet) from the HuggingFace hub, verified, pinned and cached.

The paper's numbers are on the official NT benchmark files, and hub datasets change
under the same name (NT itself has a ``_revised`` twin). So a download must say exactly
what it got: before fetching, a ``HEAD`` request (redirects not followed) reads the
file's Git LFS SHA-256 (``X-Linked-Etag``) and the commit the revision resolved to
(``X-Repo-Commit``); the file is then fetched *from that commit* (so a branch moving in
between cannot mix versions), verified against the SHA-256, and described in a lock file
``<dest>.json`` (url, revision, commit, sha256, bytes). A later call finds the file
matching its lock and does nothing, without network: reruns work offline
(``offline=True`` or ``LDARNET_OFFLINE=1``). A server that publishes no SHA-256 is
trusted on first use: the lock records the SHA-256 of what was received and says so.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from ldarnet.data.atomic import write_json
from ldarnet.data.checksum import file_sha256
from ldarnet.data.download import DownloadError, download, fetch_headers
from ldarnet.evaluation.registry import TaskSpec

DEFAULT_REVISION = "refs/convert/parquet"
DEFAULT_BASE_URL = "https://huggingface.co"
OFFLINE_ENV = "LDARNET_OFFLINE"
SPLITS = ("train", "test")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
SERVER = "server (X-Linked-Etag)"
TOFU = "trust on first use: the server sent no SHA-256, this is the digest of the bytes received"


class HubError(DownloadError):
    """A task split that cannot be fetched or found in the cache (the message says how).

    A :class:`DownloadError`, so that command-line handlers of download failures catch it.
    """


def hub_url(dataset: str, config: str, split: str, revision: str = DEFAULT_REVISION,
            base_url: str = DEFAULT_BASE_URL) -> str:
    """URL of the first parquet shard of ``dataset``/``config``/``split`` at ``revision``.

    The hub's parquet conversions live on the ``refs/convert/parquet`` revision as
    ``<config>/<split>/0000.parquet``; the revision is URL-quoted whole
    (``refs%2Fconvert%2Fparquet``), as the hub expects.
    """
    quoted = urllib.parse.quote(revision, safe="")
    path = "/".join(urllib.parse.quote(part, safe="") for part in (config, split))
    return (f"{base_url.rstrip('/')}/datasets/{dataset}/resolve/{quoted}/{path}/0000.parquet")


def offline_requested(offline: bool = False) -> bool:
    """Whether network access is forbidden (the argument, or ``LDARNET_OFFLINE=1``)."""
    return offline or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes",
                                                                          "on")


def lock_path(dest: str | Path) -> Path:
    """The lock file describing ``dest``: ``<dest>.json``."""
    return Path(f"{dest}.json")


def _fetch_command(spec: TaskSpec, split: str, dest: Path) -> str:
    return (f"`ldarnet fetch-task {spec.name} --split {split} --out {dest}` (or the workflow "
            f"target: `snakemake {dest}`)")


def _cached(dest: Path, lock: Path, expected: dict[str, str]) -> tuple[dict | None, str]:
    """The lock if ``dest`` matches it and the request, else ``(None, why)``."""
    if not dest.is_file():
        return None, f"{dest} does not exist"
    if not lock.is_file():
        return None, f"{dest} has no lock file {lock.name}"
    try:
        data = json.loads(lock.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"{lock} is unreadable ({err})"
    if not isinstance(data, dict):
        return None, f"{lock} is not a JSON object"
    for key, value in expected.items():
        if data.get(key) != value and not (key == "revision" and data.get("commit") == value):
            return None, f"{lock} is for {key} {data.get(key)!r}, not {value!r}"
    if data.get("bytes") != dest.stat().st_size or data.get("sha256") != file_sha256(dest):
        return None, f"{dest} does not match the sha256/size recorded in {lock}"
    return data, ""


def _linked_sha256(headers: dict[str, str]) -> str | None:
    """The LFS SHA-256 the hub sends (``X-Linked-Etag``, quoted, maybe weak), if any."""
    for name in ("x-linked-etag", "etag"):
        value = headers.get(name, "").strip()
        value = value.removeprefix("W/").strip('"').lower()
        if _SHA256_RE.fullmatch(value):
            return value
    return None


def _hub_headers(url: str, timeout: float, retries: int, backoff: float) -> dict[str, str]:
    """Headers of the hub's answer for ``url``, following only its *internal* redirects.

    The answer that carries ``X-Repo-Commit`` (a 302 to the LFS CDN, or a 200) is the
    one to read; a relative redirect without it (a renamed repository) is followed, up
    to 3 hops, with another ``HEAD``.
    """
    headers: dict[str, str] = {}
    for _ in range(4):
        status, headers = fetch_headers(url, timeout=timeout, retries=retries, backoff=backoff)
        location = headers.get("location", "")
        if "x-repo-commit" in headers or not 300 <= status < 400 or not location.startswith("/"):
            return headers
        url = urllib.parse.urljoin(url, location)
    return headers


def fetch_split(spec: TaskSpec, split: str, dest: str | Path, *,
                revision: str = DEFAULT_REVISION, base_url: str = DEFAULT_BASE_URL,
                offline: bool = False, retries: int = 5, timeout: float = 60.0,
                backoff: float = 1.0) -> dict:
    """Download ``split`` of ``spec``'s hub dataset to ``dest``; return its lock.

    A ``dest`` that matches its lock (same dataset, config, split and revision, same
    size and SHA-256) is kept without any network access. Otherwise, unless offline,
    the file is fetched as described in the module docstring and the lock written
    atomically after the file is in place. Offline without a usable cache is a
    :class:`HubError` naming the command that fetches the file.
    """
    if split not in SPLITS:
        raise HubError(f"split {split!r} is not one of {SPLITS}")
    dest = Path(dest)
    lock = lock_path(dest)
    expected = {"dataset": spec.hub_dataset, "config": spec.hub_config, "split": split,
                "revision": revision}
    cached, why = _cached(dest, lock, expected)
    if cached is not None:
        return cached
    if offline_requested(offline):
        raise HubError(f"task {spec.name} split {split} is not cached ({why}) and network "
                       f"access is off (offline / {OFFLINE_ENV}=1); fetch it with "
                       f"{_fetch_command(spec, split, dest)} on a machine with network access, "
                       "then copy the .parquet and its .json lock here")
    url = hub_url(spec.hub_dataset, spec.hub_config, split, revision, base_url)
    try:
        headers = _hub_headers(url, timeout, retries, backoff)
    except DownloadError as err:
        raise HubError(f"task {spec.name} split {split}: {err}") from err
    sha256 = _linked_sha256(headers)
    commit = headers.get("x-repo-commit", "").strip() or None
    source_url = (hub_url(spec.hub_dataset, spec.hub_config, split, commit, base_url)
                  if commit else url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock.unlink(missing_ok=True)  # it no longer describes dest
    try:
        download(source_url, dest, retries=retries, timeout=timeout, backoff=backoff,
                 sha256=sha256, trust_on_first_use=sha256 is None)
    except DownloadError as err:
        raise HubError(f"task {spec.name} split {split}: {err}") from err
    received = file_sha256(dest)
    if sha256 is not None and received != sha256:  # download() verified; guard a race
        dest.unlink(missing_ok=True)
        raise HubError(f"{dest}: sha256 {received} differs from the server's {sha256}; "
                       "fetch it again")
    data = {
        **expected,
        "task": spec.name,
        "url": url,
        "download_url": source_url,
        "commit": commit,
        "sha256": received,
        "sha256_source": SERVER if sha256 is not None else TOFU,
        "bytes": dest.stat().st_size,
        "fetched_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_json(lock, data)
    return data
