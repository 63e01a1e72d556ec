"""Service installers, tested as far as Linux allows: generated files parsed and checked,
the Windows service's logic run without pywin32."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mobile_backup.agent import _service, _winservice
from mobile_backup.agent.exceptions import ServiceInstallError

CONFIG = Path("/home/ann/.config/mobile-backup/config.toml")
LIBRARY = Path("/srv/photos")


def parse_unit(text: str) -> configparser.ConfigParser:
    # systemd units are INI-like; strict mode also catches a key written twice.
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def systemd_unquote(value: str) -> list[str]:
    """Split an ExecStart line as systemd does for our quoting (shlex-compatible here)."""
    return [a.replace("$$", "$").replace("%%", "%") for a in shlex.split(value, posix=True)]


def test_user_unit_runs_this_python_with_restart_and_sigterm(tmp_path: Path) -> None:
    plan = _service.systemd_plan(
        profile="home", config_file=CONFIG, library=LIBRARY, unit_dir=tmp_path
    )
    assert plan.path == tmp_path / "mobile-backup-agent.service"
    unit = parse_unit(plan.content)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    argv = systemd_unquote(service["ExecStart"])
    assert argv == [sys.executable, "-m", "mobile_backup", "--profile", "home", "agent", "run"]
    assert Path(argv[0]).is_absolute()
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    assert systemd_unquote(service["Environment"]) == [
        f"MOBILE_BACKUP_CONFIG_FILE={CONFIG}",
        "PYTHONUNBUFFERED=1",
    ]
    assert "User" not in service
    assert unit["Install"]["WantedBy"] == "default.target"
    assert unit["Unit"]["After"] == "network-online.target"
    assert plan.enable[-1] == ("systemctl", "--user", "enable", "--now", plan.path.name)


def test_system_unit_runs_as_the_installing_user(tmp_path: Path) -> None:
    plan = _service.systemd_plan(
        profile=None, config_file=CONFIG, library=LIBRARY, system=True, unit_dir=tmp_path,
        user="ann",
    )  # fmt: skip
    unit = parse_unit(plan.content)
    assert unit["Service"]["User"] == "ann"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "--profile" not in unit["Service"]["ExecStart"]
    assert "--user" not in plan.enable[-1]


def test_awkward_paths_are_quoted_for_systemd() -> None:
    command = ["/opt/My Python/bin/python", "-m", "mobile_backup", "--profile", 'a"b%c$d']
    text = _service.systemd_unit(command=command, config_file=Path("/x y/c.toml"), description="d")
    exec_start = parse_unit(text)["Service"]["ExecStart"]
    assert systemd_unquote(exec_start) == command


def test_a_line_break_cannot_inject_unit_settings() -> None:
    with pytest.raises(ServiceInstallError):
        _service.systemd_unit(
            command=["/usr/bin/python", "x\nExecStartPre=/bin/rm -rf /"],
            config_file=CONFIG,
            description="d",
        )


def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    plan = _service.systemd_plan(
        profile="home", config_file=CONFIG, library=LIBRARY, unit_dir=tmp_path
    )
    _service.install(plan, start=False)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(plan.path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "mobile-backup-agent" not in result.stderr + result.stdout


def test_launchd_plist_is_valid_and_keeps_the_agent_alive(tmp_path: Path) -> None:
    plan = _service.launchd_plan(
        profile="home", config_file=CONFIG, log_dir=tmp_path / "logs", agents_dir=tmp_path,
        uid=501,
    )  # fmt: skip
    data: dict[str, Any] = plistlib.loads(plan.content.encode())
    assert data["Label"] == "com.mobile-backup.agent"
    assert data["ProgramArguments"] == [
        sys.executable, "-m", "mobile_backup", "--profile", "home", "agent", "run",
    ]  # fmt: skip
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["EnvironmentVariables"]["MOBILE_BACKUP_CONFIG_FILE"] == str(CONFIG)
    assert plan.path == tmp_path / "com.mobile-backup.agent.plist"
    assert plan.enable == (("launchctl", "bootstrap", "gui/501", str(plan.path)),)


def test_install_writes_runs_the_commands_and_uninstall_reverses_it(tmp_path: Path) -> None:
    ran: list[Sequence[str]] = []
    plan = _service.systemd_plan(
        profile="home", config_file=CONFIG, library=LIBRARY, unit_dir=tmp_path / "units"
    )
    _service.install(plan, runner=ran.append)
    assert plan.path is not None
    assert plan.path.read_text(encoding="utf-8") == plan.content
    assert ran == list(plan.enable)
    ran.clear()
    assert _service.uninstall(plan, runner=ran.append)
    assert not plan.path.exists()
    assert ran == [*plan.disable, plan.enable[0]]
    assert not _service.uninstall(plan, runner=ran.append)


def test_a_missing_service_manager_is_one_readable_error() -> None:
    with pytest.raises(ServiceInstallError) as info:
        _service.run_command(["no-such-service-manager-xyz", "enable"])
    assert "not available" in str(info.value)


def test_a_failing_service_manager_command_reports_its_last_line() -> None:
    with pytest.raises(ServiceInstallError) as info:
        _service.run_command(["sh", "-c", "echo first >&2; echo 'Unit not found' >&2; exit 3"])
    assert str(info.value).endswith("Unit not found")


# Windows ----------------------------------------------------------------------------------
class FakeScm:
    """Records what the installer asks of Windows' service control manager."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.options: dict[str, str] = {}

    def install(self, **kwargs: Any) -> None:
        self.calls.append(("install", kwargs))

    def set_failure_actions(self, name: str, actions: dict[str, Any]) -> None:
        self.calls.append(("failure_actions", (name, actions)))

    def set_option(self, name: str, option: str, value: str) -> None:
        self.options[option] = value

    def get_option(self, name: str, option: str) -> str | None:
        return self.options.get(option)

    def start(self, name: str) -> None:
        self.calls.append(("start", name))

    def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        raise RuntimeError("service not running")

    def remove(self, name: str) -> None:
        self.calls.append(("remove", name))


