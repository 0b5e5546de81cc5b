"""The layering of the package, checked on its import graph (README, "Code tree").

Every import of ``ldarnet`` code by ``ldarnet`` code, at module level or inside a
function, is an arrow of the graph. The rules below say which package may import
which; an arrow they do not allow, or a circle of module-level imports, fails the test
with the importing file and line, so a violation is fixed where it is made rather than
discovered by a new maintainer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ldarnet"

# Which packages each package may import (besides itself and the root ``ldarnet``, which
# holds only the version). Low to high: the foundation imports no stage; the model
# imports nothing from training, evaluation, analysis or reporting; the analyses compute
# and never draw (report draws); only the command line sees everything.
ALLOWED: dict[str, frozenset[str]] = {
    "foundation": frozenset(),
    "data": frozenset({"foundation"}),
    "model": frozenset({"foundation", "data"}),
    "tasks": frozenset({"foundation", "data"}),
    "train": frozenset({"foundation", "data", "model"}),
    "evaluation": frozenset({"foundation", "data", "model", "tasks"}),
    "ablation": frozenset({"foundation", "model", "train"}),
    "analysis": frozenset({"foundation", "data", "model", "tasks"}),
    "interop": frozenset({"foundation", "data", "model"}),
    "report": frozenset({"foundation", "data", "tasks", "analysis"}),
    "pipeline": frozenset({"foundation", "data", "model", "tasks", "train", "interop"}),
    "cli": frozenset({"foundation", "data", "model", "tasks", "train", "evaluation",
                      "ablation", "analysis", "interop", "report", "pipeline"}),
}
# The model needs one thing from data: the token vocabulary (ids, [PAD], the ignored
# label). Anything else of data (genomes, shards, downloads) is not the network's business.
NARROW = {("model", "data"): frozenset({"ldarnet.data.tokenizer"})}


@dataclass(frozen=True)
class Import:
    """One arrow: ``source`` imports ``target`` (a module) at ``line``; top level or not."""

    source: str
    target: str
    line: int
    top_level: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def collect_imports(root: Path) -> tuple[set[str], list[Import]]:
    """Every module under ``root`` and every import of one of them by another."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    arrows = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        top = set(map(id, tree.body))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem
                           for a in node.names]
                if stem == name:  # `from ldarnet.x import y` inside ldarnet.x itself
                    arrows.append(Import(name, name, node.lineno, id(node) in top))
            for target in targets:
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]  # ldarnet.x.y.Name -> ldarnet.x.y
                if target in modules and target != name:
                    arrows.append(Import(name, target, node.lineno, id(node) in top))
    return modules, arrows


def package_of(module: str) -> str:
    """The package a module belongs to; "" for the root (version) and ``python -m ldarnet``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else ""


def layering_violations(arrows: list[Import]) -> list[str]:
    """Arrows between packages that ALLOWED (and NARROW) do not permit."""
    found = []
    for a in arrows:
        src, dst = package_of(a.source), package_of(a.target)
        if not src or not dst or src == dst:
            continue
        rule = ALLOWED.get(src)
        if rule is None:
            found.append(f"{a.source}: package {src!r} has no layering rule; add it to ALLOWED")
        elif dst not in rule:
            found.append(f"{a.source} (line {a.line}) imports {a.target}: {src} may import "
                         f"only {', '.join(sorted(rule)) or 'nothing of ldarnet'}")
        elif (src, dst) in NARROW and a.target not in NARROW[(src, dst)]:
            found.append(f"{a.source} (line {a.line}) imports {a.target}: {src} may import "
                         f"only {', '.join(sorted(NARROW[(src, dst)]))} of {dst}")
    return found


def import_cycles(arrows: list[Import]) -> list[list[str]]:
    """Circles of module-level imports (the ones Python runs at import time), a module
    importing from its own name included."""
    graph: dict[str, set[str]] = {}
    for a in arrows:
        if a.top_level:
            graph.setdefault(a.source, set()).add(a.target)
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


@pytest.fixture(scope="module")
def graph() -> tuple[set[str], list[Import]]:
    return collect_imports(PACKAGE)


def test_every_package_has_a_rule(graph) -> None:
    modules, _ = graph
    packages = {package_of(m) for m in modules} - {""}
    assert packages == set(ALLOWED), "ALLOWED must name exactly the packages of ldarnet/"


def test_packages_import_only_the_layers_below_them(graph) -> None:
    _, arrows = graph
    assert layering_violations(arrows) == []


def test_no_circle_of_module_level_imports(graph) -> None:
    _, arrows = graph
    assert import_cycles(arrows) == []


def test_rules_form_no_circle() -> None:
    cycles = import_cycles([Import(f"ldarnet.{s}", f"ldarnet.{d}", 0, True)
                            for s, allowed in ALLOWED.items() for d in allowed])
    assert cycles == []


def test_the_checks_catch_violations(tmp_path: Path) -> None:
    """The checker itself: an upward import and a circle in a throw-away package."""
    root = tmp_path / "ldarnet"
    for pkg in ("foundation", "model", "train"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "model" / "net.py").write_text("from ldarnet.train.loop import run\n")
    (root / "train" / "loop.py").write_text("from ldarnet.model.net import Net\n")
    (root / "foundation" / "io.py").write_text(
        "def f():\n    from ldarnet.model import net\n")
    (root / "model" / "__init__.py").write_text("from ldarnet.model import net\n")  # itself
    _, arrows = collect_imports(root)
    violations = layering_violations(arrows)
    assert any("ldarnet.model.net (line 1) imports ldarnet.train.loop" in v for v in violations)
    assert any("ldarnet.foundation.io (line 2)" in v for v in violations)  # lazy import too
    assert import_cycles(arrows) == [["ldarnet.model", "ldarnet.model"],
                                     ["ldarnet.model.net", "ldarnet.train.loop",
                                      "ldarnet.model.net"]]
