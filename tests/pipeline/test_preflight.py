"""``ldarnet check-sources``: every remote input of a config, asked about before any job runs.

The paper and release configs are pointed at a local server (tests/remote_server.py)
that holds every file they name, in the real layouts: 18 NT tasks on the hub at the
pinned commit, 9 Genomic Benchmarks archives in a Zenodo record, hg38 and GENCODE with
their checksum listings, the released checkpoint in a model repository.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from ldarnet.cli import main
from ldarnet.pipeline.preflight import load_workflow_config, remote_inputs, set_yaml_scalar
from ldarnet.tasks.registry import load_registry
from remote_server import gb_archive, nt_parquet, serve

TASKS = load_registry(ROOT / "config" / "tasks.tsv")
NT_REPO = "InstaDeepAI/nucleotide_transformer_downstream_tasks"
NT_COMMIT = "96d86d567d4cd33536e49b429dc7983121619a08"
RELEASE_REPO = "darlednik/LDARNet-110M"
RELEASE_COMMIT = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"
CHECKPOINT = b"\x80\x02 a stand-in for model_ckpt_110m.pt " * 64
GENOME = b"genome bytes"
ANNOTATION = b"annotation bytes"


def _md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _populate(state) -> None:
    """Every file the paper and release configs download."""
    nt = {}
    for name, spec in TASKS.items():
        if spec.suite == "nt":
            for split in ("train", "test"):
                nt[f"{spec.hub_config}/{split}.parquet"] = nt_parquet([("A" * 8, 0, name)])
    state.repo(NT_REPO).add_commit(NT_COMMIT, nt, branch="main")
    state.zenodo["16605299"] = {
        f"{name}_v0.zip": gb_archive(name, {s: {c: ["ACGT"] for c in spec.classes}
                                            for s in ("train", "test")})
        for name, spec in TASKS.items() if spec.suite == "gb"}
    state.repo(RELEASE_REPO, "model").add_commit(
        RELEASE_COMMIT, {"model_ckpt_110m.pt": CHECKPOINT, "README.md": b"# LDARNet\n"},
        branch="main")
    state.static.update({
        "hg38.fa.gz": GENOME, "md5sum.txt": f"{_md5(GENOME)}  hg38.fa.gz\n".encode(),
        "gencode.v46.basic.annotation.gtf.gz": ANNOTATION,
        "MD5SUMS": f"{_md5(ANNOTATION)}  gencode.v46.basic.annotation.gtf.gz\n".encode()})


def _localize(text: str, base: str) -> str:
    """A config's download URLs moved to the local server (the rest of the text kept)."""
    text = re.sub(r"https://hgdownload\.soe\.ucsc\.edu/\S+?/(hg38\.fa\.gz|md5sum\.txt)",
                  rf"{base}/static/\1", text)
    return re.sub(r"https://ftp\.ebi\.ac\.uk/\S+?/(gencode\.v46\.basic\.annotation\.gtf\.gz|"
                  r"MD5SUMS)", rf"{base}/static/\1", text)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A scratch copy of config/ and the schema, every URL on the local server; cwd there."""
    monkeypatch.delenv("LDARNET_OFFLINE", raising=False)
    with serve() as (base, state):
        _populate(state)
        shutil.copytree(ROOT / "config", tmp_path / "config")
        (tmp_path / "resources").mkdir()
        (tmp_path / "resources" / "demo").symlink_to(ROOT / "resources" / "demo")
        (tmp_path / "workflow" / "schemas").mkdir(parents=True)
        shutil.copy(ROOT / "workflow" / "schemas" / "config.schema.yaml",
                    tmp_path / "workflow" / "schemas")
        remote = tmp_path / "config" / "evaluation" / "remote.yaml"
        remote.write_text(re.sub(r"(\n  format: \w+\n)", rf"\1  base_url: {base}\n",
                                 remote.read_text()))
        for name in ("config.yaml", "release.yaml"):
            path = tmp_path / "config" / name
            text = _localize(path.read_text(), base)
            text = text.replace("    reverse_padding: exact",
                                f"    base_url: {base}\n    reverse_padding: exact")
            path.write_text(text)
        monkeypatch.chdir(tmp_path)
        yield base, state, tmp_path


def _rows(out: str) -> dict[str, list[str]]:
    """The table's rows by input name (columns split on runs of 2+ spaces)."""
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 6 and cells[0] != "input" and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells
    return rows


