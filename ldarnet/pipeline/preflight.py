"""Pre-flight check of a workflow config's remote inputs: would every download work?

A paper run downloads hg38, the GENCODE annotation, 27 task data sets and, on the
release path, the authors' checkpoint; a moved file or an unpinned revision would
otherwise surface as a failed job after days of GPU time. :func:`check_sources` asks
each server about each input *without downloading it* (a ``HEAD``, or the record's
listing) and reports, per input: the HTTP status, the size, the commit a hub revision
resolves to, whether a checksum is published or pinned, and the verdict. Inputs the
workflow has already fetched and verified (a matching lock file, or a present genome
download) pass without network, so a re-check on a machine holding the caches is
meaningful offline too.

Exit codes of ``ldarnet check-sources``: 0 every input would work; 1 at least one would
fail (each is named); 2 the config itself is unusable; 3 no network (one line, nothing
checked). ``--pin`` resolves unpinned hub revisions to their commits (and an unpinned
checkpoint to the SHA-256 the hub publishes) and writes them into the config files.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ldarnet.data.download import parse_md5sum, url_basename
from ldarnet.data.remote import (
    HubFile,
    Probe,
    RemoteError,
    RemoteFile,
    UnreachableError,
    UrlFile,
    ZenodoFile,
    hub_failure,
    is_commit,
    offline_requested,
    probe,
    probe_url,
    read_lock,
    request,
    zenodo_files,
)
from ldarnet.foundation.atomic import write_text

EXIT_OK, EXIT_FAIL, EXIT_CONFIG, EXIT_OFFLINE = 0, 1, 2, 3
SCHEMA = Path("workflow/schemas/config.schema.yaml")
COLUMNS = ("input", "source", "status", "size", "commit", "checksum", "result")


class PreflightError(RemoteError):
    """A workflow config whose remote inputs cannot even be listed (the message says why)."""


@dataclass
class RemoteInput:
    """One file a workflow config would download."""

    name: str
    kind: str  # genome | annotation | task | checkpoint
    dest: str  # the workflow's cache path
    file: RemoteFile | None = None  # hub / Zenodo / URL file (tasks, checkpoints)
    url: str = ""  # genome / annotation download URL
    md5_url: str | None = None  # genome / annotation checksum listing
    sha256: str | None = None  # a pinned SHA-256 (checkpoints)
    revision_key: tuple[Path, tuple[str, ...]] | None = None  # where --pin writes a commit
    sha256_key: tuple[Path, tuple[str, ...]] | None = None  # where --pin writes a sha256

    @property
    def source(self) -> str:
        return self.file.describe() if self.file is not None else self.url


@dataclass
class Row:
    """The verdict on one input."""

    item: RemoteInput
    status: str = ""
    size: int | None = None
    commit: str | None = None
    checksum: str = ""
    result: str = "ok"
    ok: bool = True
    asked: bool = False  # a request was sent
    unreachable: bool = False
    resolved: dict[str, str] = field(default_factory=dict)  # what --pin may write


# ------------------------------------------------------------------------ the config
def _merge(base: dict, update: Mapping) -> dict:
    """Snakemake's rule for several --configfile: nested mappings merged, values replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_workflow_config(paths: Sequence[str | Path], root: Path = Path(".")) -> dict:
    """The merged, schema-validated and semantically checked workflow config."""
    from ldarnet.pipeline.config_check import WorkflowConfigError, check_config

    config: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise PreflightError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise PreflightError(f"config file {path} is not valid YAML: {err}") from None
        if not isinstance(data, Mapping):
            raise PreflightError(f"config file {path} is not a mapping of config keys")
        _merge(config, data)
    schema = root / SCHEMA
    if schema.is_file():
        from snakemake.utils import validate

        try:
            validate(config, str(schema))
        except Exception as err:  # snakemake's WorkflowError wraps the jsonschema message
            first = str(err).strip().splitlines()
            raise PreflightError(f"config {', '.join(map(str, paths))} does not match "
                                 f"{SCHEMA}: {' '.join(first[:3])}") from None
    try:
        check_config(config, root)
    except (WorkflowConfigError, ValueError) as err:
        raise PreflightError(str(err)) from None
    return config


