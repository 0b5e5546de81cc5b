"""A released checkpoint as a model entry of the workflow: where it is and how it is pinned.

A model entry of the workflow config either names a model config to pretrain
(``config: config/models/ldarnet-110m.yaml``) or a released checkpoint that stands in
for pretraining::

    models:
      release:
        checkpoint: darlednik/LDARNet-110M/model_ckpt_110m.pt   # <owner>/<repo>/<file>, or a URL
        revision: <40-hex commit>      # hub checkpoints: the commit (a branch is refused)
        sha256: <64-hex>               # the file's SHA-256
        reverse_padding: exact         # import setting (exact | release; docs/interop.md)

The workflow downloads it (``fetch_checkpoint``, verified, with a lock file) and
imports it (``import_checkpoint``: ``torch.load(weights_only=True)``) into
``results/pretrain/<model>/seed<seed>/``, where every later stage expects pretrained
weights. ``ldarnet check-sources --pin`` resolves a branch to its commit and reads the
SHA-256 the hub publishes, and writes both into the config.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ldarnet.data.remote import HF_BASE_URL, HubFile, RemoteFile, UrlFile, is_commit
from ldarnet.interop.errors import InteropError

DOWNLOADS = "resources/downloads/checkpoints"
ENTRY_KEYS = ("checkpoint", "revision", "sha256", "reverse_padding", "base_url")
REVERSE_PADDING = ("exact", "release")
PIN_COMMAND = "ldarnet check-sources --config <workflow config> --pin"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def is_checkpoint_entry(entry: Mapping[str, Any]) -> bool:
    """Whether a model entry is a released checkpoint (rather than a config to pretrain)."""
    return "checkpoint" in entry


def checkpoint_file(name: str, entry: Mapping[str, Any]) -> RemoteFile:
    """The remote file of model entry ``name`` (a hub file or a plain URL)."""
    where = f"config models.{name}"
    unknown = sorted(k for k in entry if k not in ENTRY_KEYS)
    if unknown:
        raise InteropError(f"{where}: unknown key(s) {unknown}; a checkpoint entry has "
                           f"{list(ENTRY_KEYS)}")
    source = entry.get("checkpoint")
    if not isinstance(source, str) or not source.strip():
        raise InteropError(f"{where}.checkpoint: give <owner>/<repo>/<file> of the hub or a "
                           "https:// URL")
    sha256 = entry.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str)
                               or not _SHA256_RE.fullmatch(sha256.lower())):
        raise InteropError(f"{where}.sha256: {sha256!r} is not a 64-character hexadecimal "
                           f"digest (null until pinned with `{PIN_COMMAND}`)")
    padding = entry.get("reverse_padding", "exact")
    if padding not in REVERSE_PADDING:
        raise InteropError(f"{where}.reverse_padding: {padding!r} is not one of "
                           f"{REVERSE_PADDING}")
    if re.match(r"https?://", source):
        return UrlFile(source, sha256.lower() if sha256 else None)
    parts = source.strip("/").split("/")
    if len(parts) < 3 or not all(parts):
        raise InteropError(f"{where}.checkpoint: {source!r} is neither <owner>/<repo>/<file> "
                           "nor a URL")
    revision = entry.get("revision", "main")
    if not isinstance(revision, str) or not revision:
        raise InteropError(f"{where}.revision: give the repository's commit (or a branch to "
                           f"resolve with `{PIN_COMMAND}`)")
    base_url = entry.get("base_url") or HF_BASE_URL
    if not re.match(r"https?://", str(base_url)):
        raise InteropError(f"{where}.base_url: {base_url!r} is not an http(s) URL")
    return HubFile("/".join(parts[:2]), "/".join(parts[2:]), revision, "model", str(base_url))


def checkpoint_name(file: RemoteFile) -> str:
    """The file name the download keeps (the last path part of the source)."""
    if isinstance(file, HubFile):
        return posixpath.basename(file.path)
    path = urllib.parse.urlsplit(file.url()).path
    return urllib.parse.unquote(posixpath.basename(path)) or "checkpoint.pt"


def checkpoint_cache(name: str, entry: Mapping[str, Any], downloads: str = DOWNLOADS) -> str:
    """Where the workflow keeps the downloaded checkpoint of model entry ``name``."""
    return f"{downloads}/{name}/{checkpoint_name(checkpoint_file(name, entry))}"


def unpinned_reason(file: RemoteFile, sha256: str | None) -> str | None:
    """Why a checkpoint source is not pinned (None when it is)."""
    missing = []
    if isinstance(file, HubFile) and not is_commit(file.revision):
        missing.append(f"revision {file.revision!r} is not a commit")
    if not sha256:
        missing.append("no sha256")
    return "; ".join(missing) or None
