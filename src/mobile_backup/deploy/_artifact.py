"""Build the Lambda deployment package: our Lambda code and the `lambda` extra, nothing else.

The functions run on Lambda's Python runtime on arm64 (both read from the template), not on
this machine, so dependencies are installed by pip *for that platform*:
`--platform manylinux_2_34_aarch64` (plus the older manylinux tags, 2014 included)
`--implementation cp --python-version 3.13 --only-binary=:all:`. Compiled dependencies
(pydantic-core, cryptography, cffi) therefore come as the runtime's wheels whatever the host
is, and no Docker or matching local Python is needed. cryptography (for PyJWT's RS256) is
half of the package.

Bytecode matters: Lambda's code directory is read-only, so a package without `.pyc` files
compiles every module on every cold start (measured: imports take ~4x longer, B6). pip
cannot compile for another Python, so the build does it with the runtime's interpreter
(`python3.13`) when one is on PATH or installed by pyenv or uv, as deterministic
unchecked-hash `.pyc` files; without one the package ships source only and
`Artifact.compiled` says so. The template's runtime is python3.13 rather than the newest
for that reason (an interpreter of it is at hand where Python is developed; SnapStart needs
3.12+).

boto3 is not bundled: every Lambda Python runtime provides it, and it would triple the
package. Only `core`, `api` and `ingest` of our own package go in, so a Lambda that imported
the client, the agent or the CLI would fail at once rather than carry them.

The zip is deterministic (sorted entries, fixed timestamps and modes): the same sources and
wheels give the same bytes, so its SHA-256 names the upload and an unchanged build changes
nothing in the stack.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_backup.deploy.exceptions import BuildError

__all__ = [
    "LAMBDA_EXTRA",
    "RUNTIME_PROVIDED",
    "Artifact",
    "LambdaTarget",
    "build_artifact",
    "find_compiler",
    "lambda_packages",
    "lambda_requirements",
    "lambda_target",
    "pip_command",
]

logger = logging.getLogger(__name__)

DISTRIBUTION = "mobile-backup"
LAMBDA_EXTRA = "lambda"
# The Lambda handlers' own packages; what they import of ours is found from their code
# (`lambda_packages`), never kept by hand: a list once forgot the packages a renovation made.
LAMBDA_ENTRIES = ("api", "ingest")
# Provided by every Lambda Python runtime; bundling them only makes the package bigger.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Lambda's limit on the unzipped size of a function and its layers.
MAX_UNZIPPED_BYTES = 262_144_000
# Amazon Linux 2023 (the python3.12+ runtimes) has glibc 2.34, so wheels for it and older
# glibcs run. pip does not widen a custom --platform to older tags by itself: list them.
_GLIBCS = ("2_34", "2_28", "2_17")
_ARCH_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
LAMBDA_TASK_ROOT = "/var/task"
# 1980-01-01, the earliest time a zip entry can hold.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Installer = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class LambdaTarget:
    """The runtime and architecture the functions run on."""

    runtime: str = "python3.13"
    architecture: str = "arm64"

    @property
    def python_version(self) -> str:
        """`3.14` for `python3.14`."""
        match = re.fullmatch(r"python(\d+\.\d+)", self.runtime)
        if not match:
            raise BuildError(f"unsupported Lambda runtime {self.runtime!r} (want pythonX.Y)")
        return match.group(1)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The pip platform tags whose wheels run on the runtime's OS and CPU, newest first."""
        machine = _ARCH_MACHINE.get(self.architecture)
        if machine is None:
            raise BuildError(f"unsupported Lambda architecture {self.architecture!r}")
        return tuple(f"manylinux_{glibc}_{machine}" for glibc in _GLIBCS)

    @property
    def platform(self) -> str:
        """The newest of `platforms` (the runtime's own)."""
        return self.platforms[0]


@dataclass(frozen=True)
class Artifact:
    """A built Lambda package: the unpacked tree and its zip."""

    directory: Path
    zip_path: Path
    sha256: str
    zip_bytes: int
    unzipped_bytes: int
    requirements: tuple[str, ...]
    target: LambdaTarget
    compiled: bool = False

    @property
    def s3_key(self) -> str:
        """Content-addressed key: an unchanged build is not uploaded (or deployed) twice."""
        return f"lambda/{self.sha256[:32]}.zip"


