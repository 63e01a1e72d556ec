"""The pause gate: when the library will not take files (disk full, permission denied), the
agent stops receiving, and probes with one message at a time until a file goes in again.
Nothing is failed meanwhile: messages are put back, invisible for the pause.

A pause ends as soon as the library can take files again, not when a back-off runs out:
while paused, the gate looks at the disk every second (free space for the file that was
refused; the folder writable again), and when it can, it makes the messages it put back
visible at once and asks for a reconcile pass, which fetches what a reconcile could not
place meanwhile (those files are on no queue). The back-off only decides how long to wait
for a disk nobody looks at.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from mobile_backup.agent._state import StateDB
from mobile_backup.core import MobileBackupError

logger = logging.getLogger(__name__)

HEADROOM_BYTES = 4 * 1024 * 1024
"""Free space beyond the refused file's size before the library counts as taking files."""
LOOK_EVERY_SECONDS = 1.0


class PauseGate:
    """Pauses after consecutive blocked writes, `backoff[n]` seconds after the n-th at most.

    Args:
        release: makes messages put back for the pause visible again (id, receipt handle).
    """

    def __init__(
        self,
        *,
        backoff: tuple[float, ...],
        root: Path,
        state: StateDB,
        clock: Callable[[], datetime],
        release: Callable[[list[tuple[str, str]]], object] | None = None,
        disk_free: Callable[[Path], int] | None = None,
    ) -> None:
        self._backoff = backoff
        self._root = root
        self._state = state
        self._clock = clock
        self._release = release
        self._disk_free = disk_free or _disk_free
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._streak = 0
        self._reason: str | None = None
        self._needed = 0
        self._looked_at = 0.0
        self._held: dict[str, str] = {}
        self._rerun = threading.Event()

    def block(self, what: str, reason: str, exc: OSError, *, needed_bytes: int = 0) -> str:
        """The library refused `what` (`reason`: disk_full, permission_denied, read_only):
        pause, record it for `agent status`, and return the sentence that says so."""
        free = self._disk_free(self._root)
        with self._lock:
            delay = self._backoff[min(self._streak, len(self._backoff) - 1)]
            self._streak += 1
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
            self._reason = reason
            self._needed = max(self._needed, needed_bytes)
        self._rerun.clear()
        message = (
            f"{reason.replace('_', ' ')} in {self._root} "
            f"({exc.strerror or exc}; {free} bytes free); "
            f"paused until it takes files again (at most {delay:.0f} s), nothing is lost"
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

    def hold(self, messages: list[tuple[str, str]]) -> None:
        """Messages put back, invisible for the pause: made visible again when it ends early."""
        with self._lock:
            self._held.update(messages)

    def clear(self) -> None:
        """A file went in: the pause is over."""
        with self._lock:
            was_blocked = self._streak > 0
            self._streak = 0
            self._paused_until = 0.0
            self._reason = None
            self._needed = 0
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
    def paused(self) -> bool:
        """True while a pause runs (a reconcile pass stops fetching then)."""
        with self._lock:
            return self._paused_until > time.monotonic()

    @property
    def probing(self) -> bool:
        """True after a blocked write, until one goes in: receive one message at a time."""
        with self._lock:
            return self._streak > 0

    def take_rerun(self) -> bool:
        """True once after a pause ended: time for a reconcile pass (files a reconcile could
        not place while the library refused them are on no queue)."""
        if self._rerun.is_set():
            self._rerun.clear()
            return True
        return False

    def wait_out(self, stop: threading.Event) -> bool:
        """Sleep through a pause (a second at most per call), ending it as soon as the
        library can take files again; True if a pause was waited on."""
        with self._lock:
            remaining = self._paused_until - time.monotonic()
        if remaining <= 0:
            return False
        if self._can_take_files():
            self._end_early()
            return True
        stop.wait(min(remaining, LOOK_EVERY_SECONDS))
        return True

    def _can_take_files(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._looked_at < LOOK_EVERY_SECONDS:
                return False
            self._looked_at = now
            reason, needed = self._reason, self._needed
        if reason == "disk_full":
            return self._disk_free(self._root) >= needed + HEADROOM_BYTES
        return os.access(self._root, os.W_OK | os.X_OK)

    def _end_early(self) -> None:
        with self._lock:
            self._paused_until = 0.0
            held, self._held = list(self._held.items()), {}
        logger.info("the library can take files again; ending the pause")
        try:
            self._state.set_values(paused_until=None, pause_reason=None)
        except MobileBackupError as exc:
            logger.warning("could not update the state file: %s", exc)
        if held and self._release is not None:
            self._release(held)  # the messages put back for the pause: visible again now
        self._rerun.set()


def _disk_free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1
