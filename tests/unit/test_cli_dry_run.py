"""`upload --dry-run`'s text at a family's scale (issue 32): the files that would go and those
that cannot are listed whole; the backed-up ones one by one only while they are few."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from mobile_backup.client import DUPLICATE, FAILED, WOULD_UPLOAD, FileResult, UploadSummary
from mobile_backup.commands import _common


def printed(monkeypatch: pytest.MonkeyPatch, summary: UploadSummary) -> list[str]:
    buffer = io.StringIO()
    monkeypatch.setattr(_common, "out", Console(file=buffer, soft_wrap=True, width=80))
    _common.print_dry_run(summary)
    return buffer.getvalue().splitlines()


def results(
    status: str, count: int, *, start: int = 0, reason: str | None = None
) -> list[FileResult]:
    return [
        FileResult(Path(f"/phone/IMG_{n:05d}.jpg"), status, 1000, reason=reason)
        for n in range(start, start + count)
    ]


def test_a_folder_of_years_lists_what_would_go_and_counts_what_is_backed_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = UploadSummary(
        results=[
            *results(DUPLICATE, 49_990, reason="already backed up, on the PC"),
            *results(WOULD_UPLOAD, 9, start=60_000),
            *results(FAILED, 1, start=70_000, reason="permission denied"),
        ]
    )
    lines = printed(monkeypatch, summary)
    assert lines[0].startswith("dry run, nothing sent: 9 to upload")
    assert "49990 already backed up" in lines[0]
    assert sum("↑" in line for line in lines) == 9
    assert [line for line in lines if "✗" in line] == [
        "  ✗ /phone/IMG_70000.jpg: permission denied"
    ]
    assert "  = 49,990 already backed up: not listed (--json lists every file)" in lines
    assert len(lines) == 1 + 9 + 1 + 1


def test_a_few_backed_up_files_are_each_named_and_a_name_is_printed_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    odd = FileResult(Path("/phone/:smile: [b]x[/b].jpg"), WOULD_UPLOAD, 10)
    summary = UploadSummary(
        results=[*results(DUPLICATE, _common.DRY_RUN_LISTS_BACKED_UP, reason="on the PC"), odd]
    )
    lines = printed(monkeypatch, summary)
    assert sum(line.startswith("  = /phone/IMG_") for line in lines) == 50
    assert "  ↑ /phone/:smile: [b]x[/b].jpg (10 bytes)" in lines
