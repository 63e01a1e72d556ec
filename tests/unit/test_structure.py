"""The shape of the code (issue 12), held by a test: components use each other's public
names only, no import cycle between modules, no module that has grown past ~500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mobile_backup"
MAX_LINES = 520


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, *, top_level_only: bool) -> list[str]:
    """Modules `path` imports (`from x import y` counts `x` and `x.y`); under
    `top_level_only`, only what runs at import time (not in functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and top_level_only:
                continue
            checking = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            if checking and top_level_only:
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names.append(child.module)
                names.extend(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child, top)

    visit(tree, True)
    return [n for n in names if n.startswith("mobile_backup")]


def _component(module: str) -> str:
    name = module.split(".")[1] if "." in module else ""
    return "commands" if name == "cli" else name  # `cli` is the CLI's entry to its commands


def test_components_use_each_others_public_names_only() -> None:
    modules = _modules()
    offences = []
    for name, path in modules.items():
        for imported in _imports(path, top_level_only=False):
            if imported not in modules:
                continue  # a name imported from a module, not a module
            private = [p for p in imported.split(".")[2:] if p.startswith("_")]
            if private and _component(imported) != _component(name):
                offences.append(f"{name} imports {imported}")
    assert offences == []


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own modules is how packages work; a cycle through
    # it would still show up through the modules themselves.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                walk(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == []


def test_no_module_has_grown_past_about_500_lines() -> None:
    sizes = {
        str(path.relative_to(SRC)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SRC.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
