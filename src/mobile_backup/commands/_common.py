"""What every command shares: consoles, the selected profile, progress and summaries."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mobile_backup.core import Settings, load_settings

if TYPE_CHECKING:
    from mobile_backup.client import ApiClient, FileResult, UploadSummary

out = Console()
err = Console(stderr=True)

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Deployment to use (`local` is the local stack). Env: MOBILE_BACKUP_PROFILE.",
        show_default=False,
    ),
]


class State:
    """Options of the root command, seen by every subcommand."""

    profile: str | None = None
    verbose: bool = False


state = State()


def load_profile(**overrides: Any) -> Settings:
    """The selected profile's settings, with command-line overrides on top."""
    return load_settings(state.profile, **overrides)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


class RichProgress:
    """An UploadSubscriber drawing an overall bar plus one bar per file in flight."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._lock = threading.Lock()
        self._overall = progress.add_task("[bold]all files", total=0)
        self._tasks: dict[Path, TaskID] = {}
        self._sent: dict[Path, int] = {}

    def on_queued(self, *, path: Path, size: int) -> None:
        with self._lock:
            total = (self._p.tasks[self._overall].total or 0) + size
            self._p.update(self._overall, total=total)

    def on_progress(self, *, path: Path, bytes_sent: int) -> None:
        with self._lock:
            task = self._tasks.get(path)
            if task is None:
                size = path.stat().st_size
                task = self._p.add_task(f"  {safe(path.name[:40])}", total=size)
                self._tasks[path] = task
            self._sent[path] = self._sent.get(path, 0) + bytes_sent
        self._p.advance(task, bytes_sent)
        self._p.advance(self._overall, bytes_sent)

    def on_done(self, *, result: FileResult) -> None:
        with self._lock:
            task = self._tasks.pop(result.path, None)
            shown = self._sent.pop(result.path, 0)
        if task is not None:
            self._p.remove_task(task)
        # Skipped, failed or interrupted bytes still count as dealt with for the overall bar.
        self._p.advance(self._overall, max(0, result.size - shown))


JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print JSON (schema in the README) instead of text."),
]
UPLOAD_SCHEMA = "mobile-backup/upload/1"
STATUS_SCHEMA = "mobile-backup/status/1"


def print_json(data: dict[str, Any]) -> None:
    """One JSON document on stdout, for scripts (`--json`)."""
    out.print_json(json.dumps(data), highlight=False)


def summary_json(summary: UploadSummary) -> dict[str, Any]:
    """`upload --json`: the run's counts and one entry per file (README: "JSON output")."""
    from mobile_backup.client import CANCELLED, DUPLICATE, FAILED, UPLOADED

    return {
        "schema": UPLOAD_SCHEMA,
        "uploaded": summary.count(UPLOADED),
        "already_backed_up": summary.count(DUPLICATE),
        "failed": summary.count(FAILED),
        "cancelled": summary.count(CANCELLED),
        "skipped": len(summary.skipped),
        "bytes_sent": summary.bytes_sent,
        "seconds": round(summary.seconds, 3),
        "files": [
            {
                "path": str(r.path),
                "status": "already_backed_up" if r.status == DUPLICATE else r.status,
                "size": r.size,
                "sha256": r.sha256,
                "reason": r.reason,
            }
            for r in summary.results
        ]
        + [
            {
                "path": str(s.path),
                "status": "skipped",
                "size": None,
                "sha256": None,
                "reason": s.reason if s.detail is None else f"{s.reason}: {s.detail}",
            }
            for s in summary.skipped
        ],
    }


SHOWN_PER_REASON = 5


def skipped_lines(summary: UploadSummary) -> list[str]:
    """What a scan left, grouped by reason, with the first few names of each group."""
    from mobile_backup.client import group_skipped

    lines = []
    for reason, items in group_skipped(summary.skipped).items():
        names = ", ".join(safe(s.path.name) for s in items[:SHOWN_PER_REASON])
        more = len(items) - SHOWN_PER_REASON
        tail = f" … and {more} more (--json lists every file)" if more > 0 else ""
        lines.append(f"  [dim]skipped {len(items)} {safe(reason)}:[/] {names}{tail}")
    return lines


def safe(text: object) -> str:
    """User or cloud text (a file name, a ledger entry, an error) ready for Rich: markup
    escaped, so `x[/b].jpg` prints as itself, and secrets redacted (core/_redact.py)."""
    from rich.markup import escape

    from mobile_backup.core import redact

    return escape(redact(str(text)))


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def print_summary(summary: UploadSummary) -> None:
    from mobile_backup.client import CANCELLED, DUPLICATE, FAILED, UPLOADED

    cancelled = summary.count(CANCELLED)
    out.print(
        f"[green]{summary.count(UPLOADED)} uploaded[/], "
        f"{summary.count(DUPLICATE)} already backed up, "
        f"[{'red' if summary.count(FAILED) else 'green'}]{summary.count(FAILED)} failed[/]"
        + (f", [yellow]{cancelled} left for the next run[/]" if cancelled else "")
        + (f", {len(summary.skipped)} skipped" if summary.skipped else "")
        + f" — {human(summary.bytes_sent)} sent in {summary.seconds:.1f} s "
        f"({human(summary.throughput)}/s)"
    )
    for r in summary.results:
        if r.status == FAILED:
            out.print(f"  [red]✗[/] {safe(r.path)}: {safe(r.reason)}", highlight=False)
    for line in skipped_lines(summary):
        out.print(line, highlight=False)


def api_client(settings: Settings) -> ApiClient:
    from mobile_backup.client import ApiClient, Authenticator

    base_url = settings.require("api_url")
    auth = Authenticator(settings=settings)
    auth.access_token()  # fail early with "not signed in" rather than mid-run
    return ApiClient(base_url=base_url, token=auth.access_token)


def wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
