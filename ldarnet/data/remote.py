"""Pinned downloads from the HuggingFace hub and Zenodo, each described by a lock file.

Paper-scale inputs live on servers whose content moves under a stable name: a hub
repository's ``main`` gets new commits (the NT benchmark was re-laid out in 2024), a
conversion branch is rewritten by a bot. A download is therefore only reproducible when
it names an immutable version and says what it received:

* **HuggingFace** (:class:`HubFile`): ``<base>/[datasets/]<repo>/resolve/<revision>/<path>``
  at a *pinned* revision (a full 40-hex commit). The hub answers a ``HEAD`` on that URL
  with ``X-Repo-Commit`` (the commit the revision resolved to) and, for Git LFS files, a
  302 to its CDN carrying ``X-Linked-Etag`` (the file's SHA-256) and ``X-Linked-Size``;
  small non-LFS files come back as a 200 whose ``ETag`` is a git blob hash. This is how
  ``huggingface_hub.get_hf_file_metadata`` reads them too (it follows relative redirects
  only, so a renamed repository is followed but the CDN is not). Errors carry
  ``X-Error-Code`` (``EntryNotFound``, ``RevisionNotFound``, ``RepoNotFound``,
  ``GatedRepo``) and ``X-Error-Message``.
* **Zenodo** (:class:`ZenodoFile`): ``<base>/records/<record>/files/<key>?download=1``;
  the record's JSON (``<base>/api/records/<record>``) lists every file with its size and
  ``md5:`` checksum. A published record's files never change (a change is a new record),
  so the record id is the pin.
* **A plain URL** (:class:`UrlFile`) with the SHA-256 the config pins.

:func:`fetch` verifies the bytes against the server's (or the config's) checksum and
writes ``<dest>.json``: the source identity, the commit it resolved to, the checksums,
the size. A later call with the same identity finds the file matching its lock and does
nothing, without network; a changed pin, a changed file or a damaged lock is fetched
again (online) or refused (offline). :func:`probe` answers "would this download work?"
without downloading: status, size, commit and checksum, for ``ldarnet check-sources``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ldarnet import __version__
from ldarnet.data.download import DownloadError, download
from ldarnet.foundation.atomic import write_json
from ldarnet.foundation.checksum import file_sha256

HF_BASE_URL = "https://huggingface.co"
ZENODO_BASE_URL = "https://zenodo.org"
OFFLINE_ENV = "LDARNET_OFFLINE"
REPO_TYPES = ("dataset", "model")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MD5_RE = re.compile(r"[0-9a-f]{32}")
_USER_AGENT = f"ldarnet/{__version__} (python-urllib)"
SERVER_SHA256 = "server (X-Linked-Etag)"
CONFIG_SHA256 = "config (pinned sha256)"
TOFU = "trust on first use: the server sent no SHA-256, this is the digest of the bytes received"
ZENODO_MD5 = "Zenodo record API (md5)"


class RemoteError(DownloadError):
    """A remote input that cannot be resolved, fetched or verified (the message says how).

    A :class:`DownloadError`, so that command-line handlers of download failures catch it.
    """


class UnreachableError(RemoteError):
    """No answer at all (DNS, refused connection, timeout): the network, not the file."""


def is_commit(revision: str | None) -> bool:
    """Whether ``revision`` is a full commit hash, the only immutable hub revision."""
    return bool(revision) and bool(_COMMIT_RE.fullmatch(str(revision)))


def offline_requested(offline: bool = False) -> bool:
    """Whether network access is forbidden (the argument, or ``LDARNET_OFFLINE=1``)."""
    return offline or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes",
                                                                          "on")


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class HubFile:
    """One file of a HuggingFace repository at a revision."""

    repo: str
    path: str
    revision: str
    repo_type: str = "dataset"
    base_url: str = HF_BASE_URL

    def url(self, revision: str | None = None) -> str:
        """The ``resolve`` URL of the file at ``revision`` (default: the configured one).

        The revision is quoted whole (``refs%2Fconvert%2Fparquet``) and each path part
        separately, as the hub expects.
        """
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        rev = urllib.parse.quote(revision or self.revision, safe="")
        path = "/".join(urllib.parse.quote(part, safe="") for part in self.path.split("/"))
        return f"{self.base_url.rstrip('/')}/{prefix}{self.repo}/resolve/{rev}/{path}"

    @property
    def pinned(self) -> bool:
        return is_commit(self.revision)

    def identity(self) -> dict[str, str]:
        """What the lock must match for a cached file to count as this source."""
        return {"host": "huggingface", "repo": self.repo, "repo_type": self.repo_type,
                "path": self.path, "revision": self.revision}

    def describe(self) -> str:
        kind = "datasets/" if self.repo_type == "dataset" else ""
        return f"hf://{kind}{self.repo}@{self.revision}/{self.path}"


@dataclass(frozen=True)
class ZenodoFile:
    """One file of a published Zenodo record (immutable once published)."""

    record: str
    key: str
    base_url: str = ZENODO_BASE_URL

    def url(self) -> str:
        key = urllib.parse.quote(self.key, safe="")
        return f"{self.base_url.rstrip('/')}/records/{self.record}/files/{key}?download=1"

    def api_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/api/records/{self.record}"

    pinned = True

    def identity(self) -> dict[str, str]:
        return {"host": "zenodo", "record": self.record, "key": self.key}

    def describe(self) -> str:
        return f"zenodo:{self.record}/{self.key}"


@dataclass(frozen=True)
class UrlFile:
    """A file at a plain URL; only its pinned SHA-256 makes it reproducible."""

    address: str
    sha256: str | None = None

    def url(self) -> str:
        return self.address

    @property
    def pinned(self) -> bool:
        return bool(self.sha256) and bool(_SHA256_RE.fullmatch(self.sha256 or ""))

    def identity(self) -> dict[str, str]:
        return {"host": "url", "url": self.address}

    def describe(self) -> str:
        return self.address


RemoteFile = HubFile | ZenodoFile | UrlFile


# ------------------------------------------------------------------------------- HTTP
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Make a redirect answer come back as it is (its Location and metadata headers)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


def request(url: str, method: str = "HEAD", *, follow: bool = False, timeout: float = 20.0,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """``(status, lower-cased headers, body)`` of one request; any HTTP status is returned.

    Unlike :func:`ldarnet.data.download.fetch_headers`, a 4xx answer is not an error here:
    its headers (``X-Error-Code``...) are what a pre-flight report needs. Redirects are
    followed only with ``follow=True``. No answer at all raises :class:`UnreachableError`.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RemoteError(f"url {url!r} is not an http:// or https:// URL")
    handlers = [] if follow else [_NoRedirect]
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, method=method, headers={
        "User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **(headers or {})})
    try:
        with opener.open(req, timeout=timeout) as response:
            body = response.read() if method == "GET" else b""
            return response.status, {k.lower(): v for k, v in response.headers.items()}, body
    except urllib.error.HTTPError as err:
        try:
            body = err.read() if method == "GET" else b""
        except (OSError, http.client.HTTPException):
            body = b""
        err.close()
        return err.code, {k.lower(): v for k, v in err.headers.items()}, body
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise UnreachableError(f"{url}: no answer ({getattr(err, 'reason', err)})") from err


# ------------------------------------------------------------------------------ probes
@dataclass
class Probe:
    """What a server says about a file, without downloading it."""

    url: str
    status: int | None = None
    size: int | None = None
    commit: str | None = None
    checksum: str | None = None  # "sha256:<hex>" / "md5:<hex>" when the server publishes one
    error_code: str | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.status is not None and 200 <= self.status < 400


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def normalize_etag(value: str | None) -> str | None:
    """``W/"abc"`` / ``"abc"`` → ``abc`` (the forms ``huggingface_hub`` accepts)."""
    if value is None:
        return None
    value = value.strip()
    value = value.removeprefix("W/")
    return value.strip('"').lower() or None


def _hub_sha256(headers: dict[str, str]) -> str | None:
    """The LFS SHA-256 the hub publishes (``X-Linked-Etag``, else a SHA-256 ``ETag``)."""
    etag = normalize_etag(headers.get("x-linked-etag") or headers.get("etag"))
    return etag if etag and _SHA256_RE.fullmatch(etag) else None


def probe_hub(file: HubFile, timeout: float = 20.0) -> Probe:
    """``HEAD`` the file's resolve URL as ``huggingface_hub`` does (relative redirects only)."""
    url = file.url()
    status, headers = 0, {}
    for _ in range(4):
        status, headers, _ = request(url, "HEAD", timeout=timeout)
        location = headers.get("location", "")
        if 300 <= status < 400 and location and not urllib.parse.urlsplit(location).netloc \
                and "x-repo-commit" not in headers:
            url = urllib.parse.urljoin(url, location)  # a renamed repository: follow
            continue
        break
    redirected = 300 <= status < 400
    sha = _hub_sha256(headers)
    size = _int(headers.get("x-linked-size")) or (None if redirected else
                                                  _int(headers.get("content-length")))
    return Probe(
        url=file.url(), status=status, size=size,
        commit=(headers.get("x-repo-commit") or "").strip() or None,
        checksum=f"sha256:{sha}" if sha else None,
        error_code=headers.get("x-error-code"),
        message=headers.get("x-error-message", ""),
        extra={"location": headers.get("location"),
               "etag": normalize_etag(headers.get("etag"))},
    )


def zenodo_files(record: str, base_url: str = ZENODO_BASE_URL,
                 timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    """``{key: {"size", "md5", "url"}}`` of a Zenodo record, from its API JSON.

    Both shapes of the API answer are read: ``files`` as a list of
    ``{key, size, checksum: "md5:...", links}`` (the records API) and as
    ``{"entries": {key: {...}}}`` (the InvenioRDM files API).
    """
    api = ZenodoFile(record, "", base_url).api_url()
    status, _, body = request(api, "GET", follow=True, timeout=timeout,
                                    headers={"Accept": "application/json"})
    if status != 200:
        raise RemoteError(f"{api}: HTTP {status}; Zenodo record {record} is not available "
                          "(check the record id in the sources config)")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RemoteError(f"{api}: not a JSON record ({err})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(files, dict):
        files = list((files.get("entries") or {}).values())
    if not isinstance(files, list):
        raise RemoteError(f"{api}: the record lists no files")
    out: dict[str, dict[str, Any]] = {}
    for entry in files:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key") or entry.get("filename")
        checksum = str(entry.get("checksum") or "")
        algo, _, digest = checksum.partition(":") if ":" in checksum else ("md5", "", checksum)
        md5 = digest.lower() if algo.lower() == "md5" and _MD5_RE.fullmatch(digest.lower()) \
            else None
        links = entry.get("links") or {}
        out[str(key)] = {"size": entry.get("size", entry.get("filesize")), "md5": md5,
                         "url": links.get("self") or links.get("download")}
    return out


def probe_zenodo(file: ZenodoFile, listing: dict[str, dict[str, Any]] | None = None,
                 timeout: float = 20.0) -> Probe:
    """Look the key up in the record's listing, then ``HEAD`` its download URL."""
    listing = listing if listing is not None else zenodo_files(file.record, file.base_url,
                                                               timeout)
    entry = listing.get(file.key)
    if entry is None:
        shown = ", ".join(sorted(listing)[:8]) or "none"
        return Probe(url=file.url(), status=404, error_code="NotInRecord",
                     message=f"record {file.record} has no file {file.key!r} (files: {shown})")
    status, headers, _ = request(file.url(), "HEAD", follow=True, timeout=timeout)
    return Probe(url=file.url(), status=status,
                 size=entry["size"] if isinstance(entry["size"], int) else
                 _int(headers.get("content-length")),
                 checksum=f"md5:{entry['md5']}" if entry["md5"] else None,
                 message="" if 200 <= status < 400 else f"download URL answered HTTP {status}")


def probe_url(url: str, timeout: float = 20.0) -> Probe:
    """``HEAD`` a plain URL (redirects followed); servers that refuse HEAD get a 1-byte GET."""
    status, headers, _ = request(url, "HEAD", follow=True, timeout=timeout)
    size = _int(headers.get("content-length"))
    if status in (403, 405, 501):
        status, headers, _ = request(url, "GET", follow=True, timeout=timeout,
                                     headers={"Range": "bytes=0-0"})
        match = re.search(r"/(\d+)$", headers.get("content-range", ""))
        size = int(match.group(1)) if match else None
    return Probe(url=url, status=status, size=size)


def probe(file: RemoteFile, timeout: float = 20.0,
          zenodo_listing: dict[str, dict[str, Any]] | None = None) -> Probe:
    """What the server says about ``file`` (no download)."""
    if isinstance(file, HubFile):
        return probe_hub(file, timeout)
    if isinstance(file, ZenodoFile):
        return probe_zenodo(file, zenodo_listing, timeout)
    result = probe_url(file.url(), timeout)
    if file.sha256:
        result.checksum = f"sha256:{file.sha256}"
    return result


def hub_failure(file: HubFile, result: Probe) -> str:
    """One sentence on why the hub refused ``file`` (from its error headers)."""
    code = result.error_code or f"HTTP {result.status}"
    hints = {
        "EntryNotFound": f"there is no {file.path!r} at revision {file.revision}; the "
                         "repository's layout differs from the configured path template",
        "RevisionNotFound": f"revision {file.revision!r} does not exist in {file.repo}",
        "RepoNotFound": f"repository {file.repo} does not exist (or is private)",
        "GatedRepo": f"{file.repo} is gated: accept its terms on the hub and log in",
    }
    detail = hints.get(result.error_code or "", result.message or "unexpected answer")
    return f"{code}: {detail}"


# ------------------------------------------------------------------------------- locks
def lock_path(dest: str | Path) -> Path:
    """The lock file describing ``dest``: ``<dest>.json``."""
    return Path(f"{dest}.json")


def read_lock(dest: str | Path, identity: dict[str, str],
              sha256: str | None = None) -> tuple[dict | None, str]:
    """The lock of ``dest`` if the file matches it and ``identity``, else ``(None, why)``.

    ``sha256``, when given (a pinned checksum), must also be what the lock recorded.
    The file's size and SHA-256 are recomputed: a lock never vouches for edited bytes.
    """
    dest = Path(dest)
    lock = lock_path(dest)
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
    for key, value in identity.items():
        if data.get(key) != value:
            return None, f"{lock} is for {key} {data.get(key)!r}, not {value!r}"
    if sha256 is not None and data.get("sha256") != sha256:
        return None, f"{lock} records sha256 {data.get('sha256')}, the config pins {sha256}"
    if data.get("bytes") != dest.stat().st_size or data.get("sha256") != file_sha256(dest):
        return None, f"{dest} does not match the sha256/size recorded in {lock}"
    return data, ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch(file: RemoteFile, dest: str | Path, *, sha256: str | None = None,
          offline: bool = False, how_to_fetch: str = "", how_to_pin: str = "",
          extra: dict[str, Any] | None = None, retries: int = 5, timeout: float = 60.0,
          backoff: float = 1.0) -> dict:
    """Download ``file`` to ``dest`` (verified, locked); return its lock.

    ``sha256`` is a checksum the config pins (required for a :class:`UrlFile`); the
    server's checksum must then agree with it. An unpinned hub revision is refused:
    ``how_to_pin`` says how to pin it. Offline without a usable cache is an error naming
    ``how_to_fetch``. ``extra`` is recorded in the lock as well (what the file is for).
    The lock is written after the file is in place; a stale lock is removed first, so a
    lock always describes the file beside it.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if sha256 is not None and not _SHA256_RE.fullmatch(sha256):
        raise RemoteError(f"sha256 {sha256!r} is not a 64-character hexadecimal digest")
    if not file.pinned and not (isinstance(file, UrlFile) and sha256):
        what = (f"revision {file.revision!r} is a branch or tag, not a commit"
                if isinstance(file, HubFile) else "no sha256 is pinned for it")
        raise RemoteError(f"{file.describe()}: not pinned ({what}); an unpinned source can "
                          f"change under the same name. {how_to_pin or 'Pin it in the config'}")
    identity = file.identity()
    cached, why = read_lock(dest, identity, sha256)
    if cached is not None:
        return cached
    if offline_requested(offline):
        raise RemoteError(f"{file.describe()} is not cached ({why}) and network access is off "
                          f"(offline / {OFFLINE_ENV}=1); {how_to_fetch or 'fetch it'} on a "
                          f"machine with network access, then copy {dest.name} and its "
                          f"{lock_path(dest).name} lock here")
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock_path(dest).unlink(missing_ok=True)  # it no longer describes dest
    try:
        if isinstance(file, HubFile):
            data = _fetch_hub(file, dest, sha256, retries, timeout, backoff)
        elif isinstance(file, ZenodoFile):
            data = _fetch_zenodo(file, dest, retries, timeout, backoff)
        else:
            download(file.url(), dest, sha256=sha256 or file.sha256, retries=retries,
                     timeout=timeout, backoff=backoff)
            data = {"url": file.url(), "sha256_source": CONFIG_SHA256}
    except UnreachableError as err:
        raise RemoteError(f"{file.describe()}: {err}") from err
    except RemoteError:
        raise
    except DownloadError as err:  # transfer or checksum failure: one error type for callers
        raise RemoteError(f"{file.describe()}: {err}") from err
    received = file_sha256(dest)
    if sha256 is not None and received != sha256:  # download() verified; guard a race
        dest.unlink(missing_ok=True)
        raise RemoteError(f"{dest}: sha256 {received} differs from the pinned {sha256}")
    lock = {**(extra or {}), **identity, **data, "sha256": received,
            "bytes": dest.stat().st_size, "fetched_utc": _now()}
    write_json(lock_path(dest), lock)
    return lock


def _fetch_hub(file: HubFile, dest: Path, sha256: str | None, retries: int, timeout: float,
               backoff: float) -> dict[str, Any]:
    def head() -> Probe:
        answer = probe_hub(file, timeout)
        if answer.status is not None and (answer.status >= 500 or answer.status == 429):
            raise UnreachableError(f"{file.url()}: HTTP {answer.status} (server busy)")
        return answer

    result = _with_unreachable_retries(head, retries, backoff)
    if not result.found:
        raise RemoteError(f"{file.describe()}: {hub_failure(file, result)} ({file.url()})")
    if result.commit != file.revision:
        raise RemoteError(f"{file.describe()}: the hub resolved the pinned revision to commit "
                          f"{result.commit!r}; refusing a file of another commit")
    server = result.checksum.removeprefix("sha256:") if result.checksum else None
    if sha256 is not None and server is not None and server != sha256:
        raise RemoteError(f"{file.describe()}: the hub serves sha256 {server}, the config pins "
                          f"{sha256}; the file at this revision is not the pinned one")
    expected = sha256 or server
    download(file.url(), dest, sha256=expected, trust_on_first_use=expected is None,
             retries=retries, timeout=timeout, backoff=backoff)
    source = CONFIG_SHA256 if sha256 else (SERVER_SHA256 if server else TOFU)
    return {"url": file.url(), "commit": result.commit, "server_sha256": server,
            "sha256_source": source}


def _fetch_zenodo(file: ZenodoFile, dest: Path, retries: int, timeout: float,
                  backoff: float) -> dict[str, Any]:
    listing = _with_unreachable_retries(
        lambda: zenodo_files(file.record, file.base_url, timeout), retries, backoff)
    entry = listing.get(file.key)
    if entry is None:
        shown = ", ".join(sorted(listing)[:8]) or "none"
        raise RemoteError(f"{file.describe()}: record {file.record} has no file {file.key!r} "
                          f"(files: {shown})")
    if entry["md5"] is None:
        raise RemoteError(f"{file.describe()}: the record publishes no md5 for {file.key}")
    download(file.url(), dest, md5=entry["md5"], retries=retries, timeout=timeout,
             backoff=backoff)
    if isinstance(entry["size"], int) and dest.stat().st_size != entry["size"]:
        dest.unlink(missing_ok=True)
        raise RemoteError(f"{file.describe()}: got {dest.stat().st_size} bytes, the record "
                          f"lists {entry['size']}")
    return {"url": file.url(), "md5": entry["md5"], "md5_source": ZENODO_MD5,
            "sha256_source": "digest of the bytes received (verified against the md5)"}


def _with_unreachable_retries(action, retries: int, backoff: float = 1.0):
    """Metadata look-ups retried on connection failures (downloads retry themselves)."""
    last: UnreachableError | None = None
    for attempt in range(max(1, retries)):
        try:
            return action()
        except UnreachableError as err:
            last = err
            if attempt + 1 < max(1, retries):
                time.sleep(backoff * 2**attempt)
    assert last is not None
    raise last
