"""What every command shares: consoles, the selected profile, progress and summaries."""

from __future__ import annotations

import json
import signal
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mobile_backup.core import Settings, load_settings

if TYPE_CHECKING:
    from mobile_backup.agent import Outcome
    from mobile_backup.client import ApiClient, FileResult, UploadSummary

# Lines are never broken by rich (a terminal wraps them itself): a file's line stays one line
# for `grep` and for a script reading a pipe, where rich would assume 80 columns.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _complete_profile(incomplete: str) -> list[str]:
    from mobile_backup.commands.profiles import complete_profile

    return complete_profile(incomplete)


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Deployment to use (`local` is the local stack; without it, the default or "
        "only profile: `mobile-backup profiles list`). Env: MOBILE_BACKUP_PROFILE.",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]


class State:
    """Options of the root command, seen by every subcommand."""

    profile: str | None = None
    verbose: bool = False
    quiet: bool = False  # -q: no progress bars, summaries or notes; failures still print
    said_interrupted: bool = False  # a command already said how it was interrupted


state = State()


def load_profile(**overrides: Any) -> Settings:
    """The selected profile's settings, with command-line overrides on top."""
    return load_settings(state.profile, **overrides)


def deployment_name(profile_name: str) -> str:
    """What a deployment is called in invites and on members' devices: its profile's name."""
    return "household" if profile_name == "default" else profile_name


def human(n: float) -> str:
    """Bytes as a person reads them: 1234567 → "1.2 MB" (decimal units, as disks are sold)."""
    from rich.filesize import decimal

    return decimal(int(n))


SPEED_WINDOW = 5.0  # seconds of sending a speed is averaged over


class SentSpeed:
    """Bytes per second really handed to the network, averaged over the last few seconds.

    Only `on_progress` bytes count: a file found already backed up, or the parts a resumed
    upload sent in an earlier run, end at once and would otherwise read as GB/s.
    """

    def __init__(self, window: float = SPEED_WINDOW, clock: Any = None) -> None:
        import time

        self._window = window
        self._clock = clock or time.monotonic
        self._samples: deque[tuple[float, int]] = deque()
        self._started: float | None = None

    def add(self, n: int) -> None:
        now = self._clock()
        if self._started is None:
            self._started = now
        self._samples.append((now, n))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self._window:
            self._samples.popleft()

    def rate(self) -> float | None:
        """None until a second of sending has passed (too little to say)."""
        if self._started is None:
            return None
        now = self._clock()
        self._trim(now)
        span = min(self._window, now - self._started)
        if span < 1.0:
            return None
        return max(0, sum(n for _, n in self._samples)) / span


class SpeedColumn(ProgressColumn):
    """The smoothed sending speed of the task that carries one (the overall bar)."""

    def render(self, task: Task) -> Text:
        speed: SentSpeed | None = task.fields.get("speed")
        rate = speed.rate() if speed is not None else None
        if rate is None:
            return Text("")
        return Text(f"{human(rate)}/s", style="progress.data.speed")


