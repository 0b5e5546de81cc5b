"""Task downloads at pinned versions, against a local server that answers like the hub/Zenodo.

The layouts are the real ones (tests/remote_server.py): the NT benchmark's main with
``<task>/<split>.parquet`` files whose ``task`` column holds several tasks, its old
conversion branch where the per-task path is gone (404 EntryNotFound), a Genomic
Benchmarks conversion branch (``default/<split>/0000.parquet``: seq, label) and the
Zenodo archives (``<task>/<split>/<class>/<id>.txt``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT
from ldarnet.cli import main
from ldarnet.data.remote import HubFile, RemoteError, fetch, lock_path, probe_hub
from ldarnet.tasks.registry import load_registry
from ldarnet.tasks.remote_sources import (
    RemoteSourceError,
    fetch_task_file,
    load_remote_sources,
    task_source,
)
from ldarnet.tasks.sources import build_task
from ldarnet.tasks.task_data import TaskDataError, read_split
from remote_server import gb_archive, gb_parquet, nt_parquet, serve

TASKS = load_registry(ROOT / "config" / "tasks.tsv")
NT_REPO = "InstaDeepAI/nucleotide_transformer_downstream_tasks"
NT_COMMIT = "96d86d567d4cd33536e49b429dc7983121619a08"  # the pin of config/evaluation/remote.yaml
OLD_CONVERSION = "0123456789abcdef0123456789abcdef01234567"
GB_CONVERSION = "fedcba9876543210fedcba9876543210fedcba98"
FAST = {"retries": 1, "timeout": 5.0, "backoff": 0.001}


def _seqs(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def _remote_file(tmp_path: Path, base: str, **changes) -> Path:
    """config/evaluation/remote.yaml pointed at the local server (plus ``changes``)."""
    data = yaml.safe_load((ROOT / "config" / "evaluation" / "remote.yaml").read_text())
    for suite in data.values():
        suite["base_url"] = base
    data["gb"]["expected_counts"] = str(tmp_path / "counts.tsv")
    for suite, update in changes.items():
        data[suite] = {**data[suite], **update}
    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The NT repository (new main, old conversion branch) and two GB Zenodo archives."""
    monkeypatch.delenv("LDARNET_OFFLINE", raising=False)
    with serve() as (base, state):
        # H3's file also holds H4 rows (same length): only filtering tells them apart
        h3 = _seqs(6, 500, 1)
        h4 = _seqs(4, 500, 2)
        train = [(s, i % 2, "H3") for i, s in enumerate(h3[:4])] + [(s, 1, "H4") for s in h4]
        test = [(s, i % 2, "H3") for i, s in enumerate(h3[4:])]
        state.repo(NT_REPO).add_commit(NT_COMMIT, {
            "H3/train.parquet": nt_parquet(train), "H3/test.parquet": nt_parquet(test),
            "README.md": b"# NT downstream tasks\n"}, branch="main")
        state.repo(NT_REPO).add_commit(OLD_CONVERSION, {
            "default/train/0000.parquet": nt_parquet(train)}, branch="refs/convert/parquet")
        splits = {"train": {"negative": _seqs(3, 251, 3), "positive": _seqs(2, 251, 4)},
                  "test": {"negative": _seqs(1, 251, 5), "positive": _seqs(2, 251, 6)}}
        state.zenodo["16605299"] = {
            "human_nontata_promoters_v0.zip": gb_archive("human_nontata_promoters", splits)}
        (tmp_path / "counts.tsv").write_text(
            "task\tsplit\tclass\trows\n" + "".join(
                f"human_nontata_promoters\t{split}\t{cls}\t{len(seqs)}\n"
                for split, classes in splits.items() for cls, seqs in classes.items()))
        yield base, state, _remote_file(tmp_path, base)


