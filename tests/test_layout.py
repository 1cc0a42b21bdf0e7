"""The package's layout is its architecture: core/ stands without pytest and without the gate,
and no two modules import each other (at import time or lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "pytest_staging"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (lazy imports too), TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)  # `from . import tiers`
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if not name.startswith("pytest_staging") or name in modules}


GRAPH = {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if name.startswith("pytest_staging.core")))
def test_core_imports_neither_pytest_nor_the_rest_of_the_plugin(module):
    forbidden = {
        name
        for name in GRAPH[module]
        if name.split(".")[0] in ("pytest", "_pytest", "xdist")
        or (name.startswith("pytest_staging.") and not name.startswith("pytest_staging.core"))
    }
    assert not forbidden, f"{module} imports {sorted(forbidden)}"


def test_no_import_cycle_between_modules():
    graph = {name: {dep for dep in deps if dep in GRAPH and dep != name} for name, deps in GRAPH.items()}
    # A package's __init__ is imported with any of its modules; an edge to it is not a cycle by itself.
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):  # a module importing its own package's __init__
                continue
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