class RichProgress:
    """An UploadSubscriber drawing an overall bar plus one bar per file in flight.

    The overall bar is labelled "hashing" until the first byte goes out (hashing a big
    folder takes a while and sends nothing), then "sending"; a dry run's first read of the
    member's ledger shows as "reading the ledger" (`on_phase`).
    """

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._lock = threading.Lock()
        self._speed = SentSpeed()
        self._overall = progress.add_task("[bold]hashing", total=0, speed=self._speed)
        self._sending = False
        self._tasks: dict[Path, TaskID] = {}
        self._sent: dict[Path, int] = {}
        self._total = 0

    def on_phase(self, *, what: str) -> None:
        """A dry run reading the member's ledger before it hashes says so on its bar."""
        if not self._sending:
            self._p.update(self._overall, description=f"[bold]{safe(what)}")

    def on_queued(self, *, path: Path, size: int) -> None:
        # (Its own sum: `Progress.tasks` copies every task, for each of 50,000 files.)
        with self._lock:
            self._total += size
            self._p.update(self._overall, total=self._total)

    def on_progress(self, *, path: Path, bytes_sent: int) -> None:
        self._speed.add(bytes_sent)
        if not self._sending and bytes_sent > 0:
            self._sending = True
            self._p.update(self._overall, description="[bold]sending")
        self._advance(path, bytes_sent)

    def on_resumed(self, *, path: Path, bytes_held: int) -> None:
        self._advance(path, bytes_held)  # on the bars, not in the speed

    def _advance(self, path: Path, n: int) -> None:
        with self._lock:
            task = self._tasks.get(path)
            if task is None:
                size = path.stat().st_size
                task = self._p.add_task(f"  {safe(path.name[:40])}", total=size)
                self._tasks[path] = task
            self._sent[path] = self._sent.get(path, 0) + n
        self._p.advance(task, n)
        self._p.advance(self._overall, n)

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
    typer.Option("--json", help="Print JSON (schemas in docs/cli.md) instead of text."),
]
UPLOAD_SCHEMA = "mobile-backup/upload/1"
DRY_RUN_SCHEMA = "mobile-backup/dry-run/1"
DEMO_SCHEMA = "mobile-backup/demo/1"
USERS_SCHEMA = "mobile-backup/users/1"
STATUS_SCHEMA = "mobile-backup/status/1"
FREE_UP_SCHEMA = "mobile-backup/free-up/1"


def print_json(data: dict[str, Any]) -> None:
    """One JSON document on stdout, for scripts (`--json`): written as it is, not through
    rich's renderer (which took 11 s for a dry run's 50,000 files)."""
    stream = out.file
    stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    stream.flush()


def summary_json(summary: UploadSummary, *, dry_run: bool = False) -> dict[str, Any]:
    """`upload --json` (`--dry-run` too): the run's counts and one entry per file (docs/cli.md:
    "JSON output")."""
    from mobile_backup.client import CANCELLED, DUPLICATE, FAILED, UPLOADED, WOULD_UPLOAD

    counts = (
        {
            "schema": DRY_RUN_SCHEMA,
            "would_upload": summary.count(WOULD_UPLOAD),
            "bytes_to_send": sum(r.size for r in summary.results if r.status == WOULD_UPLOAD),
        }
        if dry_run
        else {"schema": UPLOAD_SCHEMA, "uploaded": summary.count(UPLOADED)}
    )
    return {
        **counts,
        "already_backed_up": summary.count(DUPLICATE),
        "failed": summary.count(FAILED),
        "cancelled": summary.count(CANCELLED),
        "skipped": len(summary.skipped),
        "bytes_sent": summary.bytes_sent,
        "seconds": round(summary.seconds, 3),
        "hashed": {
            "files": summary.hashed_files,
            "bytes": summary.hashed_bytes,
            "seconds": round(summary.hashing_seconds, 3),
        },
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


def note(message: str) -> None:
    """A line for a person watching (what is happening); `-q` leaves it out."""
    if not state.quiet:
        err.print(message, highlight=False)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        SpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=state.quiet,
    )


def print_failures(summary: UploadSummary) -> None:
    """One stderr line per failed file (all `-q` prints of a run)."""
    for r in summary.failures:
        err.print(f"failed: {safe(r.path)}: {safe(r.reason)}", highlight=False)


def print_summary(summary: UploadSummary) -> None:
    from mobile_backup.client import CANCELLED, DUPLICATE, FAILED, UPLOADED

    if state.quiet:  # scripts read the exit status; failures still say which file and why
        print_failures(summary)
        return
    cancelled = summary.count(CANCELLED)
    out.print(
        f"[green]{summary.count(UPLOADED)} uploaded[/], "
        f"{summary.count(DUPLICATE)} already backed up, "
        f"[{'red' if summary.count(FAILED) else 'green'}]{summary.count(FAILED)} failed[/]"
        + (f", [yellow]{cancelled} left for the next run[/]" if cancelled else "")
        + (f", {len(summary.skipped)} skipped" if summary.skipped else "")
        + (
            f" — {human(summary.bytes_sent)} sent in {summary.seconds:.1f} s "
            f"({human(summary.throughput)}/s)"
            if summary.bytes_sent
            else f" — nothing sent ({summary.seconds:.1f} s)"
        )
    )
    for r in summary.results:
        if r.status == FAILED:
            out.print(f"  [red]✗[/] {safe(r.path)}: {safe(r.reason)}", highlight=False)
    for line in skipped_lines(summary):
        out.print(line, highlight=False)


