"""Check the import graph of ``src/headend``: no cycles, and every import allowed by the
layer table of DESIGN.md.

Every module is parsed with ``ast`` (nothing is imported). Imports at module level and inside
functions count; those under ``if TYPE_CHECKING:`` do not (they never run). An import names
the module it loads: ``from headend.api import problems`` is an edge to
``headend.api.problems`` when that is a module, else to ``headend.api``.

Run it from the repository's root: ``python scripts/check_imports.py``; it prints what it
finds and exits 1 if anything is wrong.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "headend"
SRC = Path(__file__).resolve().parents[1] / "src"

# layer -> the layers it may import (its own is always allowed). ``headend`` itself (the
# package's __init__: the version) is a base anyone may use. ``config`` and ``logs`` are
# settings and logging set-up: settings are built once and passed into factories, so only
# the command line and the composition root touch them.
EVERYTHING = frozenset(
    {
        "domain",
        "protocol",
        "profiles",
        "simulator",
        "vee",
        "store",
        "services",
        "scheduling",
        "api",
        "cli",
        "runtime",
        "config",
        "logs",
    }
)
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "protocol": frozenset({"domain"}),
    "profiles": frozenset({"domain"}),
    "simulator": frozenset({"domain", "profiles", "protocol"}),
    "vee": frozenset({"domain"}),
    "store": frozenset({"domain"}),
    "services": frozenset({"domain", "protocol", "profiles", "simulator", "vee", "store"}),
    "scheduling": frozenset({"services", "domain"}),
    "api": frozenset({"services", "domain"}),
    "cli": EVERYTHING,
    "runtime": EVERYTHING,
    "config": frozenset({"domain"}),
    "logs": frozenset(),
}
# third-party packages a layer must not import: api never touches ORM models or sessions,
# scheduling goes through services, the pure layers know nothing of SQL or HTTP
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {
    "domain": frozenset({"sqlalchemy", "fastapi", "starlette", "uvicorn"}),
    "protocol": frozenset({"sqlalchemy", "fastapi", "starlette", "uvicorn"}),
    "profiles": frozenset({"sqlalchemy", "fastapi", "starlette", "uvicorn"}),
    "vee": frozenset({"sqlalchemy", "fastapi", "starlette", "uvicorn"}),
    "api": frozenset({"sqlalchemy"}),
    "scheduling": frozenset({"sqlalchemy"}),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (``headend...`` or a third-party top-level name)
    line: int


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p, src): p for p in sorted((src / PACKAGE).rglob("*.py"))}


def layer_of(module: str) -> str:
    """``headend.services.billing.service`` -> ``services``; ``headend`` -> ``headend``."""
    parts = module.split(".")
    if len(parts) == 1:
        return PACKAGE
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements anywhere under ``node`` (functions and classes too), skipping the
    body of ``if TYPE_CHECKING:`` (its ``else`` runs, so it counts)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield from _walk(ast.Module(body=[orelse], type_ignores=[]))
        elif isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        else:
            yield from _walk(child)


def imports(module: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, _target(alias.name, known), node.lineno))
            continue
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            if not is_package:
                anchor = anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        if base == "__future__":
            continue
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            target = candidate if candidate in known else _target(base, known)
            found.append(Import(module, target, node.lineno))
    return found


def _target(name: str, known: set[str]) -> str:
    """The module an import of ``name`` names: the longest known prefix inside the package,
    else the top-level name of a third-party (or standard) package."""
    if name.split(".")[0] != PACKAGE:
        return name.split(".")[0]
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts) or name


def graph(src: Path = SRC) -> list[Import]:
    found = modules(src)
    known = set(found)
    return [edge for name, path in found.items() for edge in imports(name, path, known)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan)."""
    nodes = sorted({e.source for e in edges})
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edges:
        if e.target.startswith(PACKAGE) and e.target in succ and e.target != e.source:
            succ[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(succ[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(nodes)))
    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(groups)


def layer_violations(edges: list[Import]) -> list[Import]:
    """Imports the layer table does not allow (one per statement and module imported)."""
    bad: list[Import] = []
    for e in dict.fromkeys(edges):
        source = layer_of(e.source)
        if e.target.split(".")[0] == PACKAGE:
            target = layer_of(e.target)
            if target in (source, PACKAGE):
                continue
            if target not in ALLOWED.get(source, frozenset()):
                bad.append(e)
        elif e.target in FORBIDDEN_THIRD_PARTY.get(source, frozenset()):
            bad.append(e)
    return bad


def report(src: Path = SRC) -> list[str]:
    """One line per problem; empty when the graph is clean."""
    edges = graph(src)
    found = modules(src)
    lines = [f"import cycle: {' <-> '.join(group)}" for group in cycles(edges)]
    for e in layer_violations(edges):
        where = found[e.source].relative_to(src.parent)
        lines.append(
            f"{where}:{e.line}: {layer_of(e.source)} may not import {e.target}"
            f" ({layer_of(e.target) if e.target.startswith(PACKAGE) else 'third party'})"
        )
    return lines


def main() -> int:
    problems = report()
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print("imports: no cycles, every layer imports only what DESIGN.md allows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
