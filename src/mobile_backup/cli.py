"""The `mobile-backup` command.

Every failure the user can cause ends as one readable line on stderr and a non-zero exit
code; `--verbose` adds the log (and, for a bug, the traceback) for a report.
"""

from __future__ import annotations

import getpass
import logging
import signal
import sys
import tempfile
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
from rich.table import Table

from mobile_backup import __version__
from mobile_backup.core import MobileBackupError, Settings, load_settings

if TYPE_CHECKING:
    from mobile_backup.client import FileResult, UploadSummary

log = logging.getLogger("mobile_backup.cli")
out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="mobile-backup",
    help="Back up a phone's photos and videos to your own PC through your own AWS account.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
local_app = typer.Typer(help="Run the whole system on this machine (embedded AWS emulator).")
agent_app = typer.Typer(help="The PC agent: collects uploads into your library.")
app.add_typer(local_app, name="local", no_args_is_help=True)
app.add_typer(agent_app, name="agent", no_args_is_help=True)

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Deployment to use (`local` is the local stack). Env: MOBILE_BACKUP_PROFILE.",
        show_default=False,
    ),
]


class _State:
    profile: str | None = None
    verbose: bool = False


state = _State()


def _settings(**overrides: Any) -> Settings:
    return load_settings(state.profile, **overrides)


