"""The shape of the code, held by a test: which component may import which (the layer map,
declared once, here, and drawn in docs/development.md), components use each other's public names
only, AWS is called only through its gateways, no import cycle between modules, no module
that has grown past ~500 lines, no frame walking in product code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mobile_backup"
MAX_LINES = 520

# Which component may import which: each sits above what it imports, nothing imports
# upward. `core` needs nothing; the AWS gateways (`aws`) and the ledger sit on it; the
# components on those; `local` runs the whole system; `commands` (the CLI) drives it all.
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "instrument": {"core"},
    "media": {"core"},
    "infra": {"core"},
    "aws": {"core", "instrument"},
    "ledger": {"core", "aws"},
    "api": {"core", "aws", "ledger"},
    "ingest": {"core", "aws", "ledger"},
    "client": {"core", "aws", "media", "instrument"},
    "agent": {"core", "aws", "ledger", "media", "instrument"},
    "app": {"core", "client", "media"},
    "deploy": {"core", "aws", "infra"},
    "local": {"core", "aws", "infra", "api", "ingest", "client", "agent"},
    "commands": {
        "core", "aws", "infra", "ledger", "client", "agent", "app", "deploy", "local", "media",
    },
    "cli": {"core", "commands"},
    "__main__": {"cli"},
}  # fmt: skip
# The only code that names botocore's exceptions (`aws/_boundary.py` maps them to ours).
GATEWAYS = ("aws",)
_BOTOCORE_ERRORS = re.compile(r"\b(ClientError|BotoCoreError|boto_errors|botocore\.exceptions)\b")


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


def _component_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_component_imports_only_what_the_layer_map_allows() -> None:
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        component = _component_of(path)
        for imported in _imports(path, top_level_only=False):
            parts = imported.split(".")
            if len(parts) > 1 and parts[1] != component and parts[1] != "__version__":
                found.setdefault(component, set()).add(parts[1])
    assert set(found) <= set(LAYERS), "a component the layer map does not know"
    offences = {c: sorted(used - LAYERS[c]) for c, used in found.items() if used - LAYERS[c]}
    assert offences == {}


def test_the_layer_map_has_no_cycle_and_names_real_components() -> None:
    components = {_component_of(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert set(LAYERS) == components
    done: set[str] = set()

    def depth(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"the layer map has a cycle: {(*trail, name)}"
        for below in LAYERS[name]:
            depth(below, (*trail, name))
        done.add(name)

    for name in LAYERS:
        depth(name, ())


def test_only_the_gateways_name_botocores_exceptions() -> None:
    offences = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if _component_of(path) not in GATEWAYS
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _BOTOCORE_ERRORS.search(line)
    ]
    assert offences == []


def test_no_product_code_walks_the_call_stack() -> None:
    walking = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "_getframe" in path.read_text(encoding="utf-8")
    ]
    assert walking == []


ROOT = SRC.parents[1]
# Binary files belong only in test data; tools come from the dev extra, never the tree.
BINARY_ALLOWED = ("tests/data/",)
_NOT_SOURCE = {"test-output", "node_modules", "__pycache__", "build", "dist"}


def _repository_files() -> list[str]:
    """The files a checkout holds: git's list, or (no git) a walk skipping what it ignores."""
    import subprocess

    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        return [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if path.is_file()
            and not any(
                part.startswith(".") or part in _NOT_SOURCE or part.endswith(".egg-info")
                for part in path.relative_to(ROOT).parts[:-1]
            )
        ]


def test_no_binary_file_is_committed_outside_test_data() -> None:
    binary = []
    for name in _repository_files():
        path = ROOT / name
        if name.startswith(BINARY_ALLOWED) or not path.is_file():
            continue
        with path.open("rb") as handle:
            if b"\0" in handle.read(8192):
                binary.append(name)
    assert binary == []


def test_the_documented_layer_map_is_the_one_checked_here() -> None:
    """docs/development.md's "What runs where" shows the layer map; it must be this one, not
    a memory."""
    readme = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    block = readme.split("component   may import\n", 1)[1].split("```", 1)[0]
    shown: dict[str, set[str]] = {}
    for line in block.strip().splitlines():
        name, _, imports = line.partition(" ")
        imports = imports.strip()
        shown[name] = set() if imports.startswith("(") else set(imports.split(", "))
    expected = {name: below for name, below in LAYERS.items() if name != "__main__"}
    assert shown == expected
