"""Issue 29: a phone build installs. Everything the app imports on a phone is pure Python or
a binary wheel Flet's mobile index serves (`tests/data/flet-mobile-index.toml`, a dated
copy of Flet's list) at a version our requirements accept.

The closure is walked in this environment: from `mobile-backup[phone]`, every requirement
(markers evaluated for Android), each installed distribution's RECORD telling compiled
ones (.so/.pyd/.dylib files) from pure ones. A binary distribution passes when the index
has it at a version every requirement on it accepts. A requirement made by a distribution
that is itself a binary one on the index is the index's version's business on a phone (it
is another version than this desktop's), so only the name is checked there.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

INDEX = Path(__file__).resolve().parents[1] / "data" / "flet-mobile-index.toml"
ROOT = "mobile-backup"
PHONE_EXTRA = "phone"
# What a phone's interpreter reports (the build targets Android and iOS alike).
ANDROID = {"sys_platform": "android", "platform_system": "Android", "os_name": "posix"}
COMPILED = (".so", ".pyd", ".dylib")


@dataclass
class Closure:
    binary: dict[str, list[tuple[str, SpecifierSet]]] = field(default_factory=dict)
    """Each compiled distribution and the (parent, specifier) requirements that reach it."""
    pure: set[str] = field(default_factory=set)


def _compiled(dist: metadata.Distribution) -> bool:
    return any(str(f).endswith(COMPILED) for f in dist.files or [])


def walk(root: str, extras: set[str]) -> Closure:
    """The installed closure of `root[extras]` as a phone would resolve its markers."""
    closure = Closure()
    todo = [(root, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), frozenset(wanted))
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        parent_binary = _compiled(dist)
        if parent_binary:
            closure.binary.setdefault(key[0], [])
        else:
            closure.pure.add(key[0])
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{**ANDROID, "extra": e} for e in (wanted or {""})]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            child = canonicalize_name(req.name)
            if _compiled(metadata.distribution(req.name)):
                # A binary parent's own requirement is its index version's, not this one's.
                spec = SpecifierSet() if parent_binary else req.specifier
                closure.binary.setdefault(child, []).append((key[0], spec))
            todo.append((req.name, set(req.extras)))
    return closure


def index() -> dict[str, list[Version]]:
    """Each package a phone can install compiled, and its versions ([]: any version, for
    Flet's own and for packages PyPI also publishes as pure-Python wheels)."""
    data = tomllib.loads(INDEX.read_text(encoding="utf-8"))
    found: dict[str, list[Version]] = {
        canonicalize_name(n): [Version(v) for v in vs] for n, vs in data["packages"].items()
    }
    found.update({canonicalize_name(n): [] for n in data["all_versions"]})
    found.update({canonicalize_name(n): [] for n in data["pure_wheels"]})
    return found


def problems(closure: Closure, served: dict[str, list[Version]]) -> list[str]:
    out = []
    for name, reached_by in sorted(closure.binary.items()):
        if name not in served:
            parents = ", ".join(sorted({p for p, _ in reached_by})) or "us"
            out.append(f"{name} (needed by {parents}) is compiled and not on Flet's index")
            continue
        versions = served[name]
        if not versions:
            continue  # every version is built
        if not any(all(v in spec for _, spec in reached_by) for v in versions):
            wanted = "; ".join(f"{p}: {s or 'any'}" for p, s in reached_by)
            out.append(f"{name}: no version on Flet's index ({versions}) satisfies {wanted}")
    return out


def test_every_compiled_package_the_phone_app_needs_is_on_flets_index() -> None:
    closure = walk(ROOT, {PHONE_EXTRA})
    assert problems(closure, index()) == []
    assert "awscrt" not in closure.binary
    assert "awscrt" not in closure.pure
    assert {"pydantic-core", "pillow"} <= set(closure.binary)  # the walk sees compiled ones


def test_the_check_fails_for_a_compiled_package_flet_does_not_serve() -> None:
    """As when a requirement pulls in a compiled package the index lacks (awscrt was one)."""
    closure = walk(ROOT, {PHONE_EXTRA})
    closure.binary["awscrt"] = [("mobile-backup", SpecifierSet(">=0.20"))]
    closure.binary["pydantic-core"].append(("pydantic", SpecifierSet("==2.46.5")))
    found = problems(closure, index())
    assert found[0] == "awscrt (needed by mobile-backup) is compiled and not on Flet's index"
    assert found[1].startswith("pydantic-core: no version on Flet's index")
    assert found[1].endswith("pydantic: ==2.46.5")
    assert len(found) == 2


def test_the_flet_build_installs_exactly_the_phone_extra() -> None:
    """`flet build` installs `[project].dependencies` and `[tool.flet.<platform>]
    .dependencies`: the platforms' lists are the phone extra, so the closure checked here is
    the one a phone gets."""
    pyproject = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    )
    phone = [
        r
        for r in pyproject["project"]["optional-dependencies"][PHONE_EXTRA]
        if not r.startswith(ROOT)
    ]
    client = pyproject["project"]["optional-dependencies"]["client"]
    for platform in ("android", "ios"):
        assert pyproject["tool"]["flet"][platform]["dependencies"] == [*client, *phone]


@pytest.mark.parametrize("name", ["pydantic-core", "pillow", "msgpack"])
def test_the_snapshot_reads_back(name: str) -> None:
    assert index()[name]
