"""`agent ...`: the PC side (run, status, reconcile, register, pcs, redrive, install, ...)."""

from __future__ import annotations

import getpass
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mobile_backup.commands._common import (
    JsonOpt,
    err,
    human,
    load_profile,
    out,
    safe,
    show_outcome,
    state,
)
from mobile_backup.core import ConfigError, Settings, config_file_path
from mobile_backup.ledger import MAIN_PC, PcRegistry

if TYPE_CHECKING:
    from mobile_backup.agent import Agent

app = typer.Typer(help="The PC agent: collects uploads into your library.")

# Kept here rather than read from `agent._template.FIELDS`, so that `--help` does not load the
# agent (~300 ms); tests/unit/test_cli_help.py checks the two agree.
PATH_TEMPLATE_HELP = (
    "Library layout (default '{user}/{year}/{month}/{filename}'). Fields: {user} member's "
    "name, {sub} their id, {year} {month} {day} capture date, {filename}, {stem} and {ext} "
    "the phone's name, {hash} 12 hex digits of the content's SHA-256."
)

LibraryOpt = Annotated[
    Path | None, typer.Option(help="Library root (default: the profile's `library`).")
]


PcOpt = Annotated[
    str | None,
    typer.Option(
        "--pc",
        metavar="NAME",
        help="This PC's name (default: the profile's `pc_name`, else main); see `register`.",
    ),
]


def _library(cfg: Settings) -> Path:
    from mobile_backup.agent import library_root

    return library_root(cfg)


@app.command("run", short_help="Collect uploads into the library until stopped.")
def agent_run(
    library: LibraryOpt = None,
    pc: PcOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Files at a time.")] = None,
    delete_after_download: Annotated[
        bool | None,
        typer.Option(
            "--delete-after-download/--keep-cloud-copy",
            help="Delete the cloud copy once the file is verified here (default: tag it so "
            "the bucket's lifecycle rule expires it after the retention period).",
            show_default=False,
        ),
    ] = None,
    path_template: Annotated[
        str | None,
        typer.Option(metavar="TEMPLATE", help=PATH_TEMPLATE_HELP),
    ] = None,
    max_bandwidth: Annotated[
        float | None, typer.Option(help="Download limit in MB/s (default: none).", min=0.01)
    ] = None,
    part_size: Annotated[
        int | None, typer.Option(help="MiB per ranged GET for large files.", min=1, max=512)
    ] = None,
    reconcile_every: Annotated[
        float,
        typer.Option(help="Hours between reconcile passes, one at start; 0 turns them off."),
    ] = 6.0,
    log_file: Annotated[
        Path | None, typer.Option(help="Rotating log (default: in the library's hidden dir).")
    ] = None,
    poll_seconds: Annotated[
        int | None,
        typer.Option(min=1, max=20, help="Long-poll wait; a stop waits at most this long."),
    ] = None,
) -> None:
    """Collect uploads into the library until stopped (Ctrl+C or SIGTERM), a line per file.

    Every PC gets every file: run the first PC as it is, and give each other PC its own
    queue and library with `mobile-backup agent register NAME`, then `agent run --pc NAME
    --library DIR`. A second agent on a library already collected into is refused.
    """
    from mobile_backup.agent import AgentOptions, run_agent

    cfg = load_profile(library=library, pc_name=pc)
    options = AgentOptions(
        workers=workers,
        delete_after_download=delete_after_download,
        path_template=path_template,
        max_bandwidth_bytes_per_s=int(max_bandwidth * 1_000_000) if max_bandwidth else None,
        part_size_bytes=part_size * 1024 * 1024 if part_size else None,
        reconcile_interval_s=reconcile_every * 3600 if reconcile_every else None,
        poll_wait_s=poll_seconds,
        log_file=log_file,
    )
    if not state.verbose:
        # The log file gets INFO; the terminal (or the service journal) only warnings.
        for h in logging.getLogger().handlers:
            if h.level == logging.NOTSET:
                h.setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def started(agent: Agent, log: Path) -> None:
        out.print(
            f"Agent (PC {safe(agent.pc_name)}) collecting into {safe(agent.library.root)} "
            f"(Ctrl+C to stop); log: {safe(log)}"
        )

    runner = _Runner(lambda: run_agent(cfg, options, stop=stop, on_start=started,
                                       on_outcome=show_outcome))  # fmt: skip
    try:
        runner.wait()
    except KeyboardInterrupt:
        stop.set()
        runner.wait()
    out.print("Agent stopped.")


