"""The agent as a Windows service (pywin32), importable anywhere.

pywin32 exists only on Windows. This module imports without it: the service class then
derives from a stand-in, and everything that decides something (service name, command,
start type, restart-on-failure actions, what stop does) is plain Python that the tests run
on Linux. Only `WindowsServiceApi`, a thin layer over the real pywin32 calls, needs Windows;
it is injected, so tests pass a recording fake.

Installing: `mobile-backup agent install` → `install_windows_service`, which registers
`AgentService` for automatic start, sets restart-on-failure actions, and stores the profile
and config file in the service's registry options (read back by `SvcDoRun`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

SERVICE_NAME = "MobileBackupAgent"
DISPLAY_NAME = "Mobile Backup agent"
DESCRIPTION = "Downloads your phone's photos and videos from your AWS account into your library."
CLASS_STRING = "mobile_backup.agent._winservice.AgentService"
# Windows constants (winsvc.h), spelled out so the logic is testable without pywin32.
SERVICE_AUTO_START = 0x2
SC_ACTION_RESTART = 1
SERVICE_CONFIG_FAILURE_ACTIONS = 2
RESTART_DELAYS_MS = (10_000, 30_000, 60_000)
RESET_PERIOD_SECONDS = 24 * 3600
STOP_WAIT_HINT_MS = 60_000

try:  # pragma: no cover - Windows only
    import servicemanager
    import win32service
    import win32serviceutil

    _Framework: Any = win32serviceutil.ServiceFramework
    HAVE_PYWIN32 = True
except ImportError:
    HAVE_PYWIN32 = False

    class _Framework:  # type: ignore[no-redef]
        """Stand-in for `win32serviceutil.ServiceFramework` where pywin32 is absent."""

        def __init__(self, args: Any) -> None:
            self.args = args

        def ReportServiceStatus(self, status: int, waitHint: int = 0) -> None:
            logger.debug("service status %s (wait hint %d ms)", status, waitHint)


def failure_actions() -> dict[str, Any]:
    """`ChangeServiceConfig2(SERVICE_CONFIG_FAILURE_ACTIONS)`: restart after 10 s, 30 s,
    then every 60 s; the count resets after a day without failures."""
    return {
        "ResetPeriod": RESET_PERIOD_SECONDS,
        "RebootMsg": None,
        "Command": None,
        "Actions": [(SC_ACTION_RESTART, delay) for delay in RESTART_DELAYS_MS],
    }


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What the service reads back from its registry options when it starts."""

    profile: str | None
    config_file: Path


class WindowsServiceApi(Protocol):
    """The few pywin32 calls installing needs (a fake in tests)."""

    def install(self, *, class_string: str, name: str, display_name: str, description: str,
                start_type: int) -> None: ...  # fmt: skip

    def set_failure_actions(self, name: str, actions: dict[str, Any]) -> None: ...

    def set_option(self, name: str, option: str, value: str) -> None: ...

    def get_option(self, name: str, option: str) -> str | None: ...

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def remove(self, name: str) -> None: ...


class Pywin32Api:  # pragma: no cover - Windows only
    """`WindowsServiceApi` over the real pywin32."""

    def __init__(self) -> None:
        if not HAVE_PYWIN32:
            from mobile_backup.agent.exceptions import ServiceInstallError

            raise ServiceInstallError(
                "installing the Windows service needs pywin32: pip install 'mobile-backup[agent]'"
            )

    def install(self, *, class_string: str, name: str, display_name: str, description: str,
                start_type: int) -> None:  # fmt: skip
        win32serviceutil.InstallService(
            class_string, name, display_name, startType=start_type, description=description
        )

    def set_failure_actions(self, name: str, actions: dict[str, Any]) -> None:
        scm = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
        try:
            handle = win32service.OpenService(scm, name, win32service.SERVICE_ALL_ACCESS)
            try:
                win32service.ChangeServiceConfig2(handle, SERVICE_CONFIG_FAILURE_ACTIONS, actions)
            finally:
                win32service.CloseServiceHandle(handle)
        finally:
            win32service.CloseServiceHandle(scm)

    def set_option(self, name: str, option: str, value: str) -> None:
        win32serviceutil.SetServiceCustomOption(name, option, value)

    def get_option(self, name: str, option: str) -> str | None:
        value = win32serviceutil.GetServiceCustomOption(name, option, None)
        return None if value is None else str(value)

    def start(self, name: str) -> None:
        win32serviceutil.StartService(name)

    def stop(self, name: str) -> None:
        win32serviceutil.StopService(name)

    def remove(self, name: str) -> None:
        win32serviceutil.RemoveService(name)