def lambda_target(template: Mapping[str, Any]) -> LambdaTarget:
    """Runtime and architecture from the template's `Globals.Function`."""
    function = (template.get("Globals") or {}).get("Function") or {}
    runtime = function.get("Runtime")
    architectures = function.get("Architectures") or ["x86_64"]
    if not isinstance(runtime, str) or len(architectures) != 1:
        raise BuildError("the template's Globals.Function needs one Runtime and one architecture")
    return LambdaTarget(runtime=runtime, architecture=str(architectures[0]))


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lambda_requirements(requires: Iterable[str] | None = None) -> list[str]:
    """The requirement strings the Lambda package installs.

    The distribution's base requirements plus its `lambda` extra (as installed, from the
    package metadata), minus what the runtime provides. `requires` replaces the installed
    metadata (for tests).
    """
    if requires is None:
        try:
            requires = importlib.metadata.requires(DISTRIBUTION) or []
        except importlib.metadata.PackageNotFoundError as exc:
            raise BuildError(
                f"{DISTRIBUTION} is not installed; run `pip install -e .` in the checkout"
            ) from exc
    chosen: list[str] = []
    for line in requires:
        spec, _, marker = line.partition(";")
        extra = _EXTRA_MARKER.search(marker)
        if extra is not None and extra.group(1) != LAMBDA_EXTRA:
            continue
        if marker.strip() and extra is None:
            # Platform markers (e.g. `sys_platform == 'win32'`) describe the host, not Lambda.
            continue
        match = _NAME.match(spec)
        if match is None:
            raise BuildError(f"cannot read the requirement {line!r}")
        if _canonical(match.group(1)) in RUNTIME_PROVIDED:
            continue
        if _canonical(match.group(1)) == DISTRIBUTION:
            raise BuildError(f"the {LAMBDA_EXTRA} extra must not depend on {DISTRIBUTION} itself")
        requirement = spec.strip()
        if requirement not in chosen:
            chosen.append(requirement)
    return chosen


def pip_command(
    target_dir: Path,
    requirements: Sequence[str],
    target: LambdaTarget,
    *,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The pip invocation that installs `requirements` for Lambda into `target_dir`."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc files for this host's Python would be useless on Lambda
        "--target",
        str(target_dir),
        *(arg for tag in target.platforms for arg in ("--platform", tag)),
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--only-binary=:all:",
        "--upgrade",
        *extra_args,
        *requirements,
    ]


def run_pip(command: Sequence[str]) -> None:
    """Run pip; a failure becomes a BuildError carrying pip's own last words."""
    logger.info("running %s", " ".join(command))
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(line for line in result.stderr.strip().splitlines()[-3:] if line)
        raise BuildError(f"pip could not install the Lambda dependencies: {tail or 'no output'}")


def _package_root() -> Path:
    import mobile_backup

    return Path(mobile_backup.__file__).resolve().parent


