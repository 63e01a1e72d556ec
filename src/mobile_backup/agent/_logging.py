"""The agent's rotating log file, next to its state in the library's hidden dir.

A service has no terminal: the log is where the owner (or `agent status`) finds out why
nothing arrived. It rotates at `MAX_BYTES`, keeping `BACKUPS` old files, so months of
running never fill the disk.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from mobile_backup.core import RedactingFilter

LOG_FILE = Path(".mobile-backup", "logs", "agent.log")
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def log_path(library: Path) -> Path:
    return library / LOG_FILE


def configure_file_log(
    path: Path,
    *,
    level: int = logging.INFO,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
    logger_name: str = "mobile_backup",
) -> RotatingFileHandler:
    """Send `logger_name`'s records at `level` and above to a rotating file; returns the
    handler (remove it with `logging.getLogger(logger_name).removeHandler`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())  # the log outlives any presigned URL it might show
    target = logging.getLogger(logger_name)
    target.addHandler(handler)
    if target.level == logging.NOTSET or target.level > level:
        target.setLevel(level)
    return handler
