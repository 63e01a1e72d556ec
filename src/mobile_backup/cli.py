"""The `mobile-backup` command.

Every failure the user can cause ends as one readable line on stderr and a non-zero exit
code; `--verbose` adds the log (and, for a bug, the traceback) for a report. The commands
live in `mobile_backup.commands`, one module per area; this module assembles them.
"""

from __future__ import annotations

import enum
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from mobile_backup import __version__
from mobile_backup.commands import account, agent, free, local, mfa, profiles, upload, users
from mobile_backup.commands import app as app_cmd
from mobile_backup.commands import cost as cost_cmd
from mobile_backup.commands import deploy as deploy_cmd
from mobile_backup.commands._common import ProfileOpt, err, out, safe, state
from mobile_backup.core import ConfigError, MobileBackupError, redact_handlers

# Typer labels every argument with its Python type (`PATH <list[Path]>`); the metavar and
# the help say it better, for people.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: ""  # type: ignore[method-assign]


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _log_to(path: Path, level: int, fmt: str) -> None:
    """Append the log to `path` too; the terminal keeps its own level."""
    root = logging.getLogger()
    for handler in root.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(root.level)
    try:
        handler = logging.FileHandler(path.expanduser(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--log-file: cannot write {path}: {exc.strerror or exc}") from None
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(min(root.level, level))


def help_when_bare(ctx: typer.Context) -> None:
    """A command group run with no command: its help, exit 0."""
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help(), markup=False, highlight=False)
        raise typer.Exit(0)


app = typer.Typer(
    name="mobile-backup",
    help="Back up a phone's photos and videos to your own PC through your own AWS account.",
    # Bare, it shows its help and exits 0: help asked for is not a usage error (exit 2).
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    # `mobile-backup --install-completion` (bash, zsh, fish, PowerShell).
    add_completion=True,
    rich_markup_mode=None,
    # `-h` as well, as people type it (subcommands inherit it from this context).
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(local.app, name="local", invoke_without_command=True, callback=help_when_bare)
app.add_typer(agent.app, name="agent", invoke_without_command=True, callback=help_when_bare)
app.command(short_help="Back up sample media end to end on the local stack.")(local.demo)
app.command(short_help="Sign in, or join a household (--invite).")(account.login)
app.command()(account.logout)
app.command(short_help="Back up photos and videos (files or folders).")(upload.upload)
app.command(short_help="What the ledger knows about your files.")(account.status)
app.command(name="free-up", short_help="Delete from this device what the PCs hold, verified.")(
    free.free_up
)
app.command(name="app", short_help="Open the Mobile Backup app.")(app_cmd.app)
app.command(short_help="Deploy or update the stack in your AWS account.")(deploy_cmd.deploy)
app.add_typer(users.app, name="users", invoke_without_command=True, callback=help_when_bare)
app.add_typer(mfa.app, name="mfa", invoke_without_command=True, callback=help_when_bare)
app.add_typer(profiles.app, name="profiles", invoke_without_command=True, callback=help_when_bare)
app.command(short_help="Estimate the monthly AWS bill.")(cost_cmd.cost)


def _version(value: bool) -> None:
    if value:
        out.print(f"mobile-backup {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="For scripts: no progress bars or summaries; failures and errors still print.",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            case_sensitive=False,
            help="How much to log (default: warning; info with -v; info into --log-file).",
        ),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Also append the log to FILE (for long runs), at --log-level or info.",
        ),
    ] = None,
) -> None:
    state.profile = profile
    state.verbose = verbose
    state.quiet = quiet
    terminal = logging.getLevelNamesMapping()[log_level.value.upper()] if log_level else None
    if terminal is None:
        terminal = logging.INFO if verbose else logging.WARNING
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=terminal, format=fmt, stream=sys.stderr)
    if log_file is not None:
        _log_to(log_file, min(terminal, logging.INFO) if log_level is None else terminal, fmt)
    redact_handlers()  # `-v` shows requests, never the credentials in presigned URLs
    help_when_bare(ctx)


_GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
_GLOBAL_VALUED = frozenset({"-p", "--profile"})


def hoist_global_options(argv: list[str]) -> list[str]:
    """`--profile NAME`, `-v` and `-q` work anywhere, as with the aws CLI: move them before the
    subcommand (`mobile-backup upload X --profile local` = `mobile-backup --profile local
    upload X`). Nothing after a `--` is touched."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS:
            front.append(arg)
        elif arg in _GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        elif arg.startswith("--profile="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every failure into one line and an exit code.

    Usage errors (exit 2) and `--help` are handled by the CLI framework itself.
    """
    try:
        app(
            args=hoist_global_options(sys.argv[1:] if argv is None else argv),
            prog_name="mobile-backup",
        )
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130 and not state.said_interrupted:  # Typer's own Ctrl+C exit
            err.print("interrupted")
        raise
    except MobileBackupError as exc:
        err.print(f"[red]error:[/] {safe(exc)}", highlight=False)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line, the traceback only with --verbose
        if state.verbose:
            err.print_exception()
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {safe(exc)} (run with -v for details)"
        )
        sys.exit(70)
