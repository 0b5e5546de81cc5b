"""Build a canonical task directory (``train.csv``, ``test.csv``, ``task.json``) from a source.

Downstream data arrives in many shapes: the HuggingFace parquet conversions of NT and
Genomic Benchmarks, the GUE proxy CSVs, the iEnhancer-2L FASTA files, Genomic
Benchmarks interval files plus a reference genome, and windows derived from GENCODE.
:func:`build_task` turns any of them into the one format of
:mod:`ldarnet.tasks.task_data`, checking every row exactly as ``read_split`` will,
and records where the data came from (``kind``: official / proxy / derived / slice) in
the manifest, so that no table can silently present proxy numbers as NT numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ldarnet import __version__
from ldarnet.data.fasta import Fasta, iter_records, names_hint, open_fasta
from ldarnet.foundation.atomic import remove, temp_path
from ldarnet.foundation.checksum import file_sha256
from ldarnet.foundation.csv_table import read_csv_rows
from ldarnet.foundation.yaml_config import read_yaml
from ldarnet.tasks import derived
from ldarnet.tasks.formats import COMMON_KEYS, FORMATS, KINDS
from ldarnet.tasks.registry import TaskSpec
from ldarnet.tasks.task_data import (
    MANIFEST,
    SPLITS,
    TaskDataError,
    check_row,
    read_checked_rows,
    write_split_to,
)
from ldarnet.tasks.task_split import TaskSplit

_RC = str.maketrans("ACGTRYKMSWBDHVN", "TGCAYRMKSWVHDBN")

Rows = tuple[list[str], list[int]]
Loaded = tuple[dict[str, Rows], dict[str, Any], str]


class TaskSourceError(TaskDataError):
    """A source mapping that cannot be built (unknown format, missing or unknown keys)."""


# --------------------------------------------------------------------------------------
# source mapping checks
# --------------------------------------------------------------------------------------


def _source_error(spec: TaskSpec, text: str) -> TaskSourceError:
    return TaskSourceError(f"task {spec.name}: {text}")


def _check_source(spec: TaskSpec, source: Mapping) -> str:
    if not isinstance(source, Mapping):
        raise _source_error(spec, f"the source must be a mapping with a 'format' key, got "
                            f"{type(source).__name__}")
    if "format" not in source:
        raise _source_error(spec, f"source key 'format' is missing; use one of "
                            f"{sorted(FORMATS)}")
    fmt = source["format"]
    if fmt not in FORMATS:
        raise _source_error(spec, f"unknown source format {fmt!r} (key 'format'); use one of "
                            f"{sorted(FORMATS)}")
    required, optional = FORMATS[fmt].required, FORMATS[fmt].optional
    for key in required:
        if key not in source or source[key] is None or source[key] == "":
            raise _source_error(spec, f"source format {fmt!r} needs the key {key!r} (required "
                                f"keys: {list(required)})")
    allowed = set(required) | set(optional) | set(COMMON_KEYS)
    unknown = sorted(str(key) for key in source if key not in allowed)
    if unknown:
        raise _source_error(spec, f"unknown source key(s) {unknown} for format {fmt!r}; "
                            f"allowed: {sorted(allowed)}")
    kind = source.get("kind", FORMATS[fmt].default_kind)
    if kind not in KINDS:
        raise _source_error(spec, f"source key 'kind' is {kind!r}; use one of {KINDS}")
    return fmt


def _existing_file(spec: TaskSpec, key: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise _source_error(spec, f"source key {key!r} must be a file path, got {value!r}")
    path = Path(value)
    if not path.is_file():
        raise _source_error(spec, f"source key {key!r}: file {path} does not exist (paths are "
                            f"relative to the current directory {Path.cwd()})")
    return path


def _source_files(source: Mapping) -> str:
    """The file paths a source mapping names, for messages about the source as a whole."""
    files: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (str, os.PathLike)) and ("/" in str(value) or "." in str(value)):
            files.append(str(value))

    walk({k: v for k, v in source.items() if k not in COMMON_KEYS})
    return ", ".join(files) or "none"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _typed(spec: TaskSpec, source: Mapping, key: str, kind: type, default: Any) -> Any:
    value = source.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _source_error(spec, f"source key {key!r} must be {kind.__name__}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# loaders: each returns ({split: (sequences, labels)}, details for the manifest, note)
# --------------------------------------------------------------------------------------


def _task_rows(spec: TaskSpec, source: Mapping, table: Any, path: Path,
               positions: np.ndarray) -> tuple[Any, np.ndarray, dict[str, int] | None]:
    """Keep the rows of this task when the file has a task column (it may hold several).

    The NT benchmark's parquet files carry a ``task`` column; a file holding several
    tasks must be filtered, and a filter that keeps nothing means the name is wrong, not
    that the task is empty. Returns the kept rows and the rows per task value seen.
    """
    column = source.get("task_column", "task")
    if column not in table.columns:
        return table, positions, None  # one file per task: nothing to filter
    wanted = str(source.get("task_name", spec.name))
    values = table[column].astype(str)
    seen = {str(k): int(v) for k, v in values.value_counts().sort_index().items()}
    keep = (values == wanted).to_numpy(dtype=bool)
    if not keep.any():
        shown = ", ".join(f"{k} ({v})" for k, v in list(seen.items())[:20])
        raise TaskDataError(f"{path}: no row has {column} == {wanted!r} (values: {shown}); "
                            "the file does not hold this task: check the registry's "
                            "hub_config and the remote file template")
    return table[keep], positions[keep], seen


def _load_parquet(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    import pandas as pd

    out: dict[str, Rows] = {}
    details: dict[str, Any] = {}
    label_column = source.get("label_column", "label")
    for split in SPLITS:
        path = _existing_file(spec, split, source[split])
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for bad files
            raise TaskDataError(f"{path}: not a readable parquet file ({err}); download it "
                                "again") from err
        seq_column = source.get("sequence_column") or next(
            (c for c in ("sequence", "seq") if c in table.columns), None)
        missing = [c for c in (seq_column, label_column) if c is None or c not in table.columns]
        if missing:
            raise TaskDataError(f"{path}: missing column(s) "
                                f"{[c or 'sequence/seq' for c in missing]} (columns "
                                f"{list(table.columns)}); give 'sequence_column' / "
                                "'label_column' in the source if they are named differently")
        rows_in_file = len(table)
        table, positions, task_values = _task_rows(spec, source, table, path,
                                                   np.arange(rows_in_file))
        sequences: list[str] = []
        labels: list[int] = []
        for row, sequence, label in zip(positions.tolist(), table[seq_column].tolist(),
                                        table[label_column].tolist(), strict=True):
            seq, value = check_row(sequence, label, spec, f"{path} row {row + 1}")
            sequences.append(seq)
            labels.append(value)
        if not sequences:
            raise TaskDataError(f"{path}: no rows" + (f" of task {spec.name} (column 'task')"
                                                      if "task" in table.columns else "")
                                + f"; it is the {split} split of task {spec.name}: download "
                                "it again or fix the source")
        out[split] = (sequences, labels)
        details[split] = {"file": str(path), "rows_in_file": rows_in_file,
                          "sequence_column": seq_column, "label_column": label_column,
                          "filtered_by_task_column": task_values is not None,
                          "task_column_values": task_values}
    return out, details, ""


_ARCHIVE_MEMBER = re.compile(r"^(?P<task>[^/]+)/(?P<split>[^/]+)/(?P<cls>[^/]+)/(?P<file>[^/]+)$")


def _load_gb_archive(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    """The official Genomic Benchmarks archive: ``<task>/{train,test}/<class>/<id>.txt``.

    The class of a sequence is the name of its directory, so class names come from the
    data; the integer label is that name's position in the registry's ``classes``. A
    class directory the registry does not list, a registry class with no directory, or
    any file outside the layout is an error (a changed archive must not be half-read).
    Rows are read in (class, file name) order, so the result does not depend on the
    order of the zip listing (GB's own loader uses the file system's listing order).
    """
    path = _existing_file(spec, "archive", source["archive"])
    if not zipfile.is_zipfile(path):
        raise TaskDataError(f"{path}: not a zip archive; download it again")
    members: dict[str, dict[str, list[str]]] = {split: {} for split in SPLITS}
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")
                 and not n.startswith("__MACOSX/") and not PurePosixPath(n).name.startswith(".")]
        for name in names:
            match = _ARCHIVE_MEMBER.match(name)
            if (not match or match["task"] != spec.name or match["split"] not in SPLITS
                    or not match["file"].endswith(".txt")):
                raise TaskDataError(f"{path}: unexpected member {name!r}; a Genomic Benchmarks "
                                    f"archive holds {spec.name}/{{train,test}}/<class>/<id>.txt")
            members[match["split"]].setdefault(match["cls"], []).append(name)
        out: dict[str, Rows] = {}
        details: dict[str, Any] = {"archive": str(path), "classes_found": {}}
        for split in SPLITS:
            found = sorted(members[split])
            details["classes_found"][split] = found
            unknown = [c for c in found if c not in spec.classes]
            absent = [c for c in spec.classes if c not in found]
            if unknown or absent:
                raise TaskDataError(
                    f"{path}: the {split} split has class directories {found}, the registry "
                    f"lists {list(spec.classes)} (unknown: {unknown}, absent: {absent}); the "
                    "class names come from the archive, so fix config/tasks.tsv")
            sequences: list[str] = []
            labels: list[int] = []
            for class_name in spec.classes:
                label = spec.classes.index(class_name)
                for name in sorted(members[split][class_name]):
                    text = archive.read(name).decode("ascii", errors="replace")
                    seq, value = check_row(text, label, spec, f"{path}:{name}")
                    sequences.append(seq)
                    labels.append(value)
            out[split] = (sequences, labels)
    return out, details, ""


def read_expected_counts(path: str | Path, task: str) -> dict[str, dict[str, int]]:
    """``{split: {class: rows}}`` of ``task`` in an expected-counts table (task, split, class,
    rows), the published size of each class that a download is checked against."""
    from ldarnet.foundation.csv_table import read_csv_rows

    counts: dict[str, dict[str, int]] = {}
    for line, row in read_csv_rows(path, ("task", "split", "class", "rows"), TaskDataError,
                                   delimiter="\t"):
        if row["task"] != task:
            continue
        value = (row["rows"] or "").strip()
        if not value.isdigit():
            raise TaskDataError(f"{path}:{line}: rows {row['rows']!r} is not a count")
        counts.setdefault(row["split"], {})[row["class"]] = int(value)
    if not counts:
        raise TaskDataError(f"{path}: no expected counts for task {task}; add its rows "
                            "(task, split, class, rows) or drop expected_counts")
    return counts


def _check_expected_counts(spec: TaskSpec, source: Mapping, fmt: str,
                           loaded: dict[str, Rows]) -> dict[str, Any] | None:
    """Compare the class sizes of the loaded splits with the published ones.

    For an archive (class names from directory names) this checks the download is the
    published one. For a parquet file with integer labels it is also the only evidence
    for which integer is which class: the registry's order is accepted only if the
    counts confirm it and no other assignment of names to integers would fit them as
    well (with two classes of equal size the data cannot tell them apart).
    """
    if not source.get("expected_counts"):
        return None
    path = _existing_file(spec, "expected_counts", source["expected_counts"])
    expected = read_expected_counts(path, spec.name)
    observed = {split: [int(n) for n in np.bincount(np.asarray(labels, dtype=np.int64),
                                                    minlength=spec.num_classes)]
                for split, (_, labels) in loaded.items()}
    mismatched = []
    for split in SPLITS:
        want = [expected.get(split, {}).get(name) for name in spec.classes]
        if want != observed[split]:
            got = dict(zip(spec.classes, observed[split], strict=True))
            published = dict(zip(spec.classes, want, strict=True))
            mismatched.append(f"{split}: got {got}, published {published}")
    if mismatched:
        raise TaskDataError(f"task {spec.name}: class sizes differ from {path} "
                            f"({'; '.join(mismatched)}); the download is not the published "
                            "data set, or the label order is not the registry's")
    result: dict[str, Any] = {"file": str(path), "matched": True}
    if fmt == "parquet":
        ambiguous = [f"{spec.classes[i]}={spec.classes[j]}"
                     for i in range(spec.num_classes) for j in range(i + 1, spec.num_classes)
                     if all(observed[split][i] == observed[split][j] for split in SPLITS)]
        if ambiguous:
            raise TaskDataError(
                f"task {spec.name}: the integer labels cannot be matched to class names from "
                f"the data: classes {', '.join(ambiguous)} have the same number of rows in "
                "every split, so the order of config/tasks.tsv cannot be confirmed. Use a "
                "source whose files carry the class names (the Genomic Benchmarks archive, "
                "format gb_archive)")
        result["label_order"] = "confirmed by class sizes"
    return result


def _download_locks(source: Mapping) -> dict[str, Any] | None:
    """The lock files of a remote source's downloads (commit, sha256), for the manifest."""
    if not source.get("remote"):
        return None
    locks: dict[str, Any] = {}
    for key in ("train", "test", "archive"):
        value = source.get(key)
        if isinstance(value, str):
            lock = Path(f"{value}.json")
            try:
                locks[key] = json.loads(lock.read_text()) if lock.is_file() else None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                locks[key] = None
    return locks


