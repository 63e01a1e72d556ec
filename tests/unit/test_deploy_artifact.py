"""The Lambda package: what goes in, for which platform, and that it is reproducible."""

from __future__ import annotations

import itertools
import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

import mobile_backup
import mobile_backup.deploy
from mobile_backup.deploy import (
    BuildError,
    LambdaTarget,
    _artifact,
    build_artifact,
    lambda_packages,
    lambda_requirements,
    lambda_target,
    pip_command,
)
from mobile_backup.deploy import __main__ as deploy_main
from mobile_backup.infra import load_template

PACKAGE = Path(mobile_backup.__file__).resolve().parent


def _name(requirement: str) -> str:
    return requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()


def test_requirements_are_the_lambda_extra_and_the_base_minus_boto3() -> None:
    names = {_name(r) for r in lambda_requirements()}
    assert {"aws-lambda-powertools", "pyjwt", "pydantic"} <= names
    assert "pydantic-settings" not in names  # settings are read without it (cold start)
    # boto3 comes with the runtime; nothing of the client, CLI, agent, local stack or tests.
    for absent in ("boto3", "botocore", "httpx", "typer", "rich", "moto", "pillow", "pytest"):
        assert absent not in names
    assert "pyjwt[crypto]" in {r.split(">")[0].lower() for r in lambda_requirements()}


def test_requirements_from_metadata_lines() -> None:
    requires = [
        "boto3>=1.35",
        "pydantic>=2.7",
        'pywin32>=306; sys_platform == "win32"',
        'aws-lambda-powertools>=3.37; extra == "lambda"',
        "pyjwt[crypto]>=2.8; extra == 'lambda'",
        'httpx>=0.27; extra == "client"',
        'mobile-backup[client]; extra == "cli"',
        'pydantic>=2.7; extra == "lambda"',  # listed twice: kept once
    ]
    assert lambda_requirements(requires) == [
        "pydantic>=2.7",
        "aws-lambda-powertools>=3.37",
        "pyjwt[crypto]>=2.8",
    ]
    with pytest.raises(BuildError, match="must not depend on mobile-backup"):
        lambda_requirements(['mobile-backup[client]; extra == "lambda"'])


def test_the_target_comes_from_the_template() -> None:
    target = lambda_target(load_template())
    assert target == LambdaTarget(runtime="python3.13", architecture="arm64")
    assert target.python_version == "3.13"
    assert target.platform == "manylinux_2_34_aarch64"
    assert "manylinux_2_17_aarch64" in target.platforms  # = manylinux2014
    with pytest.raises(BuildError, match="runtime"):
        _ = LambdaTarget(runtime="nodejs22.x").python_version
    with pytest.raises(BuildError, match="architecture"):
        _ = LambdaTarget(architecture="mips").platforms
    with pytest.raises(BuildError, match="one Runtime"):
        lambda_target({"Globals": {"Function": {"Architectures": ["arm64", "x86_64"]}}})


def test_pip_installs_binary_wheels_for_the_lambda_platform(tmp_path: Path) -> None:
    command = pip_command(tmp_path, ["pydantic>=2.7"], LambdaTarget())
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    pairs = set(itertools.pairwise(command))
    assert ("--target", str(tmp_path)) in pairs
    assert ("--python-version", "3.13") in pairs
    assert ("--implementation", "cp") in pairs
    assert ("--platform", "manylinux_2_34_aarch64") in pairs
    assert ("--platform", "manylinux_2_17_aarch64") in pairs
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command
    assert command[-1] == "pydantic>=2.7"


