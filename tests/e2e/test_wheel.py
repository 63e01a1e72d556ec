"""The package as a user installs it: a built wheel, in a fresh virtualenv outside the
checkout, runs `mobile-backup demo` (which needs the template the wheel must carry)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def test_the_built_wheel_runs_the_demo_from_anywhere(tmp_path: Path) -> None:
    # Built from a clean copy of the sources: setuptools reuses a checkout's stale `build/`.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
            "test-output", "mobile-backup-demo",
        ),
    )  # fmt: skip
    dist = tmp_path / "dist"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source, cwd=source
    )
    (wheel,) = dist.glob("mobile_backup-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    # The dependencies come from the test run's own environment (no download in the test),
    # through a path entry: its `.pth` files, the editable checkout among them, stay unread.
    (packages,) = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    venv_site = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    ).stdout.strip()
    (Path(venv_site) / "deps-of-the-test-run.pth").write_text(packages + "\n", encoding="utf-8")

    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(COLUMNS="120", MOBILE_BACKUP_CONFIG_FILE=str(tmp_path / "home" / "config.toml"))
    where = run(
        python, "-c", "import mobile_backup; print(mobile_backup.__file__)", cwd=elsewhere, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not the checkout

    demo = run(venv / "bin" / "mobile-backup", "demo", cwd=elsewhere, env=env)
    assert "All 6 files verified" in demo.stdout, demo.stdout