class _Runner:
    """Runs the agent in a thread, so Ctrl+C reaches the main thread and stops it cleanly;
    what the agent raised (a refusal at start) is raised again here, for its one line."""

    def __init__(self, body: Callable[[], None]) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(body,), name="agent")
        self._thread.start()

    def _run(self, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:  # re-raised in the main thread by wait()
            self._error = exc

    def wait(self) -> None:
        while self._thread.is_alive():
            self._thread.join(0.5)
        if self._error is not None:
            raise self._error


@app.command("status", short_help="Queues, last success, files today, disk space.")
def agent_status(library: LibraryOpt = None, pc: PcOpt = None, as_json: JsonOpt = False) -> None:
    """Queue and dead-letter depth, last success, files today, disk free, last error.

    Exits 1 when the queue cannot be reached, so scripts and monitors notice.
    """
    from mobile_backup.agent import agent_status as collect
    from mobile_backup.aws import Queue, sqs_client

    cfg = load_profile(library=library, pc_name=pc)
    root = _library(cfg)
    queue_url = cfg.downloads_queue_url
    if queue_url and cfg.pc_name and cfg.pc_name != MAIN_PC:
        queue_url = pc_registry(cfg).queue_url(cfg.pc_name)
    queue = Queue(sqs_client(cfg, component="agent"), queue_url) if queue_url else None
    status = collect(library=root, queue=queue)
    data = status.as_dict()
    if as_json:
        out.print_json(json.dumps(data))
        if status.queue_error:
            raise typer.Exit(1)
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("library", safe(root))
    table.add_row("agent", "[green]running[/]" if status.running else "[yellow]not running[/]")
    if status.queue is not None:
        table.add_row(
            "queue", f"{status.queue.visible} waiting, {status.queue.in_flight} in flight"
        )
    if status.dlq is not None:
        colour = "red" if status.dlq.visible else "green"
        table.add_row("dead letters", f"[{colour}]{status.dlq.visible}[/]")
    if status.queue_error:
        table.add_row("queue", f"[red]{safe(status.queue_error)}[/]")
    table.add_row("last success", _when(data["last_success_at"]))
    table.add_row("files today", f"{data['files_today']} ({human(data['bytes_today'])})")
    table.add_row("files placed", str(data["placed_total"]))
    if data["resumable_downloads"]:
        table.add_row("resumable", f"{data['resumable_downloads']} partial download(s)")
    free = status.disk_free
    table.add_row("disk free", human(free) if free is not None else "unknown")
    if data["paused_until"]:
        table.add_row("paused", f"[red]{data['pause_reason']} until {data['paused_until']}[/]")
    if data["last_error"]:
        table.add_row(
            "last error", f"[red]{safe(data['last_error'])}[/] ({_when(data['last_error_at'])})"
        )
    out.print(table)
    if status.queue_error:
        raise typer.Exit(1)


@app.command("reconcile", short_help="Fetch every file this PC lacks.")
def agent_reconcile(
    library: LibraryOpt = None,
    pc: PcOpt = None,
    audit: Annotated[bool, typer.Option(help="Also check placed files on disk.")] = True,
    refetch: Annotated[
        bool, typer.Option(help="Fetch missing/altered files again (else only report).")
    ] = True,
    verify: Annotated[bool, typer.Option(help="Hash every placed file (slow).")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read every member's whole ledger, not only what changed since the last pass.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch every file this PC lacks (uploaded, or on another PC); audit the library.

    A pass reads only the ledger entries changed since the last complete pass (with an
    hour's overlap); the first pass, and one a week after the last full pass, read every
    entry, as `--full` does."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mobile_backup.agent import build_agent

    cfg = load_profile(library=library, pc_name=pc)
    agent = build_agent(cfg)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task("fetching from the ledger", total=None)
            reconciler = agent.reconciler(progress=lambda _o: progress.advance(task), full=full)
            report = reconciler.fetch_awaiting()
            reconciler.sweep_dead_letters(report)
            if audit:
                progress.update(task, description="auditing the library")
                reconciler.audit(report=report, refetch=refetch, verify=verify)
    finally:
        agent.close()
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "outcomes": {str(k): v for k, v in report.outcomes.items()},
                    "checked": report.checked,
                    "findings": [
                        {
                            "user": f.user_sub,
                            "sha256": f.sha256,
                            "path": f.path.as_posix(),
                            "state": str(f.state),
                            "action": f.action,
                        }
                        for f in report.findings
                    ],
                    "problems": report.problems,
                    "dead_letters_cleared": report.dead_letters_cleared,
                    "ledger_entries_read": report.ledger_entries_read,
                    "changed_since": (
                        report.changed_since.isoformat() if report.changed_since else None
                    ),
                }
            )
        )
    else:
        out.print(f"Reconciled: {report.summary()}")
        for f in report.findings:
            where = safe(f.path.as_posix())
            out.print(f"  [yellow]{f.state}[/] {where}: {safe(f.action)}", highlight=False)
        for problem in report.problems:
            out.print(f"  [red]✗[/] {safe(problem)}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("register", short_help="Give another PC its own queue.")
def agent_register(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="This PC's name, e.g. laptop (a-z, 0-9, '-').")
    ],
) -> None:
    """Give another PC its own queue, so that it too receives every file.

    The first PC needs nothing (it is `main`). On each other PC run this once, then
    `agent run --pc NAME` (or set `pc_name = "NAME"` in the profile). Files uploaded before
    it was registered come with its first `agent reconcile` while the cloud still has them.
    """
    from mobile_backup.agent import register_pc
    from mobile_backup.ledger import check_pc_name

    check_pc_name(name)  # before anything else: a bad name is the first thing to say
    cfg = load_profile()
    pc = register_pc(cfg, name)
    out.print(f"PC {safe(pc.name)} registered: every new file now goes to it too.")
    out.print("Next, on that PC (a library folder of its own; this one belongs to its PC):")
    out.print(f"  {_run_command(cfg, pc.name)}", highlight=False)


