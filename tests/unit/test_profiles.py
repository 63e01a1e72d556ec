"""Issue 31, item 10: with one profile no command needs `-p`; `profiles` lists, shows and
sets the default; `--profile` completes the names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner

from mobile_backup.cli import app
from mobile_backup.core import load_settings, selected_profile, write_profile


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("MOBILE_BACKUP_CONFIG_FILE", str(path))
    monkeypatch.delenv("MOBILE_BACKUP_PROFILE", raising=False)
    return path


def _cli(*args: str) -> Any:
    root: Any = typer.main.get_command(app)
    return CliRunner().invoke(root, list(args), env={"COLUMNS": "200"})


def test_the_only_profile_is_used_then_the_chosen_default_then_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert selected_profile() == "default"  # no file at all
    write_profile("local", {"api_url": "http://127.0.0.1:5", "local": True})
    assert load_settings().profile == "local"
    assert load_settings().api_url == "http://127.0.0.1:5"
    write_profile("home", {"api_url": "https://api.example.com"})
    assert selected_profile() == "default"  # two: no guessing
    assert load_settings().api_url is None

    chose = _cli("profiles", "default", "home")
    assert chose.exit_code == 0, chose.output
    assert load_settings().api_url == "https://api.example.com"
    assert selected_profile("local") == "local"  # --profile wins
    monkeypatch.setenv("MOBILE_BACKUP_PROFILE", "local")
    assert load_settings().profile == "local"  # and the environment

    wrong = _cli("profiles", "default", "nope")
    assert wrong.exit_code == 1
    assert "no profile named 'nope'" in str(wrong.exception)


def test_list_show_and_complete(config: Path) -> None:
    write_profile("local", {"api_url": "http://127.0.0.1:5", "local": True,
                            "aws_secret_access_key": "testing"})  # fmt: skip
    write_profile("home", {"api_url": "https://api.example.com"})
    _cli("profiles", "default", "home")
    listed = _cli("profiles", "list", "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert data["schema"] == "mobile-backup/profiles/1"
    assert data["selected"] == "home"
    assert [(p["name"], p["local"]) for p in data["profiles"]] == [("home", False), ("local", True)]
    text = _cli("profiles", "list").output
    assert any(line.startswith("*") and "home" in line for line in text.splitlines())
    shown = _cli("profiles", "show", "local").output
    assert "api_url = http://127.0.0.1:5" in shown
    assert "testing" not in shown  # a secret is never printed

    completed = subprocess.run(  # the shell's own completion protocol, as bash runs it
        [sys.executable, "-m", "mobile_backup"],
        env={
            **os.environ,
            "_MOBILE_BACKUP_COMPLETE": "complete_bash",
            "COMP_WORDS": "mobile-backup -p h",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.stdout.split() == ["home"], completed.stderr
