"""The PC agent: consume download messages, verify, file by capture date, write receipts.

One agent serves a household: each member's media goes under their own folder of the
library, laid out by a path template (default `{user}/{year}/{month}/{filename}`).
"""

from __future__ import annotations

from mobile_backup.agent._admin import (
    AgentStatus,
    agent_status,
    pc_registry,
    redrive,
    register_pc,
)
from mobile_backup.agent._capture import media_capture_time
from mobile_backup.agent._config import AgentConfig
from mobile_backup.agent._launch import (
    AgentOptions,
    build_agent,
    library_root,
    run_agent,
)
from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._paths import (
    MAX_FILENAME_BYTES,
    ensure_inside,
    relative_path,
    sanitize_filename,
)
from mobile_backup.agent._placement import (
    STAGING_DIR,
    FileState,
    Library,
    Placement,
    library_problem,
)
from mobile_backup.agent._reconcile import Reconciler
from mobile_backup.agent._service import ServicePlan, launchd_plan, systemd_plan
from mobile_backup.agent._service import install as install_service
from mobile_backup.agent._service import uninstall as uninstall_service
from mobile_backup.agent._state import Health, PlacedFile, StateDB
from mobile_backup.agent._template import DEFAULT_TEMPLATE, PathTemplate
from mobile_backup.agent._transfer import Downloader, TransferConfig
from mobile_backup.agent._winservice import (
    Pywin32Api,
    install_windows_service,
    uninstall_windows_service,
)
from mobile_backup.agent._worker import Agent
from mobile_backup.agent.exceptions import (
    AgentError,
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    LibraryInUseError,
    LibraryOfAnotherPcError,
    MalformedMessageError,
    ObjectMissingError,
    UnsafePathError,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_FILENAME_BYTES",
    "STAGING_DIR",
    "Agent",
    "AgentConfig",
    "AgentError",
    "AgentOptions",
    "AgentStatus",
    "ContentMismatchError",
    "DownloadError",
    "DownloadIntegrityError",
    "Downloader",
    "FileState",
    "Health",
    "Library",
    "LibraryInUseError",
    "LibraryOfAnotherPcError",
    "MalformedMessageError",
    "ObjectMissingError",
    "Outcome",
    "OutcomeKind",
    "PathTemplate",
    "PlacedFile",
    "Placement",
    "Pywin32Api",
    "Reconciler",
    "ServicePlan",
    "StateDB",
    "TransferConfig",
    "UnsafePathError",
    "agent_status",
    "build_agent",
    "ensure_inside",
    "install_service",
    "install_windows_service",
    "launchd_plan",
    "library_problem",
    "library_root",
    "media_capture_time",
    "pc_registry",
    "redrive",
    "register_pc",
    "relative_path",
    "run_agent",
    "sanitize_filename",
    "systemd_plan",
    "uninstall_service",
    "uninstall_windows_service",
]
