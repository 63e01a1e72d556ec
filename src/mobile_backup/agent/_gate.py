"""The pause gate: when the library will not take files (disk full, permission denied), the
agent stops receiving for a while, backs off as the failures repeat, and probes with one
message at a time until a file goes in again. Nothing is failed meanwhile: messages are put
back, invisible for the pause."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from mobile_backup.agent._state import StateDB
from mobile_backup.core import MobileBackupError

logger = logging.getLogger(__name__)


class PauseGate:
    """Pauses after consecutive blocked writes, `backoff[n]` seconds after the n-th."""

    def __init__(
        self,
        *,
        backoff: tuple[float, ...],
        root: Path,
        state: StateDB,
        clock: Callable[[], datetime],
    ) -> None:
        self._backoff = backoff
        self._root = root
        self._state = state
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._streak = 0

    def block(self, what: str, reason: str, exc: OSError) -> str:
        """The library refused `what` (`reason`: disk_full, permission_denied, read_only):
        pause, record it for `agent status`, and return the sentence that says so."""
        with self._lock:
            delay = self._backoff[min(self._streak, len(self._backoff) - 1)]
            self._streak += 1
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
        message = (
            f"{reason.replace('_', ' ')} in {self._root} "
            f"({exc.strerror or exc}; {_disk_free(self._root)} bytes free); "
            f"pausing {delay:.0f} s, nothing is lost"
        )
        logger.error("cannot write %s: %s", what, message)
        try:
            self._state.record_error(code=reason, message=message, at=self._clock())
            self._state.set_values(
                paused_until=self._clock() + timedelta(seconds=delay), pause_reason=reason
            )
        except MobileBackupError as state_exc:
            logger.warning("could not update the state file: %s", state_exc)
        return message

    def clear(self) -> None:
        """A file went in: the pause is over."""
        with self._lock:
            was_blocked = self._streak > 0
            self._streak = 0
            self._paused_until = 0.0
        if was_blocked:
            logger.info("the library takes files again; resuming")
            try:
                self._state.set_values(paused_until=None, pause_reason=None)
            except MobileBackupError as exc:
                logger.warning("could not update the state file: %s", exc)

    def seconds_left(self) -> float:
        """How long a message put back now should stay invisible (at least a second)."""
        with self._lock:
            return max(1.0, self._paused_until - time.monotonic())

    @property
    def probing(self) -> bool:
        """True after a blocked write, until one goes in: receive one message at a time."""
        with self._lock:
            return self._streak > 0

    def wait_out(self, stop: threading.Event) -> bool:
        """Sleep through a pause (a second at most per call); True if one was waited out."""
        with self._lock:
            remaining = self._paused_until - time.monotonic()
        if remaining <= 0:
            return False
        stop.wait(min(remaining, 1.0))
        return True


def _disk_free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1