# ------------------------------------------------------------------------------ NT
def test_nt_files_at_the_pinned_commit_filtered_on_the_task_column(hub, tmp_path,
                                                                     monkeypatch) -> None:
    _base, state, remote_path = hub
    suite = load_remote_sources(remote_path)["nt"]
    spec = TASKS["H3"]
    monkeypatch.chdir(tmp_path)
    locks = {}
    for name in ("train.parquet", "test.parquet"):
        locks[name] = fetch_task_file(spec, suite, name,
                                      f"resources/downloads/tasks/H3/{name}", **FAST)
    body = state.repos[("dataset", NT_REPO)].commits[NT_COMMIT]["H3/train.parquet"]
    lock = locks["train.parquet"]
    assert lock["commit"] == lock["revision"] == NT_COMMIT
    assert lock["sha256"] == lock["server_sha256"] == hashlib.sha256(body).hexdigest()
    assert lock["sha256_source"].startswith("server") and lock["bytes"] == len(body)
    assert (lock["repo"], lock["path"], lock["task"]) == (NT_REPO, "H3/train.parquet", "H3")
    assert json.loads(lock_path("resources/downloads/tasks/H3/train.parquet").read_text()) == lock
    # HEAD on the resolve URL at the commit (the 302 is not followed), then the file
    # through the resolve URL and the CDN host it redirects to
    first = state.requests[:3]
    assert [m for m, _ in first] == ["HEAD", "GET", "GET"]
    assert first[0][1] == f"/datasets/{NT_REPO}/resolve/{NT_COMMIT}/H3/train.parquet"
    assert first[2][1].startswith("/cdn/")

    # the task column holds H3 and H4 rows: only H3's are kept, and the manifest says so
    source = task_source(spec, {}, {"nt": suite})
    manifest = build_task(spec, source, tmp_path / "task")
    details = manifest["details"]
    assert details["train"]["task_column_values"] == {"H3": 4, "H4": 4}
    assert manifest["splits"]["train"]["counts"] == {"0": 2, "1": 2}
    assert manifest["splits"]["test"]["rows"] == 2
    assert details["downloads"]["train"]["commit"] == NT_COMMIT
    assert read_split(tmp_path / "task" / "train.csv", spec).sequences[0] == _seqs(6, 500, 1)[0]

    # a rerun is a no-op without network: the lock and the bytes are verified
    state.requests.clear()
    assert fetch_task_file(spec, suite, "train.parquet",
                           "resources/downloads/tasks/H3/train.parquet", offline=True) == lock
    assert state.requests == []