def _load_csv(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    out: dict[str, Rows] = {}
    for split in SPLITS:
        path = _existing_file(spec, split, source[split])
        out[split] = read_checked_rows(path, spec)
        if not out[split][0]:
            raise TaskDataError(f"{path}: no rows (only a header, or an empty file); it is the "
                                f"{split} split of task {spec.name} (source key {split!r}): "
                                "download or rebuild it")
    return out, {}, ""


def _load_fasta_classes(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    out: dict[str, Rows] = {}
    details: dict[str, Any] = {}
    for split in SPLITS:
        mapping = source[split]
        if not isinstance(mapping, Mapping) or not mapping:
            raise _source_error(spec, f"source key {split!r} must map class names to FASTA "
                                f"files, e.g. {{{spec.classes[0]!r}: 'a.fa.gz'}}")
        sequences: list[str] = []
        labels: list[int] = []
        per_file: dict[str, int] = {}
        for class_name, file in mapping.items():
            if class_name not in spec.classes:
                raise _source_error(spec, f"source key {split!r}: class {class_name!r} is not "
                                    f"one of the task's classes {list(spec.classes)}")
            path = _existing_file(spec, f"{split}.{class_name}", file)
            label = spec.classes.index(class_name)
            n = 0
            for record in iter_records(path, unique_names=False):  # names are labels here
                seq, value = check_row(record.sequence, label, spec,
                                       f"{path}:{record.line} (record {record.name})")
                sequences.append(seq)
                labels.append(value)
                n += 1
            per_file[str(path)] = n
        out[split] = (sequences, labels)
        details[split] = per_file
    return out, details, ""


def _load_gb_slice(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    path = _existing_file(spec, "csv", source["csv"])
    required = ("dataset", "split", "label_name", "seq")
    out: dict[str, Rows] = {split: ([], []) for split in SPLITS}
    for line, row in read_csv_rows(path, required, TaskDataError,
                                   what="Genomic Benchmarks slice table"):
        where = f"{path}:{line}"
        if row["dataset"] != spec.name:
            raise TaskDataError(f"{where}: row of dataset {row['dataset']!r}, not task "
                                f"{spec.name!r}; use the slice file of this task")
        if row["split"] not in SPLITS:
            raise TaskDataError(f"{where}: split {row['split']!r} is not one of {SPLITS}")
        if row["label_name"] not in spec.classes:
            raise TaskDataError(f"{where}: class {row['label_name']!r} is not one of the "
                                f"task's classes {list(spec.classes)}")
        seq, value = check_row(row["seq"], spec.classes.index(row["label_name"]), spec, where)
        out[row["split"]][0].append(seq)
        out[row["split"]][1].append(value)
    for split in SPLITS:
        if not out[split][0]:
            raise TaskDataError(f"{path}: no rows of the {split} split (column 'split'); "
                                f"task {spec.name} needs train and test rows")
    return out, {"file": str(path)}, ""


def _gb_class_files(spec: TaskSpec, root: Path, split: str) -> dict[str, Path]:
    folder = root / split
    if not folder.is_dir():
        raise _source_error(spec, f"source key 'intervals': {folder} does not exist; a "
                            "Genomic Benchmarks task directory holds train/ and test/")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        for suffix in (".csv.gz", ".csv"):
            if path.name.endswith(suffix):
                files[path.name[: -len(suffix)]] = path
    if set(files) != set(spec.classes):
        raise _source_error(spec, f"{folder} has class files {sorted(files)} but the task's "
                            f"classes are {list(spec.classes)} (config/tasks.tsv); one "
                            "<class>.csv.gz per class is expected")
    return files


def _load_gb_intervals(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    root = Path(source["intervals"])
    if not root.is_dir():
        raise _source_error(spec, f"source key 'intervals': directory {root} does not exist")
    if list(spec.classes) != sorted(spec.classes):
        raise _source_error(spec, f"classes {list(spec.classes)} are not in alphabetical order;"
                            " Genomic Benchmarks numbers its classes alphabetically, so "
                            "config/tasks.tsv must list them that way")
    metadata = root / "metadata.yaml"
    if metadata.is_file():
        data = read_yaml(metadata, "Genomic Benchmarks metadata", TaskSourceError) or {}
        declared = sorted(data.get("classes") or {}) if isinstance(data, Mapping) else []
        if declared != sorted(spec.classes):
            raise _source_error(spec, f"{metadata} declares classes {declared}, the registry "
                                f"{list(spec.classes)}; fix config/tasks.tsv")
    contigs_only = _typed(spec, source, "contigs_only", bool, False)
    region_map = source.get("region_map") or {}
    if not isinstance(region_map, Mapping):
        raise _source_error(spec, "source key 'region_map' must map interval regions to "
                            "FASTA record names")
    ref = open_fasta(_existing_file(spec, "fasta", source["fasta"]))
    try:
        out, skipped, missing_regions = _fetch_intervals(spec, root, ref, contigs_only,
                                                         region_map)
    finally:
        ref.close()
    details = {"intervals": str(root), "fasta": str(ref.path), "contigs_only": contigs_only,
               "skipped": skipped, "regions_not_in_fasta": sorted(missing_regions)[:50]}
    return out, details, ""


def _fetch_intervals(spec: TaskSpec, root: Path, ref: Fasta, contigs_only: bool,
                     region_map: Mapping) -> tuple[dict[str, Rows], dict, set[str]]:
    out: dict[str, Rows] = {}
    skipped: dict[str, dict[str, int]] = {}
    missing_regions: set[str] = set()
    for split in SPLITS:
        sequences: list[str] = []
        labels: list[int] = []
        skipped[split] = {"region_not_in_fasta": 0, "beyond_record_end": 0}
        for class_name, path in _gb_class_files(spec, root, split).items():
            label = spec.classes.index(class_name)
            for where, region, start, end, strand in _interval_rows(path):
                record = str(region_map.get(region, region))
                if record not in ref:
                    if contigs_only:
                        skipped[split]["region_not_in_fasta"] += 1
                        missing_regions.add(region)
                        continue
                    raise TaskDataError(
                        f"{where}: region {region!r} is not a record of {ref.path} (records: "
                        f"{names_hint(ref.names())}); use the reference named in "
                        f"{root / 'metadata.yaml'}, map names with 'region_map', or set "
                        "'contigs_only: true' to skip such intervals")
                if end > ref.length(record):
                    if contigs_only:
                        skipped[split]["beyond_record_end"] += 1
                        continue
                    raise TaskDataError(
                        f"{where}: interval {region}:{start}-{end} ends beyond record "
                        f"{record!r} ({ref.length(record)} bp) of {ref.path}; wrong reference "
                        "assembly? ('contigs_only: true' skips it for a partial FASTA)")
                seq = ref.fetch(record, start, end).upper()
                if strand == "-":
                    seq = seq.translate(_RC)[::-1]
                seq, value = check_row(seq, label, spec, where)
                sequences.append(seq)
                labels.append(value)
        out[split] = (sequences, labels)
    return out, skipped, missing_regions


def _interval_rows(path: Path) -> Iterator[tuple[str, str, int, int, str]]:
    """``(where, region, start, end, strand)`` of a Genomic Benchmarks interval file."""
    required = ("region", "start", "end", "strand")
    for line, row in read_csv_rows(path, required, TaskDataError,
                                   what="Genomic Benchmarks interval file"):
        where = f"{path}:{line}"
        try:
            start, end = int(row["start"]), int(row["end"])
        except (TypeError, ValueError):
            raise TaskDataError(f"{where}: start/end {row['start']!r}/{row['end']!r} are "
                                "not integers") from None
        if start < 0 or end < start:
            raise TaskDataError(f"{where}: bad interval {start}-{end} (0-based, half-open)")
        strand = (row["strand"] or "+").strip() or "+"
        if strand not in ("+", "-"):
            raise TaskDataError(f"{where}: strand {row['strand']!r} is not '+', '-' or empty")
        yield where, row["region"], start, end, strand


def _load_derived(spec: TaskSpec, task: derived.DerivedTask) -> Loaded:
    out: dict[str, Rows] = {}
    for split in SPLITS:
        sequences: list[str] = []
        labels: list[int] = []
        for w in task.split(split):
            where = f"derived {w.kind} window {w.contig}:{w.start}-{w.end}({w.strand})"
            seq, value = check_row(w.sequence, w.label, spec, where)
            sequences.append(seq)
            labels.append(value)
        out[split] = (sequences, labels)
    return out, task.stats, task.note


def _load_derived_splice(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    site = source["site"]
    needed = {"donor": 2, "acceptor": 2, "all": 3}.get(site)
    if needed is None:
        raise _source_error(spec, f"source key 'site' is {site!r}; use donor, acceptor or all")
    if spec.num_classes != needed:
        raise _source_error(spec, f"site {site!r} gives {needed} classes but the task has "
                            f"{spec.num_classes} ({list(spec.classes)})")
    task = derived.splice_windows(
        _existing_file(spec, "exons", source["exons"]),
        _existing_file(spec, "fasta", source["fasta"]), site,
        _typed(spec, source, "window", int, spec.length or 600),
        test_fraction=_typed(spec, source, "test_fraction", float, 0.2),
        min_distance=_typed(spec, source, "min_distance", int, 50), seed=seed)
    return _load_derived(spec, task)


def _load_derived_promoter(spec: TaskSpec, source: Mapping, seed: int) -> Loaded:
    if spec.num_classes != 2:
        raise _source_error(spec, f"a derived promoter task has 2 classes, the task has "
                            f"{spec.num_classes}")
    if not source.get("exons") and not source.get("transcripts"):
        raise _source_error(spec, "source format 'derived_promoter' needs the key 'exons' "
                            "and/or 'transcripts' (where the TSSs come from)")
    task = derived.promoter_windows(
        _existing_file(spec, "fasta", source["fasta"]),
        exons=_existing_file(spec, "exons", source["exons"]) if source.get("exons") else None,
        transcripts=(_existing_file(spec, "transcripts", source["transcripts"])
                     if source.get("transcripts") else None),
        upstream=_typed(spec, source, "upstream", int, 249),
        downstream=_typed(spec, source, "downstream", int, 50),
        exclusion=_typed(spec, source, "exclusion", int, 1000),
        tss_spacing=_typed(spec, source, "tss_spacing", int, 100),
        test_fraction=_typed(spec, source, "test_fraction", float, 0.2), seed=seed)
    return _load_derived(spec, task)


# The reader of every format of ldarnet.tasks.formats.FORMATS (tests/tasks: same keys).
LOADERS: dict[str, Callable[[TaskSpec, Mapping, int], Loaded]] = {
    "parquet": _load_parquet,
    "gb_archive": _load_gb_archive,
    "csv": _load_csv,
    "fasta_classes": _load_fasta_classes,
    "gb_slice": _load_gb_slice,
    "gb_intervals": _load_gb_intervals,
    "derived_splice": _load_derived_splice,
    "derived_promoter": _load_derived_promoter,
}


# --------------------------------------------------------------------------------------
# subsampling and writing
# --------------------------------------------------------------------------------------


def stratified_subsample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of a class-stratified sample of ``n`` rows (all rows if fewer).

    Each class gets its proportional share rounded by the largest-remainder rule, so
    every class count is within one row of ``n * proportion`` and the total is exactly
    ``n``; rows within a class are drawn without replacement by ``rng``.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / counts.sum()
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - int(take.sum())]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
              for c, k in zip(classes, take, strict=True) if k > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _check_subsample(spec: TaskSpec, subsample: Mapping[str, int] | None) -> dict[str, int]:
    if subsample is None:
        return {}
    if not isinstance(subsample, Mapping):
        raise _source_error(spec, f"subsample must map split names to row counts, e.g. "
                            f"{{'train': 1000}}, got {subsample!r}")
    result = {}
    for split, n in subsample.items():
        if split not in SPLITS:
            raise _source_error(spec, f"subsample split {split!r} is not one of {SPLITS}")
        if n is None:
            continue
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise _source_error(spec, f"subsample[{split!r}] = {n!r} must be a positive "
                                "number of rows")
        result[split] = int(n)
    return result


def _class_counts(spec: TaskSpec, labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=spec.num_classes)
    return {name: int(counts[i]) for i, name in enumerate(spec.classes)}


def build_task(spec: TaskSpec, source: Mapping, out_dir: str | Path, *,
               subsample: Mapping[str, int] | None = None, seed: int = 0) -> dict:
    """Build ``out_dir/{train.csv,test.csv,task.json}`` for ``spec`` from ``source``.

    ``source["format"]`` selects the reader; paths are relative to the current
    directory. Keys (``kind`` and ``note`` are allowed with every format; ``kind``
    overrides the default given in brackets, ``note`` is copied to the manifest):

    * ``parquet`` [official]: ``train``, ``test`` = parquet files (HuggingFace
      downloads); optional ``sequence_column`` (default ``sequence`` or ``seq``,
      whichever exists), ``label_column`` (default ``label``), ``task_column`` (default
      ``task``) and ``task_name`` (default: the task name): when the file has the task
      column, only rows whose value is ``task_name`` are kept (a file may hold several
      tasks), and none kept is an error; ``remote: true`` records that the files are
      locked downloads (their locks go into the manifest).
    * ``gb_archive`` [official]: ``archive`` = the Genomic Benchmarks zip
      (``<task>/{train,test}/<class>/<id>.txt``); the class of a sequence is its
      directory's name, its label that name's position in the registry's classes.
    * ``expected_counts`` (parquet, gb_archive): a TSV (task, split, class, rows) of the
      published class sizes; the loaded splits must match it, and integer labels are
      only accepted when the sizes confirm the registry's class order.
    * ``csv`` [proxy]: ``train``, ``test`` = CSV (.gz) files with ``sequence,label``.
    * ``fasta_classes`` [proxy]: ``train``, ``test`` = ``{class name: FASTA (.gz)}``.
    * ``gb_slice`` [slice]: ``csv`` = a Genomic Benchmarks slice table (dataset, split,
      label_name, ..., seq); label = index of label_name in the task's classes.
    * ``gb_intervals`` [official]: ``intervals`` = a Genomic Benchmarks task directory
      (``train|test/<class>.csv.gz``: id, region, start, end, strand; 0-based half-open,
      empty strand = '+'), ``fasta`` = reference holding the regions (plain or bgzip;
      a ``.fai`` is used if present, a small file without one is read into memory);
      optional ``contigs_only`` (bool, default false: skip, and count in the manifest,
      intervals whose region is not in the FASTA or that run past the record's end,
      e.g. with the demo slice) and ``region_map`` (``{interval region: FASTA record}``).
      Sequence = ``ref[region][start:end]``, reverse-complemented on '-', upper case.
    * ``derived_splice`` [derived]: ``exons`` (exon table CSV or GTF), ``fasta``,
      ``site`` (``donor`` | ``acceptor`` | ``all``); optional ``window`` (default: the
      task length, else 600), ``test_fraction`` (0.2), ``min_distance`` (50).
      See :mod:`ldarnet.tasks.derived`.
    * ``derived_promoter`` [derived]: ``fasta`` and at least one of ``exons`` /
      ``transcripts`` (canonical transcript TSV); optional ``upstream`` (249),
      ``downstream`` (50), ``exclusion`` (1000), ``tss_spacing`` (100),
      ``test_fraction`` (0.2).

    Every row is checked like :func:`~ldarnet.tasks.task_data.read_split`.
    ``subsample = {"train": N, "test": M}`` keeps a class-stratified random sample of
    N (M) rows of that split (a smaller split is kept whole); ``seed`` drives it (and
    the derived tasks' draws), each split with its own stream.

    The manifest (returned and written as ``task.json``) holds task, suite, group,
    label, length, classes, format, kind, note, the source mapping, format-specific
    ``details`` (skipped intervals, derivation counts...), ``subsample`` (null or
    ``{"train": N, "test": M, "seed": s}``) and per split (``splits.train`` /
    ``splits.test``): ``file``, ``sha256``, ``bytes``, ``rows`` and ``counts``
    (``{class name: rows}``) after subsampling, ``rows_before_subsample`` and
    ``counts_before_subsample``. All three files are written to temporaries and
    renamed at the end (the old manifest is removed first, so a directory with a
    ``task.json`` is always complete); on any error nothing new is left behind.
    """
    fmt = _check_source(spec, source)
    sample_sizes = _check_subsample(spec, subsample)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _source_error(spec, f"seed {seed!r} must be a non-negative integer")
    loaded, details, derived_note = LOADERS[fmt](spec, source, int(seed))
    counts_check = _check_expected_counts(spec, source, fmt, loaded)
    if counts_check is not None:
        details = {**details, "expected_counts": counts_check}
    locks = _download_locks(source)
    if locks is not None:
        details = {**details, "downloads": locks}

    splits: dict[str, TaskSplit] = {}
    split_info: dict[str, dict[str, Any]] = {}
    for index, split in enumerate(SPLITS):
        sequences, labels = loaded[split]
        if not sequences:
            raise TaskDataError(f"task {spec.name}: the {split} split of the source is empty "
                                f"(format {fmt}, files {_source_files(source)}); check the "
                                "source files (and, for intervals, whether every region was "
                                "skipped)")
        full = TaskSplit(sequences, np.asarray(labels, dtype=np.int64))
        info: dict[str, Any] = {"rows_before_subsample": len(full),
                                "counts_before_subsample": _class_counts(spec, full.labels)}
        if split in sample_sizes:
            rng = np.random.default_rng([int(seed), index])
            full = full.subset(stratified_subsample(full.labels, sample_sizes[split], rng))
        info["rows"] = len(full)
        info["counts"] = _class_counts(spec, full.labels)
        splits[split] = full
        split_info[split] = info

    note = " ".join(part for part in (str(source.get("note") or "").strip(), derived_note)
                    if part)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    placed: list[Path] = []
    try:
        for split in SPLITS:
            tmp = temp_path(out_dir / f"{split}.csv")
            temps.append(tmp)
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                write_split_to(fh, splits[split])
            split_info[split] = {"file": f"{split}.csv", "sha256": file_sha256(tmp),
                                 "bytes": tmp.stat().st_size, **split_info[split]}
        manifest = {
            "task": spec.name,
            "suite": spec.suite,
            "group": spec.group,
            "label": spec.label,
            "length": spec.length,
            "classes": list(spec.classes),
            "format": fmt,
            "kind": source.get("kind", FORMATS[fmt].default_kind),
            "note": note,
            "source": _jsonable(source),
            "details": _jsonable(details),
            "subsample": ({**{s: sample_sizes.get(s) for s in SPLITS}, "seed": int(seed)}
                          if sample_sizes else None),
            "splits": split_info,
            "ldarnet_version": __version__,
        }
        tmp_manifest = temp_path(out_dir / MANIFEST)
        temps.append(tmp_manifest)
        with open(tmp_manifest, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
        (out_dir / MANIFEST).unlink(missing_ok=True)
        for tmp, name in zip(temps, [f"{s}.csv" for s in SPLITS] + [MANIFEST], strict=True):
            os.replace(tmp, out_dir / name)
            placed.append(out_dir / name)
    except BaseException:
        remove(temps)
        remove(placed)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    return manifest