def lambda_packages(source_root: Path | None = None) -> tuple[str, ...]:
    """The subpackages of mobile_backup the Lambda handlers need: `LAMBDA_ENTRIES` and every
    one their modules import, and those import, read from the source (any import anywhere
    in a module counts, a function's lazy ones included), sorted."""
    import ast

    root = source_root or _package_root()
    needed: set[str] = set()
    todo = list(LAMBDA_ENTRIES)
    while todo:
        sub = todo.pop()
        if sub in needed:
            continue
        needed.add(sub)
        for path in sorted((root / sub).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "mobile_backup" and len(parts) > 1:
                        todo.append(parts[1])
    return tuple(sorted(needed))


def _copy_own_code(destination: Path, source_root: Path) -> None:
    package = destination / "mobile_backup"
    package.mkdir(parents=True)
    for name in ("__init__.py", "py.typed"):
        if (source_root / name).exists():
            shutil.copy2(source_root / name, package / name)
    for sub in lambda_packages(source_root):
        shutil.copytree(
            source_root / sub,
            package / sub,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def _prune(directory: Path) -> None:
    """Drop what pip leaves that Lambda never uses: console scripts and bytecode caches."""
    shutil.rmtree(directory / "bin", ignore_errors=True)
    for cache in sorted(directory.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)


def _installed_interpreters(version: str) -> list[str]:
    """`pythonX.Y` of the version managers' own installs, newest patch release first.

    pyenv's shim on PATH runs only the versions selected for the current directory, so a
    Python 3.13 installed by pyenv but not selected is found here instead; uv's installs
    are not on PATH at all.
    """
    roots = [
        Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions",
        Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python"),
    ]
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += root.glob(f"*{version}.*/bin/python{version}")
    patch = re.compile(rf"{re.escape(version)}\.(\d+)")

    def newest_first(path: Path) -> int:
        match = patch.search(path.parent.parent.name)
        return -int(match.group(1)) if match else 0

    return [str(path) for path in sorted(found, key=newest_first)]


def find_compiler(target: LambdaTarget) -> str | None:
    """An interpreter of the runtime's Python version: on PATH, else a pyenv or uv install."""
    version = target.python_version
    on_path = shutil.which(f"python{version}")
    for candidate in ([on_path] if on_path else []) + _installed_interpreters(version):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        # pyenv-style shims exist for versions that are not selected: ask the interpreter.
        if probe.stdout.strip() == version:
            return candidate
    return None


def _compile(tree: Path, interpreter: str) -> None:
    """Precompile every module for the runtime (deterministic: hashes, not mtimes)."""
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        # Tracebacks name the files where Lambda unpacks them, and the bytes do not depend
        # on the build directory.
        "-s",
        str(tree),
        "-p",
        LAMBDA_TASK_ROOT,
        str(tree),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stdout.strip().splitlines()[-3:])
        raise BuildError(f"could not precompile the Lambda package: {tail or result.stderr}")


def _zip_tree(directory: Path, zip_path: Path) -> int:
    """Zip `directory` deterministically; returns the unzipped byte count."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    total = 0
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Read-only regular files: Lambda needs no execute bit (no console scripts, and
            # shared objects are mapped, not executed), and fixed modes keep the zip stable.
            info.external_attr = 0o100644 << 16
            data = path.read_bytes()
            total += len(data)
            zf.writestr(info, data)
    tmp.replace(zip_path)
    return total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_artifact(
    output_dir: Path,
    *,
    target: LambdaTarget | None = None,
    requirements: Sequence[str] | None = None,
    installer: Installer | None = None,
    source_root: Path | None = None,
    pip_args: Sequence[str] = (),
    compile_with: str | None = None,
    precompile: bool = True,
) -> Artifact:
    """Build `output_dir/lambda/` (the tree) and `output_dir/lambda.zip`.

    `installer` runs the pip command (default `run_pip`, looked up at call time so tests can
    stand in for the network); `source_root` is the `mobile_backup` package to copy from
    (default: the one imported). `compile_with` is the interpreter that precompiles the
    tree (default: `find_compiler(target)`); `precompile=False` skips that step.
    """
    target = target or LambdaTarget()
    reqs = list(requirements) if requirements is not None else lambda_requirements()
    tree = output_dir / "lambda"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    if reqs:
        (installer or run_pip)(pip_command(tree, reqs, target, extra_args=pip_args))
    _prune(tree)
    if (tree / "mobile_backup").exists():
        raise BuildError("a dependency installed a package named mobile_backup; refusing")
    _copy_own_code(tree, source_root or _package_root())
    interpreter = (compile_with or find_compiler(target)) if precompile else None
    if interpreter is not None:
        _compile(tree, interpreter)
    else:
        logger.warning(
            "no python%s on PATH: the Lambda package ships without bytecode, so every cold "
            "start compiles it (install Python %s to precompile)",
            target.python_version,
            target.python_version,
        )
    zip_path = output_dir / "lambda.zip"
    unzipped = _zip_tree(tree, zip_path)
    if unzipped > MAX_UNZIPPED_BYTES:
        raise BuildError(
            f"the Lambda package is {unzipped / 1e6:.0f} MB unzipped; Lambda allows "
            f"{MAX_UNZIPPED_BYTES / 1e6:.0f} MB"
        )
    artifact = Artifact(
        directory=tree,
        zip_path=zip_path,
        sha256=_sha256(zip_path),
        zip_bytes=zip_path.stat().st_size,
        unzipped_bytes=unzipped,
        requirements=tuple(reqs),
        target=target,
        compiled=interpreter is not None,
    )
    logger.info("built %s: %d bytes zipped, %d unzipped", zip_path, artifact.zip_bytes, unzipped)
    return artifact
