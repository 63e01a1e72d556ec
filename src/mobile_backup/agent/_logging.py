"""The agent's rotating log file, next to its state in the library's hidden dir.

A service has no terminal: the log is where the owner (or `agent status`) finds out why
nothing arrived. It rotates at `MAX_BYTES`, keeping `BACKUPS` old files, so months of
running never fill the disk.

The log lives on the library's disk, so it meets a full disk first: logging's default
answer is a "--- Logging error ---" traceback on stderr for every record (44 of them in
the audit's run). Here a write the disk refuses moves the log to a bounded buffer in
memory, says so on stderr once, and writes the buffer out, with a line saying what
happened, as soon as the disk takes it again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
import time
from collections import deque
from logging.handlers import RotatingFileHandler
from pathlib import Path

from mobile_backup.core import RedactingFilter

LOG_FILE = Path(".mobile-backup", "logs", "agent.log")
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
HELD_RECORDS = 2000
"""Records kept in memory while the disk is full (the oldest are dropped beyond this)."""
RETRY_SECONDS = 5.0
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class FullDiskTolerantHandler(RotatingFileHandler):
    """A rotating file log that holds its records in memory while the disk is full."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._held: deque[str] = deque(maxlen=HELD_RECORDS)
        self._dropped = 0
        self._full_since: float | None = None
        self._tried_at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if self._full_since is None:
            super().emit(record)  # handleError below notices a full disk
            return
        try:
            line = self.format(record)
        except (TypeError, ValueError):  # a record that cannot be formatted: logging's way
            super().handleError(record)
            return
        if len(self._held) == self._held.maxlen:
            self._dropped += 1
        self._held.append(line)
        if time.monotonic() - self._tried_at >= RETRY_SECONDS:
            self._write_held()

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError) or exc.errno not in _FULL:
            super().handleError(record)
            return
        if self._full_since is None:
            self._full_since = time.monotonic()
            self._tried_at = self._full_since
            sys.stderr.write(
                f"mobile-backup agent: the disk of {self.baseFilename} is full; keeping the "
                f"last {HELD_RECORDS} log lines in memory until it has space again\n"
            )
            # What the stream still buffers would be written twice later: reopen afresh.
            stream, self.stream = self.stream, None
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(TypeError, ValueError):  # an unformattable record is lost
            self._held.append(self.format(record))

    def close(self) -> None:
        """Write what is held if the disk now takes it (a service stopping after space came
        back), then close."""
        if self._full_since is not None:
            with contextlib.suppress(OSError):
                self._write_held()
        super().close()

    def _write_held(self) -> None:
        """Try to write what was held; stay in memory if the disk is still full."""
        self._tried_at = time.monotonic()
        assert self._full_since is not None
        seconds = time.monotonic() - self._full_since
        note = (
            f"[the disk was full for {seconds:.0f} s: {len(self._held)} log lines were held "
            f"in memory{f', {self._dropped} older ones dropped' if self._dropped else ''}]"
        )
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write("\n".join([note, *self._held]) + "\n")
            self.stream.flush()
        except OSError as exc:
            if exc.errno not in _FULL:
                raise
            return
        self._held.clear()
        self._dropped = 0
        self._full_since = None


def log_path(library: Path) -> Path:
    return library / LOG_FILE


def configure_file_log(
    path: Path,
    *,
    level: int = logging.INFO,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
    logger_name: str = "mobile_backup",
) -> FullDiskTolerantHandler:
    """Send `logger_name`'s records at `level` and above to a rotating file; returns the
    handler (remove it with `logging.getLogger(logger_name).removeHandler`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = FullDiskTolerantHandler(
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
