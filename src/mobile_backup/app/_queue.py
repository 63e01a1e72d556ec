"""The backup queue: what is waiting, in flight, done or failed, and how fast it goes.

`BackupQueue` is the single source of truth for the queue screen. It is an upload-engine
subscriber (`on_queued/on_progress/on_done`, called from worker threads) and the work list
of the `BackupRunner`. Views never hold state of their own: they draw a `QueueSnapshot`
whenever `version` changes. Items that are not finished are written to a small JSON file,
so a queue interrupted by closing the app is picked up again at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from mobile_backup.app._errors import reason_message, user_message
from mobile_backup.app._folders import not_media
from mobile_backup.app._queue_items import (
    FINISHED,
    SETTLED,
    SUCCEEDED,
    ItemState,
    QueueItem,
    QueueSnapshot,
)
from mobile_backup.client import CANCELLED, DUPLICATE, UPLOADED, FileResult

log = logging.getLogger(__name__)

SPEED_WINDOW_SECONDS = 5.0
__all__ = [
    "FINISHED",
    "SUCCEEDED",
    "BackupQueue",
    "ItemState",
    "PendingStore",
    "QueueItem",
    "QueueSnapshot",
]


def _same_store(a: PendingStore | None, b: PendingStore | None) -> bool:
    return a is not None and b is not None and a.path == b.path


def _file_away(path: Path, owner: PendingStore | None, item: QueueItem) -> None:
    """A file of a member who signed out arrived whole: into their saved queue, for their
    next sign-in. An incomplete one is not queued (its bytes are not the picked file)."""
    if owner is None:
        return
    try:
        whole = path.stat().st_size == item.size
    except OSError:
        whole = False
    if not whole:
        log.warning("%s arrived incomplete after its owner signed out; not queued", item.name)
        return
    try:
        owner.save([*owner.load(), path])
    except OSError as exc:
        log.warning("cannot save %s to its owner's queue: %s", item.name, exc)


class PendingStore:
    """The unfinished items' paths in a JSON file, so the queue survives a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Path]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            log.warning("ignoring an unreadable queue file %s", self.path)
            return []
        if not isinstance(data, list):
            return []
        return [Path(p) for p in data if isinstance(p, str)]

    def save(self, paths: Iterable[Path]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([str(p) for p in paths]), encoding="utf-8")
        os.replace(tmp, self.path)


DoneHook = Callable[[QueueItem], None]


