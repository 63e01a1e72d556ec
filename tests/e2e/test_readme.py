"""The README's first backup, run as written (issue 31, item 15): its first command block in
one terminal, each line of the second in another, with a fresh home folder whose Pictures
holds the sample photos. A README that drifts from the CLI fails here."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobile_backup.local._samples import make_samples

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[list[str]]:
    """The sh blocks of the README's "First backup", each as its command lines."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## First backup", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return [
        [line.split("  #", 1)[0].strip() for line in b.splitlines() if line.strip()] for b in blocks
    ]


def _argv(line: str, home: Path) -> list[str]:
    words = shlex.split(line)
    assert words[0] == "mobile-backup", line
    return [sys.executable, "-m", "mobile_backup",
            *(str(home / w[2:]) if w.startswith("~/") else w for w in words[1:])]  # fmt: skip


def test_the_readmes_first_backup_works_as_written(tmp_path: Path) -> None:
    first, second = _blocks()
    assert len(first) == 1
    assert second
    home = tmp_path / "home"
    make_samples(home / "Pictures", photos=3)
    env = {
        **os.environ,
        "HOME": str(home),
        "MOBILE_BACKUP_CONFIG_FILE": str(home / ".config" / "mobile-backup" / "config.toml"),
        "MOBILE_BACKUP_STATE_DIR": str(home / ".local" / "share" / "mobile-backup"),
        "COLUMNS": "200",
    }
    env.pop("MOBILE_BACKUP_PROFILE", None)
    stack = subprocess.Popen(
        _argv(first[0], home), env=env, cwd=home, stdout=subprocess.PIPE, text=True
    )
    try:
        assert stack.stdout is not None
        seen = ""
        deadline = time.monotonic() + 90
        while "profile written" not in seen:
            assert stack.poll() is None, seen
            assert time.monotonic() < deadline, seen
            seen += stack.stdout.readline()
        outputs = []
        for line in second:
            ran = subprocess.run(
                _argv(line, home), env=env, cwd=home, capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
            assert ran.returncode == 0, (line, ran.stdout, ran.stderr)
            outputs.append(ran.stdout)
        assert re.search(r"\b5 uploaded\b", outputs[0]), outputs[0]
        library = home / "mobile-backup-demo" / "library" / "demo"
        deadline = time.monotonic() + 60
        while len([p for p in library.rglob("*") if p.is_file()]) < 5:
            assert time.monotonic() < deadline, "the PC side did not file the photos"
            time.sleep(0.3)
    finally:
        stack.send_signal(signal.SIGINT)
        stack.communicate(timeout=60)
