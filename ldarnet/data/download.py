"""Resumable, checksum-verified HTTP(S) download with the standard library only.

The hg38 FASTA is ~1 GB compressed and UCSC's mirrors drop long transfers now and then,
so a download has to survive interruptions without starting over and must never leave
a file that *looks* finished but is not. The rules:

* bytes stream into ``<out>.part``; after a dropped connection, a short read or a 5xx
  answer the transfer is retried with exponential back-off and continues where it
  stopped with an HTTP ``Range: bytes=N-`` request (a server that ignores ranges and
  answers 200 is handled by starting again from byte 0);
* the finished ``.part`` is checked against an MD5 digest, given directly or looked up
  by file name in an ``md5sum.txt``-style list (UCSC publishes one per directory), or
  against a SHA-256 digest (what the HuggingFace hub publishes for its LFS files); only
  a verified file is renamed to ``out`` (``os.replace``, atomic on one file system);
  a caller that has no digest at all must say so (``trust_on_first_use=True``) and is
  expected to record the digest of what it received;
* a checksum mismatch deletes the ``.part`` (its bytes are known bad) and raises
  :class:`DownloadError` naming both digests; a transfer that still fails after all
  retries keeps the ``.part`` so that running the same command again resumes it;
* an existing ``out`` whose MD5 already matches is kept as it is (no network at all).

:func:`fetch_headers` answers a ``HEAD`` request without following redirects: the hub
sends the checksum and the resolved commit in the headers of its redirect, not in
those of the CDN it redirects to.

``urllib`` is used instead of ``requests`` so that the workflow's first step needs no
third-party package.
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from ldarnet import __version__
from ldarnet.foundation.checksum import file_md5, file_sha256
from ldarnet.foundation.errors import LdarnetError

CHUNK_BYTES = 1 << 20
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_USER_AGENT = f"ldarnet/{__version__} (python-urllib)"
T = TypeVar("T")


class DownloadError(LdarnetError, RuntimeError):
    """A download that could not be completed or verified."""


class _RetryableError(Exception):
    """A transient failure: worth another attempt after a pause."""


class _RangeNotSatisfiableError(Exception):
    """HTTP 416 on a resume: the partial file is already complete (or too long)."""


def url_basename(url: str) -> str:
    """The file name at the end of a URL's path (``.../bigZips/hg38.fa.gz`` -> ``hg38.fa.gz``)."""
    return urllib.parse.unquote(posixpath.basename(urllib.parse.urlsplit(url).path))


def parse_md5sum(text: str) -> dict[str, str]:
    """``{file name: md5}`` of an ``md5sum`` listing (``<md5>  <name>`` or ``<md5> *<name>``).

    Names are reduced to their basename, because some listings write ``./hg38.fa.gz``.
    Lines that are not a digest followed by a name are ignored (listings may carry
    comments or blank lines).
    """
    entries: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and _MD5_RE.match(parts[0]):
            name = posixpath.basename(parts[1].strip().lstrip("*"))
            entries[name] = parts[0].lower()
    return entries


def _open(url: str, timeout: float, offset: int = 0) -> http.client.HTTPResponse:
    """Open ``url`` (from ``offset`` with a Range request); classify failures."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # the .part already holds the whole file (or more): let the caller verify it
            raise _RangeNotSatisfiableError from err
        raise _http_failure(url, err) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _connection_failure(err) from err


def _http_failure(url: str, err: urllib.error.HTTPError) -> Exception:
    """What an HTTP error status means: retry on 5xx/408/429, otherwise give up clearly."""
    if err.code >= 500 or err.code in (408, 429):
        return _RetryableError(f"HTTP {err.code} {err.reason}")
    return DownloadError(
        f"{url}: HTTP {err.code} {err.reason}; check the URL (the server refused it, "
        "retrying will not help)"
    )


def _connection_failure(err: Exception) -> _RetryableError:
    """A network failure below HTTP (DNS, refused, reset, timeout): always retried."""
    return _RetryableError(f"connection failed: {getattr(err, 'reason', err)}")


def _with_retries(what: str, action: Callable[[], T], retries: int, backoff: float) -> T:
    """Run ``action()`` up to ``retries + 1`` times, sleeping ``backoff * 2**k`` in between."""
    last = ""
    for attempt in range(retries + 1):
        try:
            return action()
        except _RetryableError as err:
            last = str(err)
            if attempt < retries:
                delay = backoff * 2**attempt
                print(f"ldarnet download: {what}: {last}; retry {attempt + 1}/{retries} "
                      f"in {delay:.1f} s", file=sys.stderr)
                time.sleep(delay)
    raise DownloadError(f"{what}: failed after {retries + 1} attempts; last error: {last}")


def fetch_md5(url: str, md5_url: str, timeout: float = 60.0, retries: int = 5,
              backoff: float = 1.0) -> str:
    """The expected MD5 of ``url``'s file, looked up by basename in the listing at ``md5_url``."""

    def get() -> bytes:
        with _open(md5_url, timeout) as response:
            try:
                return response.read()
            except (OSError, http.client.HTTPException) as err:
                raise _RetryableError(f"reading failed: {err}") from err

    text = _with_retries(md5_url, get, retries, backoff).decode("utf-8", "replace")
    name = url_basename(url)
    entries = parse_md5sum(text)
    if name not in entries:
        shown = ", ".join(sorted(entries)[:10]) or "none"
        raise DownloadError(
            f"{md5_url} has no checksum for {name!r} (entries: {shown}); check that --url "
            "and --md5-url point to the same directory, or give the digest with --md5"
        )
    return entries[name]


