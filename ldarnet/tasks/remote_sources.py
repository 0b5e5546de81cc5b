"""Where each benchmark suite's official files live, pinned: ``config/evaluation/remote.yaml``.

The paper-scale data of a task comes from its suite's remote source (a task that the
workflow's local sources file names is built from local files instead). One entry per
suite of the registry (``nt``, ``gb``) says where, at which immutable version, and in
which layout:

.. code-block:: yaml

    nt:
      host: huggingface                  # or zenodo
      repo: InstaDeepAI/nucleotide_transformer_downstream_tasks
      repo_type: dataset                 # huggingface only (dataset | model)
      revision: <40-hex commit>          # or {task: commit}; branches are refused by fetches
      files: {train: "{name}/train.parquet", test: "{name}/test.parquet"}
      format: parquet                    # the reader: parquet | gb_archive
      task_column: task                  # reader settings (ldarnet.tasks.formats)
    gb:
      host: zenodo
      record: "16605299"                 # a published record never changes: the record is the pin
      files: {archive: "{task}_v0.zip"}
      format: gb_archive
      expected_counts: config/evaluation/gb_counts.tsv

File templates (and ``repo``) may use ``{task}`` (the registry name), ``{dataset}``
(the registry's ``hub_dataset``) and ``{name}`` (its ``hub_config``). ``files`` maps the
reader's roles (parquet: ``train`` and ``test``; gb_archive: ``archive``) to remote
paths; the download of role R is cached as ``resources/downloads/tasks/<task>/R<suffix>``
with a ``.json`` lock (:mod:`ldarnet.data.remote`). docs/evaluation.md ("Sources")
explains the choices and how to re-pin.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ldarnet.data.remote import (
    HF_BASE_URL,
    REPO_TYPES,
    ZENODO_BASE_URL,
    HubFile,
    RemoteFile,
    ZenodoFile,
    fetch,
)
from ldarnet.foundation.yaml_config import read_yaml
from ldarnet.tasks.formats import DOWNLOADABLE, FORMATS
from ldarnet.tasks.registry import TaskSpec
from ldarnet.tasks.source_config import SourceConfigError, is_remote

DEFAULT_REMOTE = "config/evaluation/remote.yaml"
DOWNLOADS = "resources/downloads"
HOSTS = ("huggingface", "zenodo")
HOST_KEYS: dict[str, tuple[str, ...]] = {
    "huggingface": ("repo", "repo_type", "revision", "base_url"),
    "zenodo": ("record", "base_url"),
}
PLACEHOLDERS = ("task", "dataset", "name")
PIN_COMMAND = "ldarnet check-sources --config <workflow config> --pin"


class RemoteSourceError(SourceConfigError):
    """A remote-sources file that cannot describe the downloads (the message names the key)."""


@dataclass(frozen=True, eq=False)
class RemoteSuite:
    """The remote source of one benchmark suite (one entry of the remote-sources file)."""

    suite: str
    host: str
    format: str
    files: dict[str, str]
    repo: str = "{dataset}"
    repo_type: str = "dataset"
    revision: str | dict[str, str] | None = None
    record: str | None = None
    base_url: str | None = None
    reader: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    def revision_for(self, task: str) -> str:
        """The configured revision of ``task`` (a per-task mapping or one for the suite).

        A task missing from a per-task mapping gets the default branch ``main``: the
        pre-flight then reports it as unpinned (with the commit ``--pin`` would record)
        and a fetch refuses it, instead of failing on an empty revision.
        """
        if isinstance(self.revision, Mapping):
            return self.revision.get(task) or "main"
        return self.revision or "main"

    def local_name(self, role: str) -> str:
        """Cache file name of a role: the role plus the remote file's suffix(es)."""
        suffix = "".join(PurePosixPath(self.files[role]).suffixes[-1:])
        return f"{role}{suffix}"

    def files_for(self, spec: TaskSpec) -> dict[str, RemoteFile]:
        """``{cache file name: remote file}`` of one task, in role order."""
        values = {"task": spec.name, "dataset": spec.hub_dataset, "name": spec.hub_config}
        out: dict[str, RemoteFile] = {}
        for role in FORMATS[self.format].required:
            path = self.files[role].format(**values)
            if self.host == "huggingface":
                out[self.local_name(role)] = HubFile(
                    self.repo.format(**values), path, self.revision_for(spec.name),
                    self.repo_type, self.base_url or HF_BASE_URL)
            else:
                out[self.local_name(role)] = ZenodoFile(str(self.record), path,
                                                        self.base_url or ZENODO_BASE_URL)
        return out


def _error(where: str, text: str) -> RemoteSourceError:
    return RemoteSourceError(f"{where}: {text}; see docs/evaluation.md (Sources)")


