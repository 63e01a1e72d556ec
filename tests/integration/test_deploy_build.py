"""The Lambda build with the real pip, offline: a local wheel stands in for PyPI.

This proves that the platform flags `build_artifact` passes are ones pip accepts together
(`--target` with `--platform` x3, `--implementation`, `--python-version`,
`--only-binary=:all:`), that a pure wheel lands in the package, and that pip's own failure
reaches the user as one line. Fetching the real dependencies needs PyPI; that was run by
hand (see the report in docs/aws.md).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mobile_backup.deploy import BuildError, LambdaTarget, build_artifact


def make_wheel(directory: Path, name: str = "tinydep", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, built by hand (no build backend, no network)."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


def test_pip_installs_for_the_lambda_platform(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels)
    artifact = build_artifact(
        tmp_path / "out",
        target=LambdaTarget(runtime="python3.14", architecture="arm64"),
        requirements=["tinydep==1.0"],
        pip_args=["--no-index", "--find-links", str(wheels)],
    )
    with zipfile.ZipFile(artifact.zip_path) as zf:
        names = set(zf.namelist())
        assert zf.read("tinydep/__init__.py") == b"ANSWER = 42\n"
    assert "tinydep-1.0.dist-info/METADATA" in names
    assert "mobile_backup/api/handler.py" in names
    assert not any(n.endswith(".pyc") for n in names)


def test_a_requirement_pip_cannot_satisfy_is_one_line(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with pytest.raises(BuildError) as caught:
        build_artifact(
            tmp_path / "out",
            requirements=["tinydep==9.9"],
            pip_args=["--no-index", "--find-links", str(wheels)],
        )
    message = str(caught.value)
    assert message.startswith("pip could not install the Lambda dependencies: ")
    assert "tinydep" in message
    assert "\n" not in message
