"""`agent install` / `uninstall`: run the agent as a service that starts with the machine.

- Linux: a systemd unit (user scope by default, `--system` for a system-wide unit run as
  the installing user), `Restart=on-failure`, SIGTERM to stop (the agent releases work).
- macOS: a launchd agent plist (`RunAtLoad`, `KeepAlive` unless it exited cleanly).
- Windows: a service through pywin32 (automatic start, restart on failure); see
  `_winservice.py`.

Every unit runs `python -m mobile_backup [--profile P] agent run` with the interpreter
that installed it, and points `MOBILE_BACKUP_CONFIG_FILE` at the installing user's config,
so the service reads the same profile (and so the same library) as the user's commands.
Rendering is pure and tested; installing writes the file and, unless told not to, runs the
platform's own tool to load it.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.agent.exceptions import ServiceInstallError

UNIT_NAME = "mobile-backup-agent.service"
LAUNCHD_LABEL = "com.mobile-backup.agent"
STOP_TIMEOUT_SECONDS = 60
RESTART_SECONDS = 10

Runner = Callable[[Sequence[str]], None]


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """A unit or plist to write, and the commands that load or unload it."""

    kind: str
    """`systemd`, `launchd` or `windows`."""
    path: Path | None
    content: str
    enable: tuple[tuple[str, ...], ...]
    disable: tuple[tuple[str, ...], ...]


def agent_command(
    *, profile: str | None, python: str | None = None, library: Path | None = None
) -> list[str]:
    """The service's command line: this interpreter running the agent (into `library`
    when given, else the profile's)."""
    argv = [python or sys.executable, "-m", "mobile_backup"]
    if profile:
        argv += ["--profile", profile]
    argv += ["agent", "run"]
    if library is not None:
        argv += ["--library", str(library)]
    return argv


# systemd -----------------------------------------------------------------------------------
def systemd_quote(arg: str) -> str:
    """One ExecStart argument, quoted as systemd.syntax(7) reads it."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    if not escaped or any(ch.isspace() for ch in escaped) or escaped != arg:
        return f'"{escaped}"'
    return escaped


def systemd_unit(
    *,
    command: Sequence[str],
    config_file: Path,
    description: str,
    system: bool = False,
    user: str | None = None,
) -> str:
    """The text of a systemd service unit running `command`."""
    for value in (*command, str(config_file), description, user or ""):
        if "\n" in value or "\r" in value:
            raise ServiceInstallError("a service setting cannot contain a line break")
    lines = [
        "[Unit]",
        f"Description={description}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(systemd_quote(a) for a in command),
        f"Environment={systemd_quote('MOBILE_BACKUP_CONFIG_FILE=' + str(config_file))} "
        '"PYTHONUNBUFFERED=1"',
        "Restart=on-failure",
        f"RestartSec={RESTART_SECONDS}",
        "KillSignal=SIGTERM",
        # The agent releases unstarted work at once and gives downloads in flight a grace.
        f"TimeoutStopSec={STOP_TIMEOUT_SECONDS}",
    ]
    if system:
        if not user:
            raise ServiceInstallError("a system-wide unit needs the user to run as")
        lines.append(f"User={user}")
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}"]
    return "\n".join(lines) + "\n"


def systemd_plan(
    *,
    profile: str | None,
    config_file: Path,
    library: Path,
    system: bool = False,
    unit_dir: Path | None = None,
    python: str | None = None,
    user: str | None = None,
    library_option: Path | None = None,
) -> ServicePlan:
    if unit_dir is None:
        if system:
            unit_dir = Path("/etc/systemd/system")
        else:
            base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            unit_dir = Path(base) / "systemd" / "user"
    scope = () if system else ("--user",)
    content = systemd_unit(
        command=agent_command(profile=profile, python=python, library=library_option),
        config_file=config_file,
        description=f"Mobile Backup agent (files photos and videos into {library})",
        system=system,
        user=user or _current_user(),
    )
    return ServicePlan(
        kind="systemd",
        path=unit_dir / UNIT_NAME,
        content=content,
        enable=(
            ("systemctl", *scope, "daemon-reload"),
            ("systemctl", *scope, "enable", "--now", UNIT_NAME),
        ),
        disable=(("systemctl", *scope, "disable", "--now", UNIT_NAME),),
    )


# launchd -----------------------------------------------------------------------------------
def launchd_plist(*, command: Sequence[str], config_file: Path, log_dir: Path) -> str:
    """The text of a launchd agent plist running `command`."""
    data = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        # Restart after a crash, not after a clean stop.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_SECONDS,
        "ExitTimeOut": STOP_TIMEOUT_SECONDS,
        "ProcessType": "Background",
        "EnvironmentVariables": {
            "MOBILE_BACKUP_CONFIG_FILE": str(config_file),
            "PYTHONUNBUFFERED": "1",
        },
        "StandardOutPath": str(log_dir / "agent.stdout.log"),
        "StandardErrorPath": str(log_dir / "agent.stderr.log"),
    }
    return plistlib.dumps(data).decode("utf-8")


def launchd_plan(
    *,
    profile: str | None,
    config_file: Path,
    log_dir: Path,
    agents_dir: Path | None = None,
    python: str | None = None,
    uid: int | None = None,
    library_option: Path | None = None,
) -> ServicePlan:
    agents_dir = agents_dir or Path.home() / "Library" / "LaunchAgents"
    path = agents_dir / f"{LAUNCHD_LABEL}.plist"
    domain = f"gui/{uid if uid is not None else _uid()}"
    return ServicePlan(
        kind="launchd",
        path=path,
        content=launchd_plist(
            command=agent_command(profile=profile, python=python, library=library_option),
            config_file=config_file,
            log_dir=log_dir,
        ),
        enable=(("launchctl", "bootstrap", domain, str(path)),),
        disable=(("launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"),),
    )


# Install -----------------------------------------------------------------------------------
def run_command(argv: Sequence[str]) -> None:
    """Run a service manager command; a failure is one readable ServiceInstallError."""
    if shutil.which(argv[0]) is None:
        raise ServiceInstallError(f"{argv[0]} is not available on this machine")
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceInstallError(
            f"{' '.join(argv)} failed: {detail[-1] if detail else result.returncode}"
        )


def install(plan: ServicePlan, *, start: bool = True, runner: Runner = run_command) -> None:
    """Write the unit/plist (atomically) and, with `start`, load and start it."""
    if plan.path is None:
        raise ServiceInstallError(f"{plan.kind} services are installed through their own API")
    try:
        plan.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = plan.path.with_name(plan.path.name + ".tmp")
        tmp.write_text(plan.content, encoding="utf-8")
        os.replace(tmp, plan.path)
    except OSError as exc:
        raise ServiceInstallError(f"cannot write {plan.path}: {exc}") from exc
    if start:
        for argv in plan.enable:
            runner(argv)


def uninstall(plan: ServicePlan, *, stop: bool = True, runner: Runner = run_command) -> bool:
    """Stop and remove the unit/plist; False if it was not installed."""
    if plan.path is None:
        raise ServiceInstallError(f"{plan.kind} services are removed through their own API")
    if not plan.path.exists():
        return False
    if stop:
        for argv in plan.disable:
            runner(argv)
    plan.path.unlink()
    if stop and plan.kind == "systemd":
        runner(plan.enable[0])  # daemon-reload, so systemd forgets the unit
    return True


def _current_user() -> str:
    import getpass

    return getpass.getuser()


def _uid() -> int:
    getuid = getattr(os, "getuid", None)
    return int(getuid()) if getuid is not None else 0
