"""No import circles among portal, tenants and mlcore, and imports that run one way
(portal -> mlcore -> tenants): when two modules need each other, the
shared piece moves down into a third module.

The graph is read from the source (ast), not by importing it. An edge is an explicit import:
``from . import jobs`` points at mlcore.jobs, ``from .models import Job`` at mlcore.models;
a package's own __init__ is not counted as imported by its submodules. Imports inside functions
and under ``if TYPE_CHECKING`` run late or never, but one that exists only to dodge a circle is a
circle all the same: none may appear.

Run ``python tests/test_import_cycles.py`` to print every cycle with the lines that make it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "tenants", "mlcore")

# Cycles that close only through an import inside a function (or under TYPE_CHECKING).
KNOWN_LATE_CYCLES: set[frozenset[str]] = set()  # none left; keep it that way


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    late: bool  # inside a function, or under `if TYPE_CHECKING`


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def edges(known: dict[str, Path]) -> list[Edge]:
    found: list[Edge] = []
    for module, path in known.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, late: bool, module=module, is_package=is_package) -> None:
            for child in ast.iter_child_nodes(node):
                child_late = late or _is_type_checking(child) or isinstance(
                    child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = _absolute(module, is_package, child.level, child.module)
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                               for a in child.names]
                for target in targets:
                    if target in known and target != module:
                        found.append(Edge(module, target, child.lineno, child_late))
                visit(child, child_late)

        visit(ast.parse(path.read_text()), False)
    return found


def cycles(graph: list[Edge]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    successors: dict[str, set[str]] = {}
    for edge in graph:
        successors.setdefault(edge.source, set()).add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(successors.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(frozenset(component))

    for node in sorted(successors):
        if node not in index:
            connect(node)
    return result


def describe(component: frozenset[str], graph: list[Edge]) -> str:
    lines = [f"{e.source}:{e.line} -> {e.target}" + (" (late)" if e.late else "")
             for e in graph if e.source in component and e.target in component]
    return "\n  ".join([" <-> ".join(sorted(component)), *sorted(set(lines))])


def test_no_module_level_import_circles():
    graph = [edge for edge in edges(modules()) if not edge.late]
    found = cycles(graph)
    assert found == [], "\n".join(describe(component, graph) for component in found)


def test_no_new_circles_dodged_by_late_imports():
    graph = edges(modules())
    new = [component for component in cycles(graph) if component not in KNOWN_LATE_CYCLES]
    assert new == [], "\n".join(describe(component, graph) for component in new)


# The layers: portal wires, mlcore (tenant schemas) uses tenants (public schema), never back.
ALLOWED_LAYERS = {"portal": {"portal", "mlcore", "tenants"}, "mlcore": {"mlcore", "tenants"},
                  "tenants": {"tenants"}}


def test_imports_run_one_way_portal_mlcore_tenants():
    upward = [f"{e.source}:{e.line} -> {e.target}" for e in edges(modules())
              if e.target.split(".")[0] not in ALLOWED_LAYERS[e.source.split(".")[0]]]
    assert upward == []


if __name__ == "__main__":
    everything = edges(modules())
    for component in cycles(everything):
        print(describe(component, everything))
