"""The PC agent: consume download messages, verify, file by capture date, write receipts.

One agent serves a household: each member's media goes under `{library}/{user}/{YYYY}/{MM}/`.
"""

from __future__ import annotations

from mobile_backup.agent._paths import (
    MAX_FILENAME_BYTES,
    ensure_inside,
    is_reserved_name,
    relative_path,
    sanitize_filename,
)
from mobile_backup.agent._placement import STAGING_DIR, Library, Placement
from mobile_backup.agent._worker import Agent, Outcome, OutcomeKind
from mobile_backup.agent.exceptions import (
    AgentError,
    DownloadError,
    DownloadIntegrityError,
    MalformedMessageError,
    UnsafePathError,
)

__all__ = [
    "MAX_FILENAME_BYTES",
    "STAGING_DIR",
    "Agent",
    "AgentError",
    "DownloadError",
    "DownloadIntegrityError",
    "Library",
    "MalformedMessageError",
    "Outcome",
    "OutcomeKind",
    "Placement",
    "UnsafePathError",
    "ensure_inside",
    "is_reserved_name",
    "relative_path",
    "sanitize_filename",
]