def _transfer(url: str, part: Path, timeout: float) -> None:
    """One attempt: append the missing bytes of ``url`` to ``part`` (resuming if possible)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, timeout, offset)
    except _RangeNotSatisfiableError:
        return  # nothing left to fetch; the checksum decides whether the .part is good
    with response:
        status = response.status
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes (\d+)-", content_range)
            if not match or int(match.group(1)) != offset:
                part.unlink()  # the server cannot resume here: start over next attempt
                raise _RetryableError(f"server answered the resume with {content_range!r}; "
                                      "restarting from byte 0")
        elif offset:
            # 200 to a Range request: the server sends the whole file, so start over
            offset = 0
        total = None if length is None else offset + length
        received = 0
        mode = "ab" if offset else "wb"
        with open(part, mode) as fh, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=url_basename(url), file=sys.stderr, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as err:
                    raise _RetryableError(
                        f"connection lost after {offset + received} bytes: {err}"
                    ) from err
                if not block:
                    break
                fh.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received < length:
            raise _RetryableError(f"short read: got {offset + received} of {total} bytes")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Make a redirect answer come back as it is (an ``HTTPError`` with its headers)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


def fetch_headers(url: str, timeout: float = 60.0, retries: int = 5,
                  backoff: float = 1.0) -> tuple[int, dict[str, str]]:
    """``(status, headers)`` of a ``HEAD`` request to ``url``, redirects *not* followed.

    Header names are lower-cased. A 3xx answer is returned as it is (its ``Location`` and
    any metadata headers included); 4xx is a :class:`DownloadError`, 5xx and connection
    failures are retried like downloads.
    """
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(
        url, method="HEAD",
        headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
    )

    def head() -> tuple[int, dict[str, str]]:
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as err:
            err.close()
            if 300 <= err.code < 400:
                return err.code, {k.lower(): v for k, v in err.headers.items()}
            raise _http_failure(url, err) from err
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise _connection_failure(err) from err

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"url {url!r} is not an http:// or https:// URL")
    return _with_retries(f"HEAD {url}", head, retries, backoff)


def download(
    url: str,
    out: str | Path,
    md5: str | None = None,
    md5_url: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    *,
    sha256: str | None = None,
    trust_on_first_use: bool = False,
) -> Path:
    """Download ``url`` to ``out``, verified against ``md5``, the listing at ``md5_url``
    or ``sha256``.

    Exactly one checksum source must be given: an unverified genome would silently
    poison every later step. The one exception is ``trust_on_first_use=True`` with no
    checksum source, for servers that publish none: the file is then kept unverified
    and the caller must record (and later check) its digest. ``retries`` counts the
    attempts after the first. Returns ``out``.
    """
    out = Path(out)
    sources = sum(x is not None for x in (md5, md5_url, sha256))
    if sources > 1 or (sources == 0 and not trust_on_first_use):
        raise DownloadError("give exactly one checksum source: md5 (hex digest), md5_url or "
                            "sha256 (hex digest)")
    if md5 is not None and not _MD5_RE.match(md5):
        raise DownloadError(f"md5 {md5!r} is not a 32-character hexadecimal digest")
    if sha256 is not None and not _SHA256_RE.match(sha256):
        raise DownloadError(f"sha256 {sha256!r} is not a 64-character hexadecimal digest")
    for name, address in (("url", url), ("md5_url", md5_url)):
        if address is not None and urllib.parse.urlsplit(address).scheme not in ("http", "https"):
            raise DownloadError(f"{name} {address!r} is not an http:// or https:// URL")
    if retries < 0 or timeout <= 0 or backoff < 0:
        raise DownloadError("retries and backoff must be >= 0 and timeout > 0")
    algorithm, digest_of = ("sha256", file_sha256) if sha256 is not None else ("md5", file_md5)
    expected: str | None
    if sha256 is not None:
        expected = sha256.lower()
    elif md5 is not None:
        expected = md5.lower()
    elif md5_url is not None:
        expected = fetch_md5(url, md5_url, timeout, retries, backoff)
    else:
        expected = None  # trust on first use: the caller records what it received

    if out.is_file() and expected is not None:
        if digest_of(out) == expected:
            print(f"ldarnet download: {out} already present with {algorithm} {expected}; kept",
                  file=sys.stderr)
            return out
        print(f"ldarnet download: {out} exists but its {algorithm} differs from {expected}; "
              "downloading again", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")

    _with_retries(url, lambda: _transfer(url, part, timeout), retries, backoff)

    actual = digest_of(part) if expected is not None else None
    if actual != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: checksum mismatch (expected {algorithm} {expected}, got {actual}); the "
            "download was corrupted or the file changed on the server, so it was deleted; "
            "run the command again, and if it persists check the checksum source"
        )
    os.replace(part, out)
    return out