def test_a_name_the_task_column_lacks_is_an_error(hub, tmp_path) -> None:
    _base, _state, _remote_path = hub
    path = tmp_path / "h3.parquet"
    path.write_bytes(nt_parquet([("A" * 500, 0, "H3"), ("C" * 500, 1, "H4")]))
    with pytest.raises(TaskDataError, match=r"no row has task == 'H3K4me3'.*H3 \(1\), H4 \(1\)"):
        build_task(TASKS["H3K4me3"], {"format": "parquet", "train": str(path),
                                      "test": str(path), "task_column": "task",
                                      "task_name": "H3K4me3"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_old_per_task_path_is_entry_not_found(hub, tmp_path) -> None:
    """The layout the code used to build: gone since the repository's parquet conversion."""
    base, _, _ = hub
    old = HubFile(NT_REPO, "H3/train/0000.parquet", OLD_CONVERSION, "dataset", base)
    answer = probe_hub(old)
    assert (answer.status, answer.error_code, answer.commit) == (404, "EntryNotFound",
                                                                 OLD_CONVERSION)
    with pytest.raises(RemoteError, match=r"EntryNotFound: there is no 'H3/train/0000.parquet'"
                                          r".*layout differs"):
        fetch(old, tmp_path / "x.parquet", **FAST)
    assert list(tmp_path.glob("x.parquet*")) == []
    # the branch name resolves, but is no pin
    assert probe_hub(HubFile(NT_REPO, "default/train/0000.parquet", "refs/convert/parquet",
                             "dataset", base)).commit == OLD_CONVERSION
    missing = probe_hub(HubFile(NT_REPO, "H3/train.parquet", "v9", "dataset", base))
    assert (missing.status, missing.error_code) == (404, "RevisionNotFound")
    nobody = probe_hub(HubFile("someone/else", "H3/train.parquet", NT_COMMIT, "dataset", base))
    assert (nobody.status, nobody.error_code) == (401, "RepoNotFound")


def test_an_unpinned_revision_is_refused_before_any_request(hub, tmp_path) -> None:
    base, state, _ = hub
    remote = load_remote_sources(_remote_file(tmp_path, base, nt={"revision": "main"}))
    with pytest.raises(RemoteError, match=r"not pinned \(revision 'main' is a branch or tag, "
                                          r"not a commit\).*check-sources .*--pin"):
        fetch_task_file(TASKS["H3"], remote["nt"], "train.parquet", tmp_path / "t.parquet")
    assert state.requests == []


def test_corrupted_transfer_fails_and_leaves_nothing(hub, tmp_path) -> None:
    _base, state, remote_path = hub
    state.corrupt_cdn = True
    suite = load_remote_sources(remote_path)["nt"]
    with pytest.raises(RemoteError, match=r"checksum mismatch.*expected sha256"):
        fetch_task_file(TASKS["H3"], suite, "train.parquet", tmp_path / "train.parquet", **FAST)
    assert list(tmp_path.glob("train.parquet*")) == []


def test_changed_bytes_or_pin_invalidate_the_cache(hub, tmp_path) -> None:
    base, _state, remote_path = hub
    suite = load_remote_sources(remote_path)["nt"]
    dest = tmp_path / "train.parquet"
    lock = fetch_task_file(TASKS["H3"], suite, "train.parquet", dest, **FAST)
    dest.write_bytes(b"edited")
    with pytest.raises(RemoteError, match="does not match the sha256"):
        fetch_task_file(TASKS["H3"], suite, "train.parquet", dest, offline=True)
    assert fetch_task_file(TASKS["H3"], suite, "train.parquet", dest, **FAST)["sha256"] == \
        lock["sha256"]
    other = "ab" * 20
    moved = load_remote_sources(_remote_file(tmp_path, base, nt={"revision": other}))["nt"]
    with pytest.raises(RemoteError, match=f"is for revision '{NT_COMMIT}', not '{other}'"):
        fetch_task_file(TASKS["H3"], moved, "train.parquet", dest, offline=True)


def test_a_file_of_another_commit_is_refused(hub, tmp_path) -> None:
    """X-Repo-Commit is checked against the pin: a mirror serving another commit is refused."""
    _, state, remote_path = hub
    state.reported_commit = "cd" * 20
    suite = load_remote_sources(remote_path)["nt"]
    with pytest.raises(RemoteError, match=f"resolved the pinned revision to commit '{'cd' * 20}'"):
        fetch_task_file(TASKS["H3"], suite, "train.parquet", tmp_path / "train.parquet", **FAST)
    assert list(tmp_path.glob("train.parquet*")) == []


def test_a_renamed_repository_is_followed(hub, tmp_path) -> None:
    """The hub answers an old repository name with a relative redirect (followed)."""
    base, state, _ = hub
    state.renamed[("dataset", "InstaDeepAI/nt_downstream_old")] = NT_REPO
    old_name = HubFile("InstaDeepAI/nt_downstream_old", "H3/test.parquet", NT_COMMIT,
                       "dataset", base)
    assert fetch(old_name, tmp_path / "test.parquet", **FAST)["commit"] == NT_COMMIT


def test_a_small_git_file_has_no_sha256_and_is_trusted_on_first_use(hub, tmp_path) -> None:
    base, _, _ = hub
    readme = HubFile(NT_REPO, "README.md", NT_COMMIT, "dataset", base)
    answer = probe_hub(readme)
    assert answer.status == 200 and answer.checksum is None  # the ETag is a git blob sha1
    lock = fetch(readme, tmp_path / "README.md", **FAST)
    assert lock["sha256_source"].startswith("trust on first use")


# ------------------------------------------------------------------------------ GB
def test_gb_archive_from_zenodo_class_names_from_the_data(hub, tmp_path, monkeypatch) -> None:
    _base, state, remote_path = hub
    spec = TASKS["human_nontata_promoters"]
    suite = load_remote_sources(remote_path)["gb"]
    monkeypatch.chdir(tmp_path)
    lock = fetch_task_file(spec, suite, "archive.zip",
                           "resources/downloads/tasks/human_nontata_promoters/archive.zip",
                           **FAST)
    body = state.zenodo["16605299"]["human_nontata_promoters_v0.zip"]
    assert lock["md5"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert lock["md5_source"].startswith("Zenodo") and lock["record"] == "16605299"
    assert lock["sha256"] == hashlib.sha256(body).hexdigest()
    manifest = build_task(spec, task_source(spec, {}, {"gb": suite}), tmp_path / "task")
    assert manifest["format"] == "gb_archive" and manifest["kind"] == "official"
    assert manifest["details"]["classes_found"]["train"] == ["negative", "positive"]
    assert manifest["splits"]["train"]["counts"] == {"negative": 3, "positive": 2}
    assert manifest["details"]["expected_counts"]["matched"] is True
    assert manifest["details"]["downloads"]["archive"]["md5"] == lock["md5"]


def test_gb_archive_checks_classes_and_published_counts(hub, tmp_path) -> None:
    spec = TASKS["human_nontata_promoters"]
    seqs = _seqs(2, 251, 9)
    archive = tmp_path / "a.zip"
    archive.write_bytes(gb_archive(spec.name, {"train": {"negative": seqs, "promoter": seqs},
                                               "test": {"negative": seqs, "positive": seqs}}))
    with pytest.raises(TaskDataError, match=r"class directories \['negative', 'promoter'\].*"
                                            r"unknown: \['promoter'\], absent: \['positive'\]"):
        build_task(spec, {"format": "gb_archive", "archive": str(archive)}, tmp_path / "o1")
    archive.write_bytes(gb_archive(spec.name, {"train": {"negative": seqs, "positive": seqs},
                                               "test": {"negative": seqs, "positive": seqs}}))
    with pytest.raises(TaskDataError, match=r"class sizes differ from .*counts.tsv \(train: got "
                                            r"\{'negative': 2, 'positive': 2\}, published "
                                            r"\{'negative': 3, 'positive': 2\}"):
        build_task(spec, {"format": "gb_archive", "archive": str(archive),
                          "expected_counts": str(tmp_path / "counts.tsv")}, tmp_path / "o2")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def _gb_conversion(state, task: str, train: list[tuple[str, int]],
                   test: list[tuple[str, int]]) -> None:
    state.repo(f"katarinagresova/Genomic_Benchmarks_{task}").add_commit(GB_CONVERSION, {
        "default/train/0000.parquet": gb_parquet(train),
        "default/test/0000.parquet": gb_parquet(test)}, branch="refs/convert/parquet")


def test_gb_conversion_branch_labels_need_counts_that_tell_classes_apart(hub, tmp_path) -> None:
    """The hub copies carry integer labels only: the order is accepted when the published
    class sizes confirm it, and refused when two classes are the same size."""
    base, state, _ = hub
    seqs = _seqs(5, 251, 11)
    _gb_conversion(state, "human_nontata_promoters",
                   [(s, 0) for s in seqs[:3]] + [(s, 1) for s in seqs[3:]],
                   [(seqs[0], 0)] + [(s, 1) for s in seqs[1:3]])
    hf = {"host": "huggingface", "repo": "{dataset}", "repo_type": "dataset",
          "revision": {"human_nontata_promoters": GB_CONVERSION,
                       "demo_human_or_worm": GB_CONVERSION},
          "files": {"train": "{name}/train/0000.parquet", "test": "{name}/test/0000.parquet"},
          "format": "parquet", "sequence_column": "seq", "label_column": "label",
          "expected_counts": str(tmp_path / "counts.tsv"), "base_url": base}
    path = tmp_path / "hf.yaml"
    path.write_text(yaml.safe_dump({"gb": hf}))
    suite = load_remote_sources(path)["gb"]
    spec = TASKS["human_nontata_promoters"]
    source = task_source(spec, {}, {"gb": suite})
    for name in ("train.parquet", "test.parquet"):
        lock = fetch_task_file(spec, suite, name, source[name.split(".")[0]], **FAST)
        assert lock["commit"] == GB_CONVERSION
        assert lock["path"] == f"default/{name.split('.')[0]}/0000.parquet"
    manifest = build_task(spec, source, tmp_path / "nontata")
    assert manifest["details"]["expected_counts"]["label_order"] == "confirmed by class sizes"
    assert manifest["splits"]["train"]["counts"] == {"negative": 3, "positive": 2}

    # two classes of equal size: the data cannot say which integer is which name
    worm = TASKS["demo_human_or_worm"]
    _gb_conversion(state, "demo_human_or_worm", [("ACGT" * 50, 0), ("TTGA" * 50, 1)],
                   [("ACGT" * 50, 0), ("GGCA" * 50, 1)])
    with open(tmp_path / "counts.tsv", "a") as fh:
        fh.write("".join(f"demo_human_or_worm\t{s}\t{c}\t1\n" for s in ("train", "test")
                         for c in ("human", "worm")))
    source = task_source(worm, {}, {"gb": suite})
    for name in ("train.parquet", "test.parquet"):
        fetch_task_file(worm, suite, name, source[name.split(".")[0]], **FAST)
    with pytest.raises(TaskDataError, match=r"cannot be matched to class names from the data: "
                                            r"classes human=worm have the same number of rows"):
        build_task(worm, source, tmp_path / "worm")


# ------------------------------------------------------------------------ the config
def test_shipped_remote_sources_are_pinned() -> None:
    remote = load_remote_sources(ROOT / "config" / "evaluation" / "remote.yaml")
    assert remote["nt"].revision == NT_COMMIT and remote["gb"].record == "16605299"
    files = remote["nt"].files_for(TASKS["splice_sites_all"])
    assert files["train.parquet"].url() == (
        f"https://huggingface.co/datasets/{NT_REPO}/resolve/{NT_COMMIT}/splice_sites_all/"
        "train.parquet")
    archive = remote["gb"].files_for(TASKS["human_ocr_ensembl"])["archive.zip"]
    assert archive.url() == ("https://zenodo.org/records/16605299/files/human_ocr_ensembl_v0.zip"
                             "?download=1")
    counts = (ROOT / "config" / "evaluation" / "gb_counts.tsv").read_text().splitlines()
    gb_tasks = [t for t, s in TASKS.items() if s.suite == "gb"]
    for task in gb_tasks:  # every class of both splits, from the registry's class names
        rows = {tuple(line.split("\t")[1:3]) for line in counts if line.startswith(task + "\t")}
        assert rows == {(s, c) for s in ("train", "test") for c in TASKS[task].classes}, task


@pytest.mark.parametrize(("change", "fragment"), [
    ({"nt": {"host": "ftp"}}, "nt.host: 'ftp' is not one of"),
    ({"nt": {"files": {"train": "{name}/train.parquet"}}}, "needs exactly the file roles"),
    ({"nt": {"files": {"train": "{nme}/t.parquet", "test": "x"}}}, "unknown placeholder(s)"),
    ({"nt": {"revison": "x"}}, "unknown key(s) ['revison']"),
    ({"gb": {"record": "abc"}}, "gb.record: 'abc' is not a Zenodo record id"),
    ({"nt": {"revision": None}}, "nt.revision: required"),
])
def test_remote_sources_errors_name_the_key(tmp_path, change, fragment) -> None:
    data = yaml.safe_load((ROOT / "config" / "evaluation" / "remote.yaml").read_text())
    for suite, update in change.items():
        data[suite].update(update)
    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RemoteSourceError) as err:
        load_remote_sources(path)
    assert fragment in str(err.value) and "docs/evaluation.md" in str(err.value)


def test_fetch_task_command(hub, tmp_path, capsys) -> None:
    _base, _state, remote_path = hub
    out = tmp_path / "x" / "test.parquet"
    assert main(["fetch-task", "H3", "--remote", str(remote_path), "--file", "test.parquet",
                 "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["commit"] == NT_COMMIT and out.is_file()
    assert main(["fetch-task", "H3", "--remote", str(remote_path), "--file", "dev.parquet",
                 "--out", str(out)]) == 2
    assert "no remote file 'dev.parquet'" in capsys.readouterr().err
    assert main(["fetch-task", "H3", "--remote", str(remote_path), "--out", str(out)]) == 2
    assert "give --file NAME with --out" in capsys.readouterr().err