def remote_inputs(config: Mapping[str, Any], config_file: str | Path,
                  root: Path = Path(".")) -> list[RemoteInput]:
    """Every file ``config`` would download, with the workflow's cache path of each.

    ``config_file`` is the file holding the model entries (where ``--pin`` writes a
    checkpoint's commit and SHA-256). The cache paths are those of the workflow's
    download rules (workflow/rules/*.smk); tests/pipeline/test_preflight.py holds them together.
    """
    from ldarnet.interop.checkpoint_source import (
        checkpoint_cache,
        checkpoint_file,
        is_checkpoint_entry,
    )
    from ldarnet.tasks.registry import load_registry
    from ldarnet.tasks.remote_sources import load_remote_sources, suite_of, task_cache
    from ldarnet.tasks.source_config import is_remote, load_sources

    inputs: list[RemoteInput] = []
    genome = config["genome"]
    if not genome.get("fasta") and genome.get("url"):
        inputs.append(RemoteInput(
            f"genome {genome['assembly']}", "genome",
            f"results/genome/{genome['assembly']}/source/{url_basename(genome['url'])}",
            url=genome["url"], md5_url=genome.get("md5_url")))
    bounds = config["boundaries"]
    if not bounds.get("exons") and bounds.get("annotation_url"):
        inputs.append(RemoteInput(
            "annotation", "annotation",
            f"results/annotation/{url_basename(bounds['annotation_url'])}",
            url=bounds["annotation_url"], md5_url=bounds.get("annotation_md5_url")))
    ev = config["evaluation"]
    sources = load_sources(root / ev["sources"]) if ev.get("sources") else {}
    remote_tasks = [t for t in config["tasks"] if is_remote(t, sources)]
    if remote_tasks:
        registry = load_registry(root / ev["registry"])
        remote_path = Path(ev["remote"])
        remote = load_remote_sources(root / remote_path)
        for task in remote_tasks:
            spec = registry[task]
            suite = suite_of(spec, remote, str(remote_path))
            key = None
            if suite.host == "huggingface":
                keys = (suite.suite, "revision")
                key = (remote_path, (*keys, task) if isinstance(suite.revision, Mapping)
                       else keys)
            for name, file in suite.files_for(spec).items():
                inputs.append(RemoteInput(f"task {task} {name}", "task",
                                          task_cache(task, name), file=file,
                                          revision_key=key))
    for name, entry in config["models"].items():
        if is_checkpoint_entry(entry):
            file = checkpoint_file(name, entry)
            sha = entry.get("sha256")
            inputs.append(RemoteInput(
                f"checkpoint {name}", "checkpoint", checkpoint_cache(name, entry), file=file,
                sha256=sha.lower() if sha else None,
                revision_key=(Path(config_file), ("models", name, "revision"))
                if isinstance(file, HubFile) else None,
                sha256_key=(Path(config_file), ("models", name, "sha256"))))
    return inputs


def models_file(paths: Sequence[str | Path]) -> str:
    """The last config file that defines model entries (where --pin writes checkpoint pins)."""
    for path in reversed([str(p) for p in paths]):
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, Mapping) and "models" in data:
            return path
    return str(paths[-1])


def preflight_rule_params(config: Mapping[str, Any],
                          configfiles: Sequence[str | Path]) -> dict[str, str]:
    """Parameters of the workflow's ``check_sources`` rule: the ``--config`` options that
    name the files Snakemake read, and every remote input (a change is a rerun reason)."""
    files = [str(f) for f in configfiles] or ["config/config.yaml"]
    sources = [item.source for item in remote_inputs(config, models_file(files))]
    return {"configs": " ".join(f"--config {f}" for f in files),
            "inputs": json.dumps(sources)}