def test_the_windows_module_imports_without_pywin32() -> None:
    assert not _winservice.HAVE_PYWIN32  # this is Linux
    assert _winservice.AgentService._svc_name_ == "MobileBackupAgent"


def test_windows_install_is_automatic_with_restart_on_failure() -> None:
    scm = FakeScm()
    _winservice.install_windows_service(scm, profile="home", config_file=CONFIG)
    kind, kwargs = scm.calls[0]
    assert kind == "install"
    assert kwargs["start_type"] == 2  # SERVICE_AUTO_START
    assert kwargs["class_string"] == "mobile_backup.agent._winservice.AgentService"
    kind, (name, actions) = scm.calls[1]
    assert (kind, name) == ("failure_actions", "MobileBackupAgent")
    assert actions["Actions"]
    assert all(a == 1 and d > 0 for a, d in actions["Actions"])
    assert scm.calls[-1] == ("start", "MobileBackupAgent")
    assert _winservice.read_options(scm) == _winservice.ServiceOptions("home", CONFIG)


def test_windows_uninstall_removes_even_when_the_service_is_stopped() -> None:
    scm = FakeScm()
    _winservice.uninstall_windows_service(scm)
    assert scm.calls == [("stop", "MobileBackupAgent"), ("remove", "MobileBackupAgent")]


def test_the_service_class_runs_the_agent_until_windows_stops_it() -> None:
    scm = FakeScm()
    _winservice.install_windows_service(scm, profile=None, config_file=CONFIG, start=False)
    seen: list[_winservice.ServiceOptions] = []

    def fake_agent(options: _winservice.ServiceOptions, stop: threading.Event) -> None:
        seen.append(options)
        assert stop.wait(10), "SvcStop never reached the agent"

    service = _winservice.AgentService(
        ["MobileBackupAgent"], api=scm, runner=_winservice.ServiceRunner(fake_agent)
    )
    worker = threading.Thread(target=service.SvcDoRun)
    worker.start()
    service.SvcStop()
    worker.join(10)
    assert not worker.is_alive()
    assert seen == [_winservice.ServiceOptions(None, CONFIG)]
