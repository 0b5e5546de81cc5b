"""The conda environments of envs/ (``snakemake --sdm conda``): what can be checked here.

conda is not reachable from this machine, so the environments are not built in CI. What
is checked: they carry every runtime dependency of pyproject.toml with the same bounds,
one torch, kernel wheels whose tags match that torch / CUDA 12 / CPython / C++ ABI, a
sha256 for each wheel, and no install of this package (jobs import the checkout). pip
itself parses every requirement line (its own parser, through ``packaging``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from packaging.requirements import Requirement

from conftest import ROOT

ENVS = sorted((ROOT / "envs").glob("*.yaml"))
# run the workflow, not the jobs: the Snakemake inside a job comes from the submitting side
CONTROLLER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}


def _env(path: Path) -> tuple[str, list[str]]:
    data = yaml.safe_load(path.read_text())
    python = next(d for d in data["dependencies"] if isinstance(d, str)
                  and d.startswith("python="))
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    return python.split("=", 1)[1], pip


def _project() -> dict[str, Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(r).name: Requirement(r) for r in meta["dependencies"]}


def test_two_environments_cpu_and_cuda() -> None:
    assert [p.name for p in ENVS] == ["ldarnet-cpu.yaml", "ldarnet-cuda.yaml"]
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for env in ENVS:
        assert f'"../../envs/{env.name}"' in rules


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.stem)
def test_environment_mirrors_the_package_dependencies(path: Path) -> None:
    python, pip = _env(path)
    named = {}
    for line in pip:
        assert not line.startswith("-e") and "ldarnet" not in line.split("#")[0], (
            f"{path.name}: the package is imported from the checkout, not installed: {line}")
        if not line.startswith("https://"):
            req = Requirement(line)
            named[req.name] = req
    project = _project()
    for name, req in project.items():
        if name in CONTROLLER_ONLY:
            continue
        assert name in named, f"{path.name} lacks {req}"
        if name == "torch":
            assert str(named[name].specifier) == "==2.7.1"
            assert req.specifier.contains("2.7.1")  # the package admits the jobs' torch
        else:
            assert named[name].specifier == req.specifier, (name, named[name], req)
    assert python == "3.11"


def test_cuda_wheels_match_torch_cuda_python_and_abi() -> None:
    python, pip = _env(ROOT / "envs" / "ldarnet-cuda.yaml")
    torch = next(Requirement(x) for x in pip if x.startswith("torch=="))
    major_minor = ".".join(str(torch.specifier).removeprefix("==").split(".")[:2])
    cp = "cp" + python.replace(".", "")
    wheels = [x for x in pip if x.startswith("https://")]
    names = set()
    for url in wheels:
        parsed = urlparse(url)
        assert parsed.netloc == "github.com" and "/releases/download/" in parsed.path
        assert re.fullmatch(r"sha256=[0-9a-f]{64}", parsed.fragment), url
        wheel = unquote(Path(parsed.path).name)
        name, version, tag_py, tag_abi, platform = wheel.removesuffix(".whl").split("-")
        local = version.split("+", 1)[1]
        assert local == f"cu12torch{major_minor}cxx11abiTRUE", wheel  # torch >= 2.7: new ABI
        assert (tag_py, tag_abi, platform) == (cp, cp, "linux_x86_64"), wheel
        tag = parsed.path.split("/releases/download/")[1].split("/")[0]
        assert tag == "v" + version.split("+")[0], (tag, wheel)
        names.add(name)
    assert names == {"mamba_ssm", "causal_conv1d", "flash_attn"}
    transformers = next(Requirement(x) for x in pip if x.startswith("transformers"))
    assert not transformers.specifier.contains("5.0.0")  # mamba-ssm 2.2.5 imports break on 5