class FakePip:
    """Stands in for the network: installs one small fake dependency where pip would."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> None:
        self.commands.append(list(command))
        target = Path(command[command.index("--target") + 1])
        (target / "fakedep").mkdir()
        (target / "fakedep" / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
        (target / "fakedep" / "__pycache__").mkdir()
        (target / "fakedep" / "__pycache__" / "x.pyc").write_bytes(b"\0")
        (target / "bin").mkdir()
        (target / "bin" / "fakedep").write_text("#!/bin/sh\n", encoding="utf-8")


def test_the_package_holds_the_lambda_code_and_the_dependencies_only(tmp_path: Path) -> None:
    pip = FakePip()
    # Bytecode is the subject of the tests further down.
    artifact = build_artifact(tmp_path, requirements=["fakedep"], installer=pip, precompile=False)
    assert len(pip.commands) == 1
    assert pip.commands[0][-1] == "fakedep"
    with zipfile.ZipFile(artifact.zip_path) as zf:
        names = set(zf.namelist())
    assert "fakedep/__init__.py" in names
    assert "mobile_backup/__init__.py" in names
    assert "mobile_backup/api/handler.py" in names
    assert "mobile_backup/ingest/handler.py" in names
    assert "mobile_backup/core/_settings.py" in names
    tops = {n.split("/")[1] for n in names if n.startswith("mobile_backup/") and n.count("/") > 1}
    assert tops == set(lambda_packages())
    assert {"api", "ingest", "core", "aws", "ledger"} <= tops
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("bin/") for n in names)
    assert artifact.zip_bytes == artifact.zip_path.stat().st_size
    assert artifact.unzipped_bytes > artifact.zip_bytes > 0
    assert artifact.s3_key == f"lambda/{artifact.sha256[:32]}.zip"


def test_the_zip_is_reproducible(tmp_path: Path) -> None:
    first = build_artifact(tmp_path / "a", requirements=["fakedep"], installer=FakePip())
    second = build_artifact(tmp_path / "b", requirements=["fakedep"], installer=FakePip())
    assert first.sha256 == second.sha256
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    # A rebuild in the same place replaces the old tree rather than piling up.
    third = build_artifact(tmp_path / "a", requirements=["fakedep"], installer=FakePip())
    assert third.sha256 == first.sha256


def test_a_dependency_cannot_shadow_our_package(tmp_path: Path) -> None:
    def evil(command: Sequence[str]) -> None:
        target = Path(command[command.index("--target") + 1])
        (target / "mobile_backup").mkdir()

    with pytest.raises(BuildError, match="mobile_backup"):
        build_artifact(tmp_path, requirements=["evil"], installer=evil)


def test_the_size_limit_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_artifact, "MAX_UNZIPPED_BYTES", 1000)
    with pytest.raises(BuildError, match="unzipped"):
        build_artifact(tmp_path, requirements=[], installer=FakePip())


def test_each_handler_imports_from_the_package_alone(tmp_path: Path) -> None:
    """The zip holds every module of ours the handlers import, and nothing of the client, the
    agent, the CLI, the local stack or the app: each handler is imported in an interpreter
    that sees the package's tree and the dependencies, never this checkout (no site, so no
    editable install), and every module of ours it loaded came from the tree."""
    import site
    import subprocess
    import sys

    artifact = build_artifact(tmp_path, requirements=[], installer=FakePip(), precompile=False)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    probe = (
        "import importlib, json, sys\n"
        f"sys.path[:0] = {[str(artifact.directory), *deps]!r}\n"
        "for name in ('mobile_backup.api.handler', 'mobile_backup.ingest.handler'):\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({n: getattr(m, '__file__', '') or '' for n, m in sys.modules.items()"
        " if n.startswith('mobile_backup')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    tree = str(artifact.directory)
    assert {n for n, f in loaded.items() if not f.startswith(tree)} == set()
    assert {n.split(".")[1] for n in loaded if n.count(".")} == set(lambda_packages())
    assert not {"client", "agent", "app", "local", "commands"} & set(lambda_packages())


def test_the_sam_build_entry_point_fills_the_given_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_artifact, "run_pip", FakePip())
    assert deploy_main.main(["build", str(tmp_path / "artifacts")]) == 0
    assert (tmp_path / "artifacts" / "mobile_backup" / "api" / "handler.py").is_file()
    assert (tmp_path / "artifacts" / "fakedep" / "__init__.py").is_file()
    assert "python3.13/arm64" in capsys.readouterr().out


def test_the_sam_build_entry_point_reports_a_failure_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(command: Sequence[str]) -> None:
        raise BuildError("pip could not install the Lambda dependencies: no network")

    monkeypatch.setattr(_artifact, "run_pip", broken)
    assert deploy_main.main(["build", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: pip could not install the Lambda dependencies: no network"
    )


def test_bytecode_is_compiled_for_the_runtime_when_its_python_is_here(tmp_path: Path) -> None:
    host = LambdaTarget(runtime=f"python{sys.version_info.major}.{sys.version_info.minor}")
    tag = sys.implementation.cache_tag  # e.g. cpython-311
    first = build_artifact(
        tmp_path / "a",
        target=host,
        requirements=[],
        installer=FakePip(),
        compile_with=sys.executable,
    )
    assert first.compiled
    with zipfile.ZipFile(first.zip_path) as zf:
        names = set(zf.namelist())
    assert f"mobile_backup/api/__pycache__/handler.{tag}.pyc" in names
    # unchecked-hash bytecode carries no timestamps: still reproducible.
    second = build_artifact(
        tmp_path / "b",
        target=host,
        requirements=[],
        installer=FakePip(),
        compile_with=sys.executable,
    )
    assert second.sha256 == first.sha256
    plain = build_artifact(tmp_path / "c", target=host, requirements=[], precompile=False)
    assert not plain.compiled


def test_a_shim_of_another_version_is_not_a_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mobile_backup.deploy._artifact.shutil.which", lambda name: sys.executable)
    assert _artifact.find_compiler(LambdaTarget(runtime="python3.99")) is None
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert _artifact.find_compiler(LambdaTarget(runtime=here)) == sys.executable


def test_a_pyenv_install_that_is_not_selected_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyenv's shim refuses a version the directory has not selected; its install is used."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    bin_dir = tmp_path / "pyenv" / "versions" / f"{version}.7" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / f"python{version}").symlink_to(sys.executable)
    older = tmp_path / "pyenv" / "versions" / f"{version}.1" / "bin"
    older.mkdir(parents=True)
    (older / f"python{version}").symlink_to(sys.executable)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("mobile_backup.deploy._artifact.shutil.which", lambda name: None)
    found = _artifact.find_compiler(LambdaTarget(runtime=f"python{version}"))
    assert found == str(bin_dir / f"python{version}")  # the newest patch release
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "none"))
    assert _artifact.find_compiler(LambdaTarget(runtime=f"python{version}")) is None
