"""`local up` and `demo`: the whole system on this machine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mobile_backup.commands._common import (
    DEMO_SCHEMA,
    JsonOpt,
    RichProgress,
    err,
    human,
    out,
    print_json,
    print_summary,
    progress_bar,
    safe,
    show_outcome,
    summary_json,
    wait_for_signal,
)
from mobile_backup.core import ConfigError, MobileBackupError

if TYPE_CHECKING:
    from mobile_backup.local import DemoReport, LocalStack

app = typer.Typer(help="Run the whole system on this machine (embedded AWS emulator).")


def _demo_json(report: DemoReport, *, kept: bool) -> dict[str, Any]:
    """`demo --json` (docs/cli.md: "JSON output")."""
    return {
        "schema": DEMO_SCHEMA,
        "ok": report.ok,
        "library": str(report.library) if kept else None,
        "upload": summary_json(report.upload),
        "files": [
            {
                "name": r.name,
                "size": r.size,
                "verified": r.verified,
                "seconds": r.seconds,
                "placed_at": r.placed_at,
                "problem": r.problem,
            }
            for r in report.rows
        ],
    }


class _Remembered:
    """What `local up` keeps beside the library between starts: its ports and password."""

    def __init__(self, path: Path) -> None:
        import json

        self.path = path
        try:
            self.values: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.values = {}
        password = self.values.get("password")
        self.password = password if isinstance(password, str) and password else None

    def free_port(self, key: str) -> int:
        """The port used last time if nothing holds it now, else 0 (any free port)."""
        import socket

        port = self.values.get(key)
        if not isinstance(port, int) or not 0 < port < 65536:
            return 0
        with socket.socket() as probe:
            # As servers bind: a port whose old connections linger (TIME_WAIT) is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return 0
        return port

    def save(self, stack: LocalStack) -> None:
        import json
        import os
        from urllib.parse import urlsplit

        s = stack.settings
        values = {
            "emulator_port": urlsplit(s.aws_endpoint_url or "").port,
            "api_port": urlsplit(s.api_url or "").port,
            "password": stack.password,  # the demo member's, on this computer's emulator only
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(values, fh)
        except OSError as exc:
            err.print(f"note: cannot remember the ports for the next start: {safe(exc)}")


def remember_local_stack(library: Path) -> _Remembered:
    return _Remembered(library / ".mobile-backup" / "local-stack.json")


@app.command("up", short_help="Run the whole system here until stopped (Ctrl+C).")
def local_up(
    library: Annotated[Path, typer.Option(help="Where the agent files photos (a folder).")] = Path(
        "mobile-backup-demo/library"
    ),
    emulator_port: Annotated[int, typer.Option(help="Emulator port (0 = any free port).")] = 0,
    api_port: Annotated[int, typer.Option(help="HTTP API port (0 = any free port).")] = 0,
) -> None:
    """Start the emulator, the HTTP API, the ingest poller and the agent; Ctrl+C stops them.

    Writes the `local` profile and signs the CLI in as the demo user, so that in another
    terminal `mobile-backup --profile local upload PHOTO.jpg` works at once.
    """
    from mobile_backup.agent import library_problem
    from mobile_backup.client import Authenticator
    from mobile_backup.core import write_profile
    from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

    library = library.expanduser().resolve()
    problem = library_problem(library)
    if problem:
        raise ConfigError(f"{problem} (--library)")
    # The same library gets the same ports and demo password at each start (when free), so
    # what another terminal or a note says stays true across restarts.
    remembered = remember_local_stack(library)
    stack = LocalStack(
        library=library,
        emulator_port=emulator_port or remembered.free_port("emulator_port"),
        api_port=api_port or remembered.free_port("api_port"),
        password=remembered.password,
        on_outcome=show_outcome,
        emulator_process=True,
    )
    with err.status("starting the local stack…") as status:

        def step(what: str) -> None:
            status.update(f"{what}…")
            if not err.is_terminal:  # a log or a pipe: a line per step instead of a spinner
                err.print(f"{what}…", highlight=False)

        stack.start(on_step=step)
    remembered.save(stack)
    try:
        # Sign in first: once the profile exists, `--profile local` commands work at once.
        Authenticator(settings=stack.settings).login(stack.email, stack.password)
        path = write_profile(LOCAL_PROFILE, profile_values(stack.settings))
        s = stack.settings
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_row("emulator (S3, SQS, DynamoDB, Cognito)", s.aws_endpoint_url or "")
        table.add_row("HTTP API", s.api_url or "")
        table.add_row("library (agent output)", safe(library))
        table.add_row("demo user", stack.email)
        table.add_row("demo password", stack.password)
        table.add_row("profile written", f"{LOCAL_PROFILE} → {path}")
        out.print("[bold green]Local stack running.[/] The emulator keeps state in memory only.")
        out.print(table)
        out.print(
            "Try: [bold]mobile-backup --profile local upload PATH...[/]  ·  "
            "[bold]mobile-backup --profile local status[/]  ·  Ctrl+C to stop"
        )
        wait_for_signal()
    finally:
        with err.status("stopping…"):
            stack.stop()
        out.print("Local stack stopped.")


def demo(
    library: Annotated[
        Path | None,
        typer.Option(help="Where the agent files photos (default: a new temporary folder)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the agent.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Start the stack in-process, back up sample media end to end and verify every file.

    Exits 0 only when every file arrived in the library byte-identical.
    """
    from mobile_backup.agent import library_problem
    from mobile_backup.local import run_demo

    if library is not None and (problem := library_problem(library.expanduser().resolve())):
        raise ConfigError(f"{problem} (--library)")
    with tempfile.TemporaryDirectory(prefix="mobile-backup-demo-") as tmp:
        work = Path(tmp)
        lib = (library or work / "library").expanduser().resolve()
        with progress_bar() as progress:
            sub = RichProgress(progress)
            report = run_demo(
                library=lib,
                workdir=work,
                subscribers=[sub],
                timeout=timeout,
                on_stage=lambda msg: progress.console.print(f"[dim]•[/] {safe(msg)}"),
            )
        if as_json:
            print_json(_demo_json(report, kept=library is not None))
            if not report.ok:
                raise typer.Exit(1)
            return
        print_summary(report.upload)
        table = Table(title="Phone → cloud → PC", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("verified", justify="center")
        table.add_column("upload → disk", justify="right", no_wrap=True)
        table.add_column("filed as", overflow="fold")
        for row in report.rows:
            table.add_row(
                safe(row.name),
                human(row.size),
                "[green]✓[/]" if row.verified else f"[red]✗ {safe(row.problem)}[/]",
                f"{row.seconds:.2f} s" if row.seconds is not None else "—",
                safe(row.placed_at) if row.placed_at else "—",
            )
        out.print(table)
        if library is None:
            out.print(f"[dim]library was {safe(lib)} (temporary; use --library to keep it)[/]")
        if not report.ok:
            bad = sum(1 for r in report.rows if not r.verified)
            raise MobileBackupError(f"{bad} of {len(report.rows)} files were not verified")
        out.print(f"[bold green]All {len(report.rows)} files verified on the PC side.[/]")
