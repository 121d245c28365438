"""The package layers of docs/architecture.md: every module is in a layer, and no two packages
import each other, directly or in a loop (function-level and TYPE_CHECKING imports count).

`lint-imports` (.ci/run) checks the contracts themselves; these tests check what the contracts
cannot say: that a new module is not left out of every layer, and that siblings allowed to
import each other (":" in a layer) do not form a cycle."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def _layer_members() -> set[str]:
    (layers,) = [c for c in _contracts() if c["id"] == "layers"]
    members: set[str] = set()
    for layer in layers["layers"]:  # type: ignore[attr-defined]
        for part in str(layer).replace("|", ":").split(":"):
            members.add(part.strip())
    return members


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("cowork", include_external_packages=False)


def _package_of(module: str, packages: set[str]) -> str:
    """The deepest package (a directory of src/cowork) holding ``module``."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        candidate = ".".join(parts[:depth])
        if candidate in packages:
            return candidate
    return module


def test_every_top_level_module_is_in_a_layer(graph: grimp.ImportGraph) -> None:
    top = {".".join(m.split(".")[:2]) for m in graph.modules if m != "cowork"}
    missing = sorted(top - _layer_members())
    assert not missing, f"add these to a layer in pyproject.toml [tool.importlinter]: {missing}"


def test_no_package_level_cycle(graph: grimp.ImportGraph) -> None:
    src = ROOT / "src"
    packages = {
        ".".join(p.parent.relative_to(src).parts)
        for p in src.joinpath("cowork").rglob("__init__.py")
    }
    packages.discard("cowork")
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        if module == "cowork":
            continue  # the root only re-exports (lazily) what the layers define
        source = _package_of(module, packages)
        for imported in graph.find_modules_directly_imported_by(module):
            target = _package_of(imported, packages)
            # A sub-package may use its parent (the port of cowork.storage); not the reverse.
            if target != source and not source.startswith(target + "."):
                edges[source].add(target)

    cycles = _cycles(edges)
    assert not cycles, f"package-level import cycles: {cycles}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_the_cycle_check_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
