"""Which library paths the CLI refuses before the agent starts, and in which words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mobile_backup.agent import library_problem


def test_a_usable_folder_new_or_existing_is_fine(tmp_path: Path) -> None:
    assert library_problem(tmp_path) is None
    assert library_problem(tmp_path / "new" / "library") is None


def test_a_file_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "is a file" in (library_problem(tmp_path / "f") or "")
    assert f"{tmp_path / 'f'} is a file" in (library_problem(tmp_path / "f" / "lib") or "")


def test_read_only_folders_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Permissions cannot be taken away from root (as tests run here): ask os.access instead.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    assert "is read-only" in (library_problem(tmp_path) or "")
    assert f"{tmp_path} is read-only" in (library_problem(tmp_path / "lib") or "")