class BackupQueue:
    """Thread-safe queue state; also an `UploadSubscriber` of the upload engine."""

    def __init__(
        self,
        *,
        store: PendingStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._items: dict[Path, QueueItem] = {}
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._paused = False
        self._version = 0
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._store = store
        self._hooks: list[DoneHook] = []
        # Files a signed-out member's browser is still sending: (their store, the item).
        self._away: dict[Path, tuple[PendingStore | None, QueueItem]] = {}

    # Observing --------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Bumped on every change: a view redraws when it differs from what it drew."""
        return self._version

    def on_finished(self, hook: DoneHook) -> None:
        """Call `hook(item)` (from a worker thread) whenever an item finishes."""
        self._hooks.append(hook)

    def snapshot(self) -> QueueSnapshot:
        with self._lock:
            return QueueSnapshot(
                items=tuple(self._items.values()),
                paused=self._paused,
                speed=self._speed(),
                version=self._version,
            )

    def get(self, path: Path) -> QueueItem | None:
        with self._lock:
            return self._items.get(path)

    # Adding -------------------------------------------------------------------------
    def add(self, paths: Iterable[Path]) -> int:
        """Queue files; those already waiting or in flight are not queued twice."""
        added = 0
        with self._lock:
            for path in paths:
                current = self._items.get(path)
                if current is not None and current.state not in FINISHED:
                    continue
                try:
                    size = path.stat().st_size
                    refused = not_media(path)
                except OSError as exc:
                    self._items[path] = QueueItem(
                        path, path.name, 0, ItemState.FAILED, error=user_message(exc)
                    )
                else:
                    state = ItemState.NOT_MEDIA if refused else ItemState.WAITING
                    self._items[path] = QueueItem(path, path.name, size, state)
                self._items[path] = self._items.pop(path)  # newest last
                added += 1
            self._changed(persist=True)
        return added

    def expect(self, path: Path, *, size: int, name: str | None = None) -> None:
        """Web mode: a file the browser is about to send to `path`."""
        with self._lock:
            self._items[path] = QueueItem(path, name or path.name, size, ItemState.RECEIVING)
            self._changed()

    def receiving(self, path: Path, fraction: float) -> None:
        with self._lock:
            item = self._items.get(path)
            if item is not None and item.state == ItemState.RECEIVING:
                self._items[path] = replace(item, received=max(0.0, min(1.0, fraction)))
                self._changed()

    def received(self, path: Path) -> None:
        """The browser finished sending `path`: check it is whole, then queue it (in the
        queue of the member who picked it, if they signed out meanwhile)."""
        with self._lock:
            item = self._items.get(path)
            if item is None:
                away = self._away.pop(path, None)
                if away is not None:
                    _file_away(path, *away)
                return
            if item.state != ItemState.RECEIVING:
                return
            try:
                actual = path.stat().st_size
            except OSError as exc:
                new = replace(item, state=ItemState.FAILED, error=user_message(exc))
            else:
                refused = not_media(path) if actual == item.size else None
                if refused:
                    new = replace(item, state=ItemState.NOT_MEDIA, received=1.0)
                    path.unlink(missing_ok=True)  # the browser's copy is not kept
                elif actual == item.size:
                    new = replace(item, state=ItemState.WAITING, received=1.0)
                else:
                    new = replace(
                        item,
                        state=ItemState.FAILED,
                        error="The browser sent an incomplete file. Pick it again.",
                    )
            self._items[path] = new
            self._changed(persist=True)
        if new.state == ItemState.FAILED:
            self._run_hooks(new)

    def switch(self, store: PendingStore | None) -> None:
        """Show another member's queue (None: nobody's, while signed out).

        The current items stay in their own store (saved at every change); the new store's
        unfinished files are queued again, and the queue is no longer paused.
        """
        with self._lock:
            for path, item in self._items.items():
                if item.state == ItemState.RECEIVING:  # still arriving: it stays theirs
                    self._away[path] = (self._store, item)
            self._items.clear()
            self._samples.clear()
            self._store = store
            self._paused = False
            for path in store.load() if store is not None else []:
                try:
                    size = path.stat().st_size
                except OSError:
                    continue  # gone since (a browser copy that was cleaned up): nothing to send
                self._items[path] = QueueItem(path, path.name, size)
            for path, (owner, item) in list(self._away.items()):
                if _same_store(owner, store):  # back before the browser finished: show it
                    self._items[path] = item
                    del self._away[path]
            self._changed()

    def remove(self, path: Path) -> bool:
        """Take a file off the list (one being received, waiting or failed; not one in
        flight). A browser still sending it is ignored from then on."""
        with self._lock:
            item = self._items.get(path)
            if item is None or item.state in (ItemState.CHECKING, ItemState.UPLOADING):
                return False
            del self._items[path]
            self._changed(persist=True)
            return True

    # Controlling --------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Start no new files; the ones in flight finish."""
        with self._lock:
            self._paused = True
            self._changed()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._changed()

    def retry(self, path: Path) -> bool:
        """Queue a failed file again."""
        with self._lock:
            item = self._items.get(path)
            if item is None or item.state != ItemState.FAILED:
                return False
            try:
                size = path.stat().st_size
            except OSError as exc:
                self._items[path] = replace(item, error=user_message(exc))
                self._changed()
                return False
            self._items[path] = replace(
                item, state=ItemState.WAITING, size=size, sent=0, error=None
            )
            self._changed(persist=True)
            return True

    def retry_failed(self) -> int:
        failed = [i.path for i in self.snapshot().items if i.state == ItemState.FAILED]
        return sum(self.retry(p) for p in failed)

    def clear_finished(self) -> int:
        """Drop the files that are backed up (or passed over) from the list (failed ones
        stay)."""
        with self._lock:
            done = [p for p, i in self._items.items() if i.state in SETTLED]
            for p in done:
                del self._items[p]
            self._changed()
            return len(done)

    # The runner's side ----------------------------------------------------------------
    def wait_for_work(self, timeout: float) -> bool:
        """Block until a file is waiting (and the queue is not paused), or `timeout`."""
        with self._work:
            return self._work.wait_for(self._has_work, timeout=timeout)

    def _has_work(self) -> bool:
        return not self._paused and any(i.state == ItemState.WAITING for i in self._items.values())

    def claim(self, limit: int) -> list[Path]:
        """Take up to `limit` waiting files for one run of the engine (none while paused)."""
        with self._lock:
            if self._paused:
                return []
            taken = [p for p, i in self._items.items() if i.state == ItemState.WAITING][:limit]
            for p in taken:
                self._items[p] = replace(self._items[p], state=ItemState.CHECKING, sent=0)
            if taken:
                self._changed()
            return taken

    def fail(self, paths: Iterable[Path], message: str) -> None:
        """Mark files of a run that ended without a result for them."""
        failed = []
        with self._lock:
            for p in paths:
                item = self._items.get(p)
                if item is not None and item.state not in FINISHED:
                    self._items[p] = replace(item, state=ItemState.FAILED, error=message)
                    failed.append(self._items[p])
            self._changed(persist=True)
        for item in failed:
            self._run_hooks(item)

    def settle_backed_up(self, backed_up: Callable[[Path], bool]) -> int:
        """Failed files that turn out to be backed up (`backed_up(path)`, asked outside the
        lock: it may hash) become "already backed up"; returns how many."""
        with self._lock:
            failed = [p for p, i in self._items.items() if i.state == ItemState.FAILED]
        held = [p for p in failed if backed_up(p)]
        settled = []
        with self._lock:
            for p in held:
                item = self._items.get(p)
                if item is not None and item.state == ItemState.FAILED:
                    self._items[p] = replace(
                        item, state=ItemState.SKIPPED, sent=item.size, error=None
                    )
                    settled.append(self._items[p])
            if settled:
                self._changed(persist=True)
        for item in settled:
            self._run_hooks(item)
        return len(settled)

    # UploadSubscriber ----------------------------------------------------------------
    def on_queued(self, *, path: Path, size: int) -> None:
        with self._lock:
            item = self._items.get(path)
            if item is None:  # not this queue's file (another member's, before a switch)
                return
            self._items[path] = replace(item, size=size)
            self._changed()

    def on_resumed(self, *, path: Path, bytes_held: int) -> None:
        self.on_progress(path=path, bytes_sent=bytes_held)

    def on_progress(self, *, path: Path, bytes_sent: int) -> None:
        with self._lock:
            item = self._items.get(path)
            if item is None or item.state in FINISHED:
                return
            sent = max(0, min(item.size, item.sent + bytes_sent))
            self._items[path] = replace(item, state=ItemState.UPLOADING, sent=sent)
            self._samples.append((self._clock(), bytes_sent))
            self._changed()

    def on_done(self, *, result: FileResult) -> None:
        with self._lock:
            item = self._items.get(result.path)
            if item is None:  # not this queue's file (another member's, before a switch)
                return
            if result.status == UPLOADED:
                new = replace(item, state=ItemState.DONE, sent=item.size, error=None)
            elif result.status == DUPLICATE:
                new = replace(item, state=ItemState.SKIPPED, sent=item.size, error=None)
            elif result.status == CANCELLED:
                # Paused mid-file: waiting again; the engine's journal resumes it from the
                # last completed part.
                self._items[result.path] = replace(item, state=ItemState.WAITING, sent=0)
                self._changed(persist=True)
                return
            else:
                new = replace(item, state=ItemState.FAILED, error=reason_message(result.reason))
            self._items[result.path] = new
            self._changed(persist=True)
        self._run_hooks(new)

    # Internals -------------------------------------------------------------------------
    def _changed(self, *, persist: bool = False) -> None:
        # Called with the lock held.
        self._version += 1
        self._work.notify_all()
        if persist and self._store is not None:
            pending = [
                p
                for p, i in self._items.items()
                if i.state not in SETTLED and i.state != ItemState.RECEIVING
            ]
            try:
                self._store.save(pending)
            except OSError as exc:
                log.warning("cannot save the queue to %s: %s", self._store.path, exc)

    def _speed(self) -> float:
        now = self._clock()
        while self._samples and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.popleft()
        if not self._samples or not any(
            i.state == ItemState.UPLOADING for i in self._items.values()
        ):
            return 0.0
        span = max(1.0, now - self._samples[0][0])
        return max(0.0, sum(n for _, n in self._samples) / span)

    def _run_hooks(self, item: QueueItem) -> None:
        for hook in self._hooks:
            try:
                hook(item)
            except Exception:  # a hook's bug must not stop the uploads
                log.exception("queue hook failed for %s", item.path)