def _run_command(cfg: Settings, pc_name: str) -> str:
    """`agent run` as it works pasted: the profile, the PC and a library of its own."""

    base = cfg.library.expanduser() if cfg.library else Path.home() / "Mobile Backup"
    library = base.with_name(f"{base.name}-{pc_name}")
    parts = ["mobile-backup"]
    if state.profile:
        parts += ["-p", state.profile]
    parts += ["agent", "run", "--pc", pc_name, "--library", str(library)]
    return safe(shlex.join(parts))


@app.command("pcs", short_help="The household's PCs and their libraries.")
def agent_pcs(as_json: JsonOpt = False) -> None:
    """The household's PCs: which library each fills, and when it was last seen."""
    cfg = load_profile()
    pcs = pc_registry(cfg).all()
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "host": p.host,
                        "library": p.library,
                        "seen_at": p.seen_at.isoformat() if p.seen_at else None,
                    }
                    for p in pcs
                ]
            )
        )
        return
    if not pcs:
        out.print("No PC has run yet.")
        return
    for p in pcs:
        where = f"{safe(p.library)} on {safe(p.host)}" if p.library else "not run yet"
        seen = _when(p.seen_at.isoformat()) if p.seen_at else "never"
        out.print(f"{safe(p.name)}: {where}, last seen {seen}", highlight=False)


def pc_registry(cfg: Settings) -> PcRegistry:
    from mobile_backup.agent import pc_registry as registry

    return registry(cfg)


@app.command("redrive", short_help="Send dead-lettered files back to their PC.")
def agent_redrive(
    limit: Annotated[int | None, typer.Option(min=1, help="Move at most this many.")] = None,
) -> None:
    """Send dead-lettered download messages back to the queue of the PC each was for."""
    from mobile_backup.agent import redrive

    report = redrive(load_profile(), limit=limit)
    where = ", ".join(f"{n} to PC {safe(pc)}" for pc, n in sorted(report.moved.items()))
    out.print(f"Moved {report.total} message(s) back" + (f" ({where})." if where else "."))
    for pc, n in sorted(report.unknown_pcs.items()):
        err.print(
            f"[yellow]{n} message(s) are for PC {safe(pc)}, which has no queue: left in the "
            "dead-letter queue[/] (`agent pcs` lists the PCs)",
            highlight=False,
        )