DRY_RUN_LISTS_BACKED_UP = 50
"""A dry run lists the files already backed up one by one up to this many, else counts them."""


def print_dry_run(summary: UploadSummary) -> None:
    """`upload --dry-run`: what a real run would send, what it would not, and why."""
    from mobile_backup.client import DUPLICATE, FAILED, WOULD_UPLOAD

    if state.quiet:
        return
    would = [r for r in summary.results if r.status == WOULD_UPLOAD]
    copies = sum(1 for r in summary.results if r.copy_of is not None)
    counts = [
        f"{len(would)} to upload ({human(sum(r.size for r in would))})",
        # The real run's words: a copy of another file here is "already backed up" there.
        f"{summary.count(DUPLICATE)} already backed up"
        + (
            f" ({copies} of them {'a copy' if copies == 1 else 'copies'} of another file here)"
            if copies
            else ""
        ),
        f"{summary.count(FAILED)} unreadable" if summary.count(FAILED) else "",
        f"{len(summary.skipped)} skipped" if summary.skipped else "",
    ]
    out.print(f"dry run, nothing sent: {', '.join(c for c in counts if c)}", highlight=False)
    # What would go and what cannot are listed whole; what is backed up already, only while
    # it is a few files: a folder of years is tens of thousands of them, which would bury
    # the few that matter (and take longer to print than to look up).
    backed_up = summary.count(DUPLICATE)
    lines = []
    for r in summary.results:
        if r.status == WOULD_UPLOAD:
            lines.append(f"  [green]↑[/] {safe(r.path)} ({human(r.size)})")
        elif r.status == DUPLICATE and backed_up <= DRY_RUN_LISTS_BACKED_UP:
            lines.append(f"  [dim]=[/] {safe(r.path)}: {safe(r.reason)}")
        elif r.status == FAILED:
            lines.append(f"  [red]✗[/] {safe(r.path)}: {safe(r.reason)}")
    if backed_up > DRY_RUN_LISTS_BACKED_UP:
        lines.append(
            f"  [dim]=[/] {backed_up:,} already backed up: not listed (--json lists every file)"
        )
    lines.extend(skipped_lines(summary))
    if lines:  # one print: per line, rich's rendering costs more than the lookups
        out.print("\n".join(lines), highlight=False, emoji=False, soft_wrap=True)


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


def outcome_line(outcome: Outcome) -> str | None:
    """One line for `local up` and `agent run`: what the PC side did with one upload."""
    from mobile_backup.agent import OutcomeKind

    kind = outcome.kind
    placed = outcome.placement
    where = safe(placed.relative) if placed is not None else ""
    if kind == OutcomeKind.PLACED:
        return f"[green]received[/] {where}"
    if kind == OutcomeKind.ALREADY_PLACED:
        return f"[dim]already in the library[/] {where}"
    if kind in (OutcomeKind.FAILED, OutcomeKind.MALFORMED):
        return f"[red]failed[/] {safe(outcome.detail)}"
    if kind == OutcomeKind.REFUSED:
        return f"[yellow]kept out of the library[/] {safe(outcome.detail)}"
    if kind == OutcomeKind.BLOCKED:
        return f"[yellow]paused[/] {safe(outcome.detail)}"
    if kind == OutcomeKind.ERROR:
        return f"[yellow]will retry[/] {safe(outcome.detail)}"
    return None  # stale duplicates, messages put back on stop: nothing to tell


def show_outcome(outcome: Outcome) -> None:
    """Print `outcome_line` (not with -q)."""
    line = outcome_line(outcome)
    if line is not None and not state.quiet:
        out.print(line, highlight=False)
