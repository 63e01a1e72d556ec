"""Each package publishes exactly what the rest of the house uses of it (httpx's rule, derived).

No list is copied here: what a package publishes is its `__init__`'s `__all__`, and what the
house uses of it is read from every `from mobile_backup.<package> import ...` in the source,
the tests and the benchmarks outside that package. A name used but not published (a
component reaching past the door), or published and used by nobody (a door to nowhere), fails.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "mobile_backup"
READERS = [SRC.parent, ROOT / "tests", ROOT / "bench", ROOT / "testkit"]
PACKAGES = sorted(
    p.parent.name for p in SRC.glob("*/__init__.py") if "__all__" in p.read_text("utf-8")
)


def _uses() -> dict[str, dict[str, set[str]]]:
    """package → name → the files outside it that import the name from the package."""
    uses: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for folder in READERS:
        for path in folder.rglob("*.py"):
            if ".venv" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                parts = node.module.split(".")
                if parts[0] != "mobile_backup" or len(parts) != 2:
                    continue
                package = parts[1]
                if path.is_relative_to(SRC / package):
                    continue  # a package's own modules are inside the door
                for alias in node.names:
                    uses[package][alias.name].add(str(path.relative_to(ROOT)))
    return uses


USES = _uses()


def test_every_package_with_a_door_is_checked() -> None:
    assert {"agent", "client", "core", "media", "api", "ingest"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_unique_sorted_and_resolves(package: str) -> None:
    module = importlib.import_module(f"mobile_backup.{package}")
    names = list(module.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n)) or (
        names == sorted(names)
    ), "ruff's RUF022 order"
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_what_the_house_uses_is_published_and_nothing_else(package: str) -> None:
    module = importlib.import_module(f"mobile_backup.{package}")
    published = set(module.__all__)
    used = USES.get(package, {})
    submodules = {p.stem for p in (SRC / package).glob("*.py")} | {
        p.name for p in (SRC / package).iterdir() if p.is_dir()
    }
    unpublished = {
        name: sorted(where)
        for name, where in used.items()
        if name not in published and name not in submodules  # `from pkg import exceptions`
    }
    assert unpublished == {}, "used from outside but not in __all__"
    unused = sorted(
        name
        for name in published - set(used)
        if not _part_of_the_contract(module, name, {n for n in published if n in used})
    )
    assert unused == [], "in __all__ but used by nothing outside the package"


def _part_of_the_contract(module: object, name: str, used: set[str]) -> bool:
    """An error the package raises (callers catch it by name), or a type in the signature
    of a published name that is used (what a caller is handed or hands in)."""
    value = getattr(module, name)
    if isinstance(value, type) and issubclass(value, BaseException):
        return True
    for other in used:
        target = getattr(module, other)
        callables = [target]
        if isinstance(target, type):
            callables = [
                v for k, v in vars(target).items() if not k.startswith("_") or k == "__init__"
            ]
            callables.append(vars(target).get("__init__"))
        for fn in callables:
            fn = getattr(fn, "fget", fn)
            notes = getattr(fn, "__annotations__", None)
            if isinstance(notes, dict) and any(
                name in _tokens(str(note)) for note in notes.values()
            ):
                return True
        if isinstance(target, type) and any(
            name in _tokens(str(note))
            for klass in target.__mro__
            for note in getattr(klass, "__annotations__", {}).values()
        ):
            return True
    return False


def _tokens(annotation: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annotation))