ScopeOpt = Annotated[bool, typer.Option("--system", help="Linux: a system-wide unit (needs root).")]
StartOpt = Annotated[
    bool, typer.Option("--start/--no-start", help="Load and start it now (or only write it).")
]
StopOpt = Annotated[
    bool, typer.Option("--stop/--no-stop", help="Stop it first (or only remove its file).")
]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR",
        help="Folder for the unit/plist instead of the standard place (a folder, not a file).",
    ),
]


def _plan(system: bool, directory: Path | None, library: Path | None = None) -> Any:
    from mobile_backup.agent import launchd_plan, systemd_plan

    if directory is not None and directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dest takes a folder, and {directory} is a file")
    if directory is not None and directory.suffix in (".service", ".plist"):
        raise ConfigError(
            f"--dest takes a folder, and {directory} looks like a file name: the unit is "
            "written inside the folder under its standard name"
        )
    if library is not None:
        library = library.expanduser().resolve()
    cfg = load_profile(**({"library": library} if library is not None else {}))
    root = _library(cfg)
    if sys.platform == "darwin":
        return launchd_plan(
            profile=state.profile,
            config_file=config_file_path().resolve(),
            log_dir=root / ".mobile-backup" / "logs",
            agents_dir=directory,
            library_option=library,
        )
    return systemd_plan(
        profile=state.profile,
        config_file=config_file_path().resolve(),
        library=root,
        system=system,
        unit_dir=directory,
        library_option=library,
    )


@app.command("install", short_help="Run the agent as a service (starts with the PC).")
def agent_install(
    system: ScopeOpt = False,
    start: StartOpt = True,
    dest: DirOpt = None,
    library: LibraryOpt = None,
) -> None:
    """Run the agent as a service: Windows service, systemd unit or launchd agent."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        if library is not None:
            raise ConfigError(
                "the Windows service files into the profile's library: set `library` in the "
                "profile instead of --library"
            )
        from mobile_backup.agent import Pywin32Api, install_windows_service

        load_profile()  # a broken profile fails here, not in the service
        install_windows_service(
            Pywin32Api(),
            profile=state.profile,
            config_file=config_file_path().resolve(),
            start=start,
        )
        out.print("Installed the Windows service MobileBackupAgent (automatic start).")
        return
    from mobile_backup.agent import install_service as install

    plan = _plan(system, dest, library)
    install(plan, start=start)
    out.print(f"Installed {plan.kind} service: {safe(plan.path)}")
    if not start:
        out.print("Not started (--no-start). To start it, run:")
        for argv in plan.enable:
            out.print(f"  {safe(shlex.join(argv))}", highlight=False)
    if plan.kind == "systemd" and not system:
        out.print(
            "note: a user service stops when you log out; to keep it collecting while nobody "
            f"is logged in: loginctl enable-linger {safe(getpass.getuser())}",
            highlight=False,
        )


@app.command("uninstall")
def agent_uninstall(system: ScopeOpt = False, stop: StopOpt = True, dest: DirOpt = None) -> None:
    """Stop and remove the agent's service."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        from mobile_backup.agent import Pywin32Api, uninstall_windows_service

        uninstall_windows_service(Pywin32Api(), stop=stop)
        out.print("Removed the Windows service MobileBackupAgent.")
        return
    from mobile_backup.agent import uninstall_service as uninstall

    plan = _plan(system, dest)
    if uninstall(plan, stop=stop):
        out.print(f"Removed {safe(plan.path)}")
    else:
        out.print(f"No service installed at {safe(plan.path)}")


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    at = datetime.fromisoformat(iso)
    ago = (datetime.now(UTC) - at).total_seconds()
    if ago < 120:
        return f"{iso} ({ago:.0f} s ago)"
    if ago < 7200:
        return f"{iso} ({ago / 60:.0f} min ago)"
    return f"{iso} ({ago / 3600:.1f} h ago)"


__all__ = ["app"]
