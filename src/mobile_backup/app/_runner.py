"""The worker that feeds the queue to the upload engine, a few files at a time.

Files are handed to the engine in small runs so that pause takes effect soon (files in
flight finish; no new run starts) and a change of the parallel-uploads setting applies to
the next run. The engine does the real work: hashing, dedupe, presigning, retries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from mobile_backup.app._errors import user_message
from mobile_backup.app._queue import BackupQueue
from mobile_backup.app._queue_items import FINISHED
from mobile_backup.client import NotLoggedInError, UploadSubscriber, UploadSummary

log = logging.getLogger(__name__)


class UploadEngine(Protocol):
    """What the runner needs of `client.Uploader`."""

    def upload(self, paths: Iterable[Path]) -> UploadSummary: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


# Builds an engine for one run; receives the subscribers the run must report to.
EngineFactory = Callable[[Sequence[UploadSubscriber]], UploadEngine]
# Returns why uploads must wait now (e.g. "Waiting for Wi-Fi"), or None.
Gate = Callable[[], str | None]

STOPPED_EARLY = "The upload stopped before this file finished. Tap retry."


class BackupRunner:
    """Takes waiting files from the queue and uploads them on a background thread."""

    def __init__(
        self,
        *,
        queue: BackupQueue,
        engine: EngineFactory,
        gate: Gate = lambda: None,
        run_size: Callable[[], int] = lambda: 8,
        on_run_done: Callable[[], None] | None = None,
        on_session_ended: Callable[[], None] | None = None,
    ) -> None:
        self._queue = queue
        self._engine = engine
        self._gate = gate
        self._run_size = run_size
        self._on_run_done = on_run_done
        self._on_session_ended = on_session_ended
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: UploadEngine | None = None
        self._current_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.blocked_reason: str | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="app-backup", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def cancel_current(self) -> None:
        """Stop the run in flight: unfinished files go back to waiting (see `pause`)."""
        with self._current_lock:
            if self._current is not None:
                self._current.cancel()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._queue.wait_for_work(timeout=0.5):
                continue
            self.run_once()

    def run_once(self) -> bool:
        """One run of the engine over the next waiting files; False if nothing ran."""
        reason = self._gate()
        self.blocked_reason = reason
        if reason is not None:
            self._stop.wait(1.0)
            return False
        self._idle.clear()
        paths = self._queue.claim(max(1, self._run_size()))
        if not paths:
            self._idle.set()
            return False
        engine: UploadEngine | None = None
        try:
            engine = self._engine([self._queue])
            with self._current_lock:
                self._current = engine
            if self._queue.paused:  # paused while the engine was being built
                engine.cancel()
            engine.upload(paths)
        except NotLoggedInError as exc:
            self._queue.fail(paths, user_message(exc))
            if self._on_session_ended is not None:
                self._on_session_ended()
        except Exception as exc:  # every failure becomes a per-file message, never a crash
            log.warning("upload run failed: %s", exc, exc_info=True)
            self._queue.fail(paths, user_message(exc))
        else:
            # The engine reports every file; one it did not is not left spinning forever.
            stuck = [p for p in paths if (i := self._queue.get(p)) and i.state not in FINISHED]
            if stuck:
                self._queue.fail(stuck, STOPPED_EARLY)
        finally:
            with self._current_lock:
                self._current = None
            if engine is not None:
                engine.close()
            self._idle.set()
        if self._on_run_done is not None:
            self._on_run_done()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is in flight (after `cancel_current`, its files stop where they
        are); False if one still runs after `timeout` seconds."""
        return self._idle.wait(timeout)