def test_full_table_for_the_paper_config(workdir, capsys) -> None:
    _, state, tmp = workdir
    assert main(["check-sources", "--config", "config/config.yaml",
                 "--out", "results/preflight/sources.tsv"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 2 + 36 + 9  # genome, annotation, 18 NT x 2 files, 9 GB archives
    nt = rows["task H3K36me3 train.parquet"]
    assert nt[1] == f"hf://datasets/{NT_REPO}@{NT_COMMIT[:12]}/H3K36me3/train.parquet"
    assert nt[2] == "302" and nt[4] == NT_COMMIT[:12] and nt[5].startswith("sha256:")
    assert nt[-1] == "ok"
    gb = rows["task human_ensembl_regulatory archive.zip"]
    assert gb[1] == "zenodo:16605299/human_ensembl_regulatory_v0.zip"
    assert gb[2] == "200" and gb[5].startswith("md5:") and gb[-1] == "ok"
    genome = rows["genome hg38"]
    assert genome[2] == "200" and genome[5] == f"md5:{_md5(GENOME)[:12]}..."
    assert "all 47 remote inputs would download and verify" in out
    tsv = (tmp / "results" / "preflight" / "sources.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["input", "source", "status", "size", "commit", "checksum",
                                  "result"]
    h3 = next(line.split("\t") for line in tsv if line.startswith("task H3 train.parquet"))
    assert h3[4] == NT_COMMIT and len(h3[5]) == len("sha256:") + 64
    assert not any(method == "GET" and "/cdn/" in path for method, path in state.requests)


def test_each_failing_input_is_named(workdir, capsys) -> None:
    """The layout the workflow used to build (per-task paths on the conversion branch), a
    file missing from the Zenodo record and a checksum listing without the genome."""
    _, state, tmp = workdir
    remote = tmp / "config" / "evaluation" / "remote.yaml"
    remote.write_text(remote.read_text()
                      .replace('"{name}/train.parquet"', '"{name}/train/0000.parquet"'))
    del state.zenodo["16605299"]["human_ocr_ensembl_v0.zip"]
    state.static["md5sum.txt"] = b"0123456789abcdef0123456789abcdef  hg19.fa.gz\n"
    assert main(["check-sources", "--config", "config/config.yaml"]) == 1
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["task H3 train.parquet"][2] == "404"
    assert rows["task H3 train.parquet"][-1].startswith(
        "FAIL: EntryNotFound: there is no 'H3/train/0000.parquet' at revision")
    assert rows["task H3 test.parquet"][-1] == "ok"
    assert "record 16605299 has no file 'human_ocr_ensembl_v0.zip'" in \
        rows["task human_ocr_ensembl archive.zip"][-1]
    assert "lists no checksum for hg38.fa.gz" in rows["genome hg38"][-1]
    assert "20 of 47 remote inputs would fail: genome hg38, task H3 train.parquet" in captured.err
    assert "task human_ocr_ensembl archive.zip" in captured.err
    assert not (tmp / "results").exists()  # no report on failure


def test_pin_writes_commit_and_sha256_into_the_release_config(workdir, capsys) -> None:
    _, _, tmp = workdir
    config = tmp / "config" / "release.yaml"
    assert main(["check-sources", "--config", "config/release.yaml"]) == 1
    captured = capsys.readouterr()
    row = _rows(captured.out)["checkpoint ldarnet_release"]
    assert row[1] == f"hf://{RELEASE_REPO}@main/model_ckpt_110m.pt" and row[2] == "302"
    assert row[-1].startswith("FAIL: unpinned: revision 'main' is not a commit (now "
                              f"{RELEASE_COMMIT[:12]}); unpinned: no sha256 in the config")
    assert "--pin" in captured.err
    before = config.read_text()

    assert main(["check-sources", "--config", "config/release.yaml", "--pin"]) == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256(CHECKPOINT).hexdigest()
    assert f"pinned config/release.yaml: models.ldarnet_release.revision = {RELEASE_COMMIT}" in out
    assert f"pinned config/release.yaml: models.ldarnet_release.sha256 = {sha}" in out
    after = config.read_text()
    # only the two values changed: every comment and every other line is kept
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert changed == [("    revision: main", f"    revision: {RELEASE_COMMIT}"),
                       ("    sha256: null", f"    sha256: {sha}")]
    assert _rows(out)["checkpoint ldarnet_release"][-1] == "ok"
    assert main(["check-sources", "--config", "config/release.yaml"]) == 0


def test_a_different_file_behind_the_pin_fails(workdir, capsys) -> None:
    _, _, tmp = workdir
    config = tmp / "config" / "release.yaml"
    set_yaml_scalar(config, ("models", "ldarnet_release", "revision"), RELEASE_COMMIT)
    set_yaml_scalar(config, ("models", "ldarnet_release", "sha256"), "ab" * 32)
    assert main(["check-sources", "--config", "config/release.yaml"]) == 1
    row = _rows(capsys.readouterr().out)["checkpoint ldarnet_release"]
    assert "the server's sha256" in row[-1] and "differs from the pinned abababababab" in row[-1]


def test_offline_is_one_line(workdir, capsys, monkeypatch) -> None:
    _, state, tmp = workdir
    monkeypatch.setenv("LDARNET_OFFLINE", "1")
    assert main(["check-sources", "--config", "config/config.yaml"]) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(
        "ldarnet check-sources: offline: network access is off (LDARNET_OFFLINE=1); 47 of 47")
    assert state.requests == []
    monkeypatch.delenv("LDARNET_OFFLINE")
    # no server behind the URLs at all: the same one line, naming the hosts
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for path in (tmp / "config" / "config.yaml", tmp / "config" / "evaluation" / "remote.yaml"):
        path.write_text(re.sub(r"http://127\.0\.0\.1:\d+", dead, path.read_text()))
    assert main(["check-sources", "--config", "config/config.yaml", "--timeout", "2"]) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "offline: no network: no answer from 127.0.0.1" in out[0]


def test_the_shipped_paper_config_offline(capsys, monkeypatch) -> None:
    """`ldarnet check-sources --config config/config.yaml` on a machine without network."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LDARNET_OFFLINE", "1")
    assert main(["check-sources", "--config", "config/config.yaml"]) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("ldarnet check-sources: offline: network access "
                                               "is off (LDARNET_OFFLINE=1); ")
    assert "of 47 remote inputs not checked" in out[0]


def test_downloaded_inputs_pass_without_network(workdir, capsys, monkeypatch) -> None:
    """A machine holding the verified downloads can run the pre-flight offline."""
    base, _, tmp = workdir
    demo = yaml.safe_load((tmp / "config" / "demo.yaml").read_text())
    sha = hashlib.sha256(CHECKPOINT).hexdigest()
    demo["models"]["ldarnet_release"] = {
        "checkpoint": f"{RELEASE_REPO}/model_ckpt_110m.pt", "revision": RELEASE_COMMIT,
        "sha256": sha, "base_url": base}
    (tmp / "config" / "offline.yaml").write_text(yaml.safe_dump(demo))
    dest = "resources/downloads/checkpoints/ldarnet_release/model_ckpt_110m.pt"
    assert main(["fetch-checkpoint", f"{RELEASE_REPO}/model_ckpt_110m.pt", "--model",
                 "ldarnet_release", "--revision", RELEASE_COMMIT, "--sha256", sha,
                 "--base-url", base, "--out", dest]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LDARNET_OFFLINE", "1")
    assert main(["check-sources", "--config", "config/offline.yaml"]) == 0
    row = _rows(capsys.readouterr().out)["checkpoint ldarnet_release"]
    assert row[2].startswith(f"cached (lock: sha256 {sha[:12]}, commit {RELEASE_COMMIT[:12]})")


def test_fetch_checkpoint_refuses_an_unpinned_entry(workdir, capsys) -> None:
    base, state, _ = workdir
    assert main(["fetch-checkpoint", f"{RELEASE_REPO}/model_ckpt_110m.pt", "--revision",
                 "main", "--sha256", "", "--base-url", base, "--out", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert "is not pinned (revision 'main' is not a commit; no sha256)" in err
    assert "ldarnet check-sources --config <workflow config> --pin" in err
    assert state.requests == [] and not Path("x.pt").exists()


def test_bad_config_is_exit_2(workdir, capsys) -> None:
    _, _, tmp = workdir
    (tmp / "bad.yaml").write_text((tmp / "config" / "config.yaml").read_text()
                                  .replace("window: 4096", "windw: 4096"))
    assert main(["check-sources", "--config", "bad.yaml"]) == 2
    assert "does not match workflow/schemas/config.schema.yaml" in capsys.readouterr().err


def test_set_yaml_scalar_keeps_the_layout(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("# top\nmodels:\n  a:\n    revision: main   # pin me\n    sha256: null\n"
                    "  b:\n    revision: main\n")
    set_yaml_scalar(path, ("models", "b", "revision"), "f" * 40)
    assert path.read_text() == ("# top\nmodels:\n  a:\n    revision: main   # pin me\n"
                                f"    sha256: null\n  b:\n    revision: {'f' * 40}\n")
    set_yaml_scalar(path, ("models", "a", "revision"), "e" * 40)
    assert f"    revision: {'e' * 40}   # pin me\n" in path.read_text()
    with pytest.raises(Exception, match=r"no line `models: c: revision`"):
        set_yaml_scalar(path, ("models", "c", "revision"), "x")


def test_cache_paths_are_the_workflows_download_targets() -> None:
    """Every input check-sources lists is exactly a file a download rule of the DAG makes."""
    config = load_workflow_config([ROOT / "config" / "release.yaml"], ROOT)
    dests = [i.dest for i in remote_inputs(config, ROOT / "config" / "release.yaml", ROOT)]
    assert len(dests) == 48
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), *dests, "-n", "--forceall",
         "--cores", "1", "--configfile", "config/release.yaml", "--quiet", "rules"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout.split("Job stats:", 1)[1], re.M))
    assert stats == {"download_genome": "1", "download_annotation": "1", "fetch_task": "45",
                     "fetch_checkpoint": "1", "total": "48"}