def _template(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(where, f"must be a non-empty path template, got {value!r}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as err:
        raise _error(where, f"bad template {value!r} ({err})") from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise _error(where, f"template {value!r} uses unknown placeholder(s) {unknown}; "
                     f"allowed: {['{' + p + '}' for p in PLACEHOLDERS]}")
    return value


def _suite(path: Path, suite: str, entry: Any) -> RemoteSuite:
    where = f"{path}: {suite}"
    if not isinstance(entry, Mapping):
        raise _error(where, "must be a mapping with host, files and format")
    host, fmt = entry.get("host"), entry.get("format")
    if host not in HOSTS:
        raise _error(f"{where}.host", f"{host!r} is not one of {HOSTS}")
    if fmt not in DOWNLOADABLE:
        raise _error(f"{where}.format", f"{fmt!r} is not one of {sorted(DOWNLOADABLE)}")
    settings = FORMATS[fmt].remote_settings or ()
    allowed = {"host", "format", "files", "note", *HOST_KEYS[host], *settings}
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise _error(where, f"unknown key(s) {unknown} for host {host} and format {fmt}; "
                     f"allowed: {sorted(allowed)}")
    files = entry.get("files")
    roles = FORMATS[fmt].required
    if not isinstance(files, Mapping) or sorted(files) != sorted(roles):
        got = sorted(files) if isinstance(files, Mapping) else files
        raise _error(f"{where}.files", f"format {fmt} needs exactly the file roles "
                     f"{list(roles)}, got {got!r}")
    files = {role: _template(f"{where}.files.{role}", files[role]) for role in roles}
    kwargs: dict[str, Any] = {}
    if host == "huggingface":
        kwargs["repo"] = _template(f"{where}.repo", entry.get("repo", "{dataset}"))
        repo_type = entry.get("repo_type", "dataset")
        if repo_type not in REPO_TYPES:
            raise _error(f"{where}.repo_type", f"{repo_type!r} is not one of {REPO_TYPES}")
        kwargs["repo_type"] = repo_type
        revision = entry.get("revision")
        if isinstance(revision, Mapping):
            bad = {k: v for k, v in revision.items() if not isinstance(v, str) or not v}
            if bad:
                raise _error(f"{where}.revision", f"per-task revisions must be strings: {bad}")
            revision = {str(k): v for k, v in revision.items()}
        elif not isinstance(revision, str) or not revision:
            raise _error(f"{where}.revision", "required: a 40-hex commit of the repository "
                         f"(or a branch to resolve with `{PIN_COMMAND}`)")
        kwargs["revision"] = revision
    else:
        record = str(entry.get("record", ""))
        if not re.fullmatch(r"\d+", record):
            raise _error(f"{where}.record", f"{entry.get('record')!r} is not a Zenodo record id")
        kwargs["record"] = record
    if entry.get("base_url") is not None:
        if not re.match(r"https?://", str(entry["base_url"])):
            raise _error(f"{where}.base_url", f"{entry['base_url']!r} is not an http(s) URL")
        kwargs["base_url"] = str(entry["base_url"])
    reader = {key: entry[key] for key in settings if entry.get(key) is not None}
    for key, value in reader.items():
        if not isinstance(value, str) or not value:
            raise _error(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    return RemoteSuite(suite, host, fmt, files, reader=reader, where=where, **kwargs)


def load_remote_sources(path: str | Path) -> dict[str, RemoteSuite]:
    """``{suite: RemoteSuite}`` of a remote-sources file (one clear error for any bad key)."""
    path = Path(path)
    data = read_yaml(path, "remote-sources file", RemoteSourceError)
    if not isinstance(data, Mapping) or not data:
        raise _error(str(path), "must map suite names (nt, gb) to remote sources")
    return {str(suite): _suite(path, str(suite), entry) for suite, entry in data.items()}


def suite_of(spec: TaskSpec, remote: Mapping[str, RemoteSuite], path: str = "") -> RemoteSuite:
    """The remote source of ``spec``'s suite, or an error naming the missing entry."""
    if spec.suite not in remote:
        raise RemoteSourceError(
            f"task {spec.name}: the remote-sources file {path or DEFAULT_REMOTE} has no entry "
            f"for suite {spec.suite!r}; add one, or give the task a local source")
    return remote[spec.suite]


def task_cache(task: str, name: str, downloads: str = DOWNLOADS) -> str:
    """Where the workflow caches one downloaded file of a task (an input, not a result)."""
    return f"{downloads}/tasks/{task}/{name}"


def remote_task_source(spec: TaskSpec, suite: RemoteSuite,
                       downloads: str = DOWNLOADS) -> dict[str, Any]:
    """The source mapping that builds ``spec`` from its downloaded files (build_task)."""
    names = list(suite.files_for(spec))
    roles = FORMATS[suite.format].required
    source: dict[str, Any] = {"format": suite.format, "kind": "official", "remote": True,
                              **{role: task_cache(spec.name, name, downloads)
                                 for role, name in zip(roles, names, strict=True)},
                              **suite.reader}
    if suite.format == "parquet" and "task_column" in suite.reader:
        source["task_name"] = spec.hub_config
    return source


def how_to_fetch(spec: TaskSpec, name: str, dest: str | Path) -> str:
    return (f"`ldarnet fetch-task {spec.name} --file {name} --out {dest}` (or the workflow "
            f"target: `snakemake {dest}`)")


def fetch_task_file(spec: TaskSpec, suite: RemoteSuite, name: str, dest: str | Path, *,
                    offline: bool = False, retries: int = 5, timeout: float = 60.0,
                    backoff: float = 1.0) -> dict:
    """Download one remote file of a task (``name`` from :meth:`RemoteSuite.files_for`)."""
    files = suite.files_for(spec)
    if name not in files:
        raise RemoteSourceError(f"task {spec.name}: no remote file {name!r}; its suite "
                                f"{spec.suite} has {list(files)}")
    return fetch(files[name], dest, offline=offline,
                 how_to_fetch=how_to_fetch(spec, name, dest),
                 how_to_pin=f"Pin the revision in {suite.where.split(':')[0]} with `{PIN_COMMAND}`",
                 extra={"task": spec.name, "suite": spec.suite, "file": name},
                 retries=retries, timeout=timeout, backoff=backoff)


def task_source(spec: TaskSpec, sources: Mapping[str, Mapping[str, Any]],
                remote: Mapping[str, RemoteSuite], remote_path: str = "") -> dict[str, Any]:
    """The source mapping of ``spec``: its local source, or its suite's remote files."""
    if not is_remote(spec.name, sources):
        return dict(sources[spec.name])
    source = remote_task_source(spec, suite_of(spec, remote, remote_path))
    local = sources.get(spec.name) or {}
    source.update({k: local[k] for k in ("kind", "note") if k in local})
    return source