# ------------------------------------------------------------------------- checking
class _Memo:
    """One request per checksum listing or Zenodo record, shared by the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        self._events: dict[str, threading.Event] = {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            event = self._events.get(key)
            owner = event is None
            if owner:
                event = self._events[key] = threading.Event()
        assert event is not None
        if owner:
            try:
                self._values[key] = ("ok", compute())
            except Exception as err:  # re-raised in every thread that asks
                self._values[key] = ("error", err)
            event.set()
        event.wait()
        kind, value = self._values[key]
        if kind == "error":
            raise value
        return value


def _cached(item: RemoteInput) -> str | None:
    """Why ``item`` needs no download (a verified lock, a present genome), else None."""
    dest = Path(item.dest)
    if item.file is None:
        return "present" if dest.is_file() else None
    lock, _ = read_lock(dest, item.file.identity(), item.sha256)
    if lock is None:
        return None
    commit = f", commit {lock['commit'][:12]}" if lock.get("commit") else ""
    return f"cached (lock: sha256 {lock['sha256'][:12]}{commit})"


def _md5_entry(item: RemoteInput, memo: _Memo, timeout: float) -> tuple[str | None, str]:
    """The published MD5 of a genome/annotation download (``md5:<hex>``), or why not."""
    if not item.md5_url:
        return None, "no checksum listing configured"

    def listing() -> dict[str, str]:
        status, _, body = request(item.md5_url, "GET", follow=True, timeout=timeout)
        if status != 200:
            raise RemoteError(f"checksum listing {item.md5_url}: HTTP {status}")
        return parse_md5sum(body.decode("utf-8", "replace"))

    try:
        entries = memo.get(item.md5_url, listing)
    except UnreachableError:
        raise
    except RemoteError as err:
        return None, str(err)
    name = url_basename(item.url)
    if name not in entries:
        return None, f"{item.md5_url} lists no checksum for {name}"
    return f"md5:{entries[name]}", ""


def _check_one(item: RemoteInput, memo: _Memo, timeout: float, offline: bool) -> Row:
    row = Row(item)
    cached = _cached(item)
    if cached is not None:
        row.status, row.result = cached, "ok (no download needed)"
        return row
    if offline:
        row.status, row.result, row.ok = "-", "not checked (offline)", False
        return row
    row.asked = True
    try:
        if item.file is None:
            answer = probe_url(item.url, timeout)
            checksum, why = _md5_entry(item, memo, timeout)
            _fill(row, answer)
            row.checksum = checksum or ""
            if not answer.found:
                row.result, row.ok = f"FAIL: HTTP {answer.status}", False
            elif checksum is None:
                row.result, row.ok = f"FAIL: {why}", False
            return row
        listing = None
        if isinstance(item.file, ZenodoFile):
            zfile = item.file
            listing = memo.get(f"zenodo:{zfile.base_url}:{zfile.record}",
                               lambda: zenodo_files(zfile.record, zfile.base_url, timeout))
        answer = probe(item.file, timeout, zenodo_listing=listing)
    except UnreachableError as err:
        row.status, row.result, row.ok, row.unreachable = "no answer", f"FAIL: {err}", False, True
        return row
    except RemoteError as err:
        row.status, row.result, row.ok = "error", f"FAIL: {err}", False
        return row
    _fill(row, answer)
    _verdict(row, answer)
    return row


def _fill(row: Row, answer: Probe) -> None:
    row.status = str(answer.status)
    row.size = answer.size
    row.commit = answer.commit
    row.checksum = answer.checksum or ""


def _verdict(row: Row, answer: Probe) -> None:
    """ok / FAIL for a hub, Zenodo or URL file from what the server said."""
    item, file = row.item, row.item.file
    problems: list[str] = []
    if not answer.found:
        reason = (hub_failure(file, answer) if isinstance(file, HubFile)
                  else answer.message or f"HTTP {answer.status}")
        row.result, row.ok = f"FAIL: {reason}", False
        return
    server_sha = answer.checksum.removeprefix("sha256:") if (answer.checksum or "").startswith(
        "sha256:") else None
    if isinstance(file, HubFile):
        if not is_commit(file.revision):
            problems.append(f"unpinned: revision {file.revision!r} is not a commit"
                            + (f" (now {answer.commit[:12]})" if answer.commit else ""))
            if answer.commit and item.revision_key is not None:
                row.resolved["revision"] = answer.commit
        elif answer.commit != file.revision:
            problems.append(f"the hub resolved the pinned commit to {answer.commit!r}")
    if item.kind == "checkpoint":
        if item.sha256 is None:
            problems.append("unpinned: no sha256 in the config"
                            + (f" (the server publishes {server_sha[:12]}...)"
                               if server_sha else ""))
            if server_sha:
                row.resolved["sha256"] = server_sha
        elif server_sha is not None and server_sha != item.sha256:
            problems.append(f"the server's sha256 {server_sha[:12]}... differs from the pinned "
                            f"{item.sha256[:12]}...")
        elif isinstance(file, UrlFile):
            row.checksum = f"sha256:{item.sha256} (pinned)"
    if not row.checksum:
        row.checksum = "none (recorded on first download)"
    if problems:
        row.result, row.ok = "FAIL: " + "; ".join(problems), False


def check_sources(inputs: Sequence[RemoteInput], *, offline: bool = False,
                  timeout: float = 20.0, workers: int = 8) -> list[Row]:
    """One :class:`Row` per input, in input order (requests run on ``workers`` threads)."""
    memo = _Memo()
    offline = offline_requested(offline)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda item: _check_one(item, memo, timeout, offline), inputs))


def offline_line(rows: Sequence[Row], forced: bool) -> str | None:
    """The one-line answer when nothing could be asked (no network), else None."""
    needing = [r for r in rows if not r.ok]
    if not needing:
        return None
    if forced:
        why = "network access is off (LDARNET_OFFLINE=1)"
    elif all(r.unreachable for r in needing):
        hosts = sorted({urllib.parse.urlsplit(r.item.file.url() if r.item.file else r.item.url)
                        .hostname or "?" for r in needing})
        why = f"no network: no answer from {', '.join(hosts)}"
    else:
        return None
    cached = len(rows) - len(needing)
    return (f"ldarnet check-sources: offline: {why}; {len(needing)} of {len(rows)} remote "
            f"inputs not checked ({cached} already downloaded and verified). Run it on a "
            "machine with internet access (the host that runs the workflow's downloads)")


# --------------------------------------------------------------------------- output
def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _cells(row: Row, short: bool) -> list[str]:
    commit = row.commit or "-"
    checksum = row.checksum or "-"
    source = row.item.source
    if short:
        commit = commit[:12]
        checksum = re.sub(r"([0-9a-f]{12})[0-9a-f]{20,}", r"\1...", checksum)
        source = re.sub(r"@([0-9a-f]{12})[0-9a-f]{28}/", r"@\1/", source)
    return [row.item.name, source, row.status or "-",
            _size(row.size) if short else (str(row.size) if row.size is not None else "-"),
            commit, checksum, row.result]


def format_table(rows: Sequence[Row]) -> str:
    """The report as an aligned text table (one line per input)."""
    table = [list(COLUMNS)] + [_cells(r, short=True) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_tsv(rows: Sequence[Row], path: str | Path) -> None:
    """The report as TSV (full commits and checksums), written atomically."""
    lines = ["\t".join(COLUMNS)] + ["\t".join(_cells(r, short=False)) for r in rows]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------ pins
_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.-]+|\"[^\"]+\"|'[^']+'):"
                       r"(?P<sep>\s*)(?P<value>[^#]*?)(?P<comment>\s+#.*)?$")


def set_yaml_scalar(path: str | Path, keys: Sequence[str], value: str) -> None:
    """Replace the scalar at ``keys`` in the YAML file ``path``, keeping comments and layout.

    Only an existing ``key: value`` line is rewritten (block mappings, the layout of
    this project's configs); the file is re-read afterwards and must hold ``value`` at
    ``keys``, otherwise nothing is written.
    """
    path = Path(path)
    lines = path.read_text().splitlines(keepends=True)
    stack: list[tuple[int, str]] = []
    target = None
    for index, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        match = _KEY_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"].strip("\"'")))
        if [k for _, k in stack] == list(keys):
            target = (index, match)
            break
    if target is None:
        raise PreflightError(f"{path}: no line `{': '.join(keys)}` to write {value!r} into; "
                             f"add `{keys[-1]}: {value}` under {'.'.join(keys[:-1])}")
    index, match = target
    newline = "\n" if lines[index].endswith("\n") else ""
    lines[index] = (f"{match['indent']}{match['key']}:{match['sep'] or ' '}{value}"
                    f"{match['comment'] or ''}{newline}")
    text = "".join(lines)
    node: Any = yaml.safe_load(text)
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    if str(node) != value:
        raise PreflightError(f"{path}: could not write {'.'.join(keys)} = {value!r} safely; "
                             "set it by hand")
    write_text(path, text)


def pin(rows: Sequence[Row]) -> list[str]:
    """Write the commits and SHA-256s the servers reported into the config files.

    A key shared by several inputs (one revision for a suite) is written only when all
    of them resolved to the same commit; otherwise the per-task mapping to paste is
    returned in the message. Returns one line per key written or left to the user.
    """
    wanted: dict[tuple[Path, tuple[str, ...]], dict[str, list[str]]] = {}
    for row in rows:
        for what, value in row.resolved.items():
            key = row.item.revision_key if what == "revision" else row.item.sha256_key
            if key is None:
                continue
            wanted.setdefault(key, {}).setdefault(value, []).append(row.item.name)
    messages = []
    for (path, keys), values in sorted(wanted.items(), key=lambda kv: (str(kv[0][0]),
                                                                       kv[0][1])):
        if len(values) == 1:
            value = next(iter(values))
            set_yaml_scalar(path, keys, value)
            messages.append(f"pinned {path}: {'.'.join(keys)} = {value}")
        else:
            per_task = {name.split()[1]: value for value, names in values.items()
                        for name in names}
            block = "\n".join(f"    {task}: {value}" for task, value in per_task.items())
            messages.append(f"not pinned {path}: {'.'.join(keys)}: the tasks resolve to "
                            f"different commits; replace it by a per-task mapping:\n"
                            f"  {keys[-1]}:\n{block}")
    return messages