def _version(value: bool) -> None:
    if value:
        out.print(f"mobile-backup {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    profile: ProfileOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    state.profile = profile
    state.verbose = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# ---------------------------------------------------------------------------------------
# Rendering helpers


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


class _RichProgress:
    """An UploadSubscriber drawing an overall bar plus one bar per file in flight."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._lock = threading.Lock()
        self._overall = progress.add_task("[bold]all files", total=0)
        self._tasks: dict[Path, TaskID] = {}

    def on_queued(self, *, path: Path, size: int) -> None:
        with self._lock:
            total = (self._p.tasks[self._overall].total or 0) + size
            self._p.update(self._overall, total=total)

    def on_progress(self, *, path: Path, bytes_sent: int) -> None:
        with self._lock:
            task = self._tasks.get(path)
            if task is None:
                size = path.stat().st_size
                task = self._p.add_task(f"  {path.name[:40]}", total=size)
                self._tasks[path] = task
        self._p.advance(task, bytes_sent)
        self._p.advance(self._overall, bytes_sent)

    def on_done(self, *, result: FileResult) -> None:
        with self._lock:
            task = self._tasks.pop(result.path, None)
        if task is not None:
            self._p.remove_task(task)
        if result.status != "uploaded":
            # Skipped or failed bytes still count as dealt with for the overall bar.
            self._p.advance(self._overall, result.size)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _print_summary(summary: UploadSummary) -> None:
    from mobile_backup.client import DUPLICATE, FAILED, UPLOADED

    rate = summary.bytes_sent / summary.seconds if summary.seconds > 0 else 0.0
    out.print(
        f"[green]{summary.count(UPLOADED)} uploaded[/], "
        f"{summary.count(DUPLICATE)} already backed up, "
        f"[{'red' if summary.count(FAILED) else 'green'}]{summary.count(FAILED)} failed[/] "
        f"— {_human(summary.bytes_sent)} in {summary.seconds:.1f} s ({_human(rate)}/s)"
    )
    for r in summary.results:
        if r.status == FAILED:
            out.print(f"  [red]✗[/] {r.path}: {r.reason}", markup=True, highlight=False)


# ---------------------------------------------------------------------------------------
# Commands


@local_app.command("up")
def local_up(
    library: Annotated[
        Path, typer.Option(help="Where the agent files photos.", file_okay=False)
    ] = Path("mobile-backup-demo/library"),
    emulator_port: Annotated[int, typer.Option(help="Emulator port (0 = any free port).")] = 0,
    api_port: Annotated[int, typer.Option(help="HTTP API port (0 = any free port).")] = 0,
) -> None:
    """Start the emulator, the HTTP API, the ingest poller and the agent; Ctrl+C stops them.

    Writes the `local` profile and signs the CLI in as the demo user, so that in another
    terminal `mobile-backup --profile local upload PHOTO.jpg` works at once.
    """
    from mobile_backup.client import Authenticator
    from mobile_backup.core import write_profile
    from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

    library = library.expanduser().resolve()
    stack = LocalStack(library=library, emulator_port=emulator_port, api_port=api_port)
    with err.status("starting the local stack…"):
        stack.start()
    try:
        # Sign in first: once the profile exists, `--profile local` commands work at once.
        Authenticator(settings=stack.settings).login(stack.email, stack.password)
        path = write_profile(LOCAL_PROFILE, profile_values(stack.settings))
        s = stack.settings
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_row("emulator (S3, SQS, DynamoDB, Cognito)", s.aws_endpoint_url or "")
        table.add_row("HTTP API", s.api_url or "")
        table.add_row("library (agent output)", str(library))
        table.add_row("demo user", stack.email)
        table.add_row("demo password", stack.password)
        table.add_row("profile written", f"{LOCAL_PROFILE} → {path}")
        out.print("[bold green]Local stack running.[/] The emulator keeps state in memory only.")
        out.print(table)
        out.print(
            "Try: [bold]mobile-backup --profile local upload PATH...[/]  ·  "
            "[bold]mobile-backup --profile local status[/]  ·  Ctrl+C to stop"
        )
        _wait_for_signal()
    finally:
        with err.status("stopping…"):
            stack.stop()
        out.print("Local stack stopped.")


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    library: Annotated[
        Path | None,
        typer.Option(help="Where the agent files photos (default: a new temporary folder)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the agent.")] = 60.0,
) -> None:
    """Start the stack in-process, back up sample media end to end and verify every file.

    Exits 0 only when every file arrived in the library byte-identical.
    """
    from mobile_backup.local import run_demo

    with tempfile.TemporaryDirectory(prefix="mobile-backup-demo-") as tmp:
        work = Path(tmp)
        lib = (library or work / "library").expanduser().resolve()
        with _progress() as progress:
            sub = _RichProgress(progress)
            report = run_demo(
                library=lib,
                workdir=work,
                subscribers=[sub],
                timeout=timeout,
                on_stage=lambda msg: progress.console.print(f"[dim]•[/] {msg}"),
            )
        _print_summary(report.upload)
        table = Table(title="Phone → cloud → PC", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("verified", justify="center")
        table.add_column("upload → disk", justify="right", no_wrap=True)
        table.add_column("filed as", overflow="fold")
        for row in report.rows:
            table.add_row(
                row.name,
                _human(row.size),
                "[green]✓[/]" if row.verified else f"[red]✗ {row.problem}[/]",
                f"{row.seconds:.2f} s" if row.seconds is not None else "—",
                row.placed_at.split("/", 1)[-1] if row.placed_at else "—",
            )
        out.print(table)
        if library is None:
            out.print(f"[dim]library was {lib} (temporary; use --library to keep it)[/]")
        if not report.ok:
            bad = sum(1 for r in report.rows if not r.verified)
            raise MobileBackupError(f"{bad} of {len(report.rows)} files were not verified")
        out.print(f"[bold green]All {len(report.rows)} files verified on the PC side.[/]")


@app.command()
def login(
    email: Annotated[str | None, typer.Option(help="Your account e-mail.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Sign in to the deployment; the session is kept and refreshed automatically."""
    from mobile_backup.client import Authenticator

    settings = _settings()
    email = email or typer.prompt("E-mail")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    Authenticator(settings=settings).login(email, password)
    out.print(f"Signed in as [bold]{email}[/] (profile {settings.profile}).")


@app.command()
def logout() -> None:
    """Forget the stored session of this profile."""
    from mobile_backup.client import Authenticator

    settings = _settings()
    if Authenticator(settings=settings).logout():
        out.print(f"Signed out of profile {settings.profile}.")
    else:
        out.print(f"Profile {settings.profile} had no stored session.")


def _api_client(settings: Settings) -> Any:
    from mobile_backup.client import ApiClient, Authenticator

    base_url = settings.require("api_url")
    auth = Authenticator(settings=settings)
    auth.access_token()  # fail early with "not signed in" rather than mid-run
    return ApiClient(base_url=base_url, token=auth.access_token)


@app.command()
def upload(
    paths: Annotated[
        list[Path], typer.Argument(help="Photos, videos or folders (searched for media).")
    ],
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Files sent at once.")] = 4,
) -> None:
    """Back up photos and videos: hash, skip what is already backed up, upload the rest."""
    from mobile_backup.client import Uploader, discover

    settings = _settings()
    files = discover(paths)
    api = _api_client(settings)
    try:
        with _progress() as progress:
            summary = Uploader(
                api=api, parallel=parallel, subscribers=[_RichProgress(progress)]
            ).upload(files)
    finally:
        api.close()
    _print_summary(summary)
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def status(
    limit: Annotated[int, typer.Option(min=1, help="Most recent files to list.")] = 20,
) -> None:
    """What the ledger knows: how many files are pending, in the cloud, on the PC, failed."""
    settings = _settings()
    api = _api_client(settings)
    try:
        with err.status("reading the ledger…"):
            files = api.iter_files()
    finally:
        api.close()
    counts: dict[str, int] = {}
    for f in files:
        counts[str(f.status)] = counts.get(str(f.status), 0) + 1
    out.print(
        f"{len(files)} files: "
        + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("pending", "uploaded", "downloaded", "failed")
        )
    )
    table = Table()
    for col in ("file", "size", "status", "on your PC"):
        table.add_column(col)
    for f in sorted(files, key=lambda f: f.created_at, reverse=True)[:limit]:
        receipt = f"{f.receipt.host}: {f.receipt.path}" if f.receipt else (f.failed_reason or "—")
        table.add_row(f.filename, _human(f.size), str(f.status), receipt)
    if files:
        out.print(table)


@agent_app.command("run")
def agent_run(
    library: Annotated[
        Path | None, typer.Option(help="Library root (default: the profile's `library`).")
    ] = None,
) -> None:
    """Collect uploads into the library until stopped (Ctrl+C or SIGTERM)."""
    from mobile_backup.agent import Agent

    settings = _settings(library=library)
    root = settings.library
    if root is None:
        raise MobileBackupError("no library folder: pass --library or set it in the profile")
    agent = Agent.from_settings(settings, library=root.expanduser().resolve())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.print(f"Agent collecting into {root} (Ctrl+C to stop)…")
    runner = threading.Thread(target=agent.run, args=(stop,), name="agent")
    runner.start()
    try:
        while runner.is_alive():
            runner.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        runner.join()
    out.print("Agent stopped.")


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every failure into one line and an exit code.

    Usage errors (exit 2) and `--help` are handled by the CLI framework itself.
    """
    try:
        app(args=argv)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except MobileBackupError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line, the traceback only with --verbose
        if state.verbose:
            err.print_exception()
        err.print(f"[red]internal error:[/] {type(exc).__name__}: {exc} (run with -v for details)")
        sys.exit(70)