def install_windows_service(
    api: WindowsServiceApi, *, profile: str | None, config_file: Path, start: bool = True
) -> None:
    """Register the service (automatic start, restart on failure) and remember its profile."""
    api.install(
        class_string=CLASS_STRING,
        name=SERVICE_NAME,
        display_name=DISPLAY_NAME,
        description=DESCRIPTION,
        start_type=SERVICE_AUTO_START,
    )
    api.set_failure_actions(SERVICE_NAME, failure_actions())
    api.set_option(SERVICE_NAME, "profile", profile or "")
    api.set_option(SERVICE_NAME, "config_file", str(config_file))
    if start:
        api.start(SERVICE_NAME)


def uninstall_windows_service(api: WindowsServiceApi, *, stop: bool = True) -> None:
    if stop:
        try:
            api.stop(SERVICE_NAME)
        except Exception as exc:  # already stopped is fine; removal still proceeds
            logger.info("stopping %s: %s", SERVICE_NAME, exc)
    api.remove(SERVICE_NAME)


def read_options(api: WindowsServiceApi) -> ServiceOptions:
    profile = api.get_option(SERVICE_NAME, "profile") or None
    config_file = api.get_option(SERVICE_NAME, "config_file")
    if not config_file:
        raise RuntimeError("the service has no config_file option; reinstall it")
    return ServiceOptions(profile=profile, config_file=Path(config_file))


class ServiceRunner:
    """What the service does, without Windows: run the agent until stopped.

    Args:
        run_agent: runs the agent with these options until the event is set (the default
            builds an Agent from the profile; tests pass their own).
    """

    def __init__(self, run_agent: Callable[[ServiceOptions, threading.Event], None]) -> None:
        self._run_agent = run_agent
        self.stop_event = threading.Event()

    def run(self, options: ServiceOptions) -> None:
        self._run_agent(options, self.stop_event)

    def stop(self) -> None:
        # The agent notices within a second, releases unstarted work and lets downloads
        # in flight finish or resume later.
        self.stop_event.set()


def run_agent_for_service(options: ServiceOptions, stop: threading.Event) -> None:
    """The default service body: the same agent as `mobile-backup agent run`."""
    from mobile_backup.agent._launch import run_agent_for_profile

    run_agent_for_profile(stop, profile=options.profile, config_file=options.config_file)


class AgentService(_Framework):  # type: ignore[misc]
    """The Windows service class that pywin32's service host instantiates."""

    _svc_name_ = SERVICE_NAME
    _svc_display_name_ = DISPLAY_NAME
    _svc_description_ = DESCRIPTION

    def __init__(self, args: Any, *, api: WindowsServiceApi | None = None,
                 runner: ServiceRunner | None = None) -> None:  # fmt: skip
        super().__init__(args)
        self._api = api
        self.runner = runner or ServiceRunner(run_agent_for_service)

    def SvcStop(self) -> None:
        self.ReportServiceStatus(_stop_pending(), waitHint=STOP_WAIT_HINT_MS)
        self.runner.stop()

    def SvcDoRun(self) -> None:
        api = self._api or Pywin32Api()
        if HAVE_PYWIN32:  # pragma: no cover - Windows only
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
        self.runner.run(read_options(api))


def _stop_pending() -> int:
    if HAVE_PYWIN32:  # pragma: no cover - Windows only
        return int(win32service.SERVICE_STOP_PENDING)
    return 3  # SERVICE_STOP_PENDING
