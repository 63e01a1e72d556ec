"""Thumbnails for the history's gallery: made on the device from the local file, kept in
the cloud, read back from there where the photo is not (or no longer) on this device.

The app makes a small JPEG from the photo still on this device (or from the browser's copy
just before it is dropped), keyed by the content's SHA-256, and keeps it in a folder bounded
in size (oldest used first out) and in a small in-memory cache. Each photo it backs up also
gets its thumbnail kept in the cloud (`CloudThumbs`: the member's own `thumbs/` prefix, kept
after the photo's own copy expires), so the gallery still shows every photo after free-up,
and on every device the member signs into. A video, or a photo whose thumbnail was never
kept (backed up by the CLI), shows a placeholder.

Making one is bounded work (`media.make_thumbnail`): a JPEG is decoded at a fraction of its
size, any other picture only up to a bound read from its header first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from mobile_backup.client import CloudThumbs
from mobile_backup.media import is_picture, make_thumbnail

log = logging.getLogger(__name__)

MAX_CACHE_BYTES = 64 * 1024 * 1024
MEMORY_ITEMS = 256
_SHA = re.compile(r"^[0-9a-f]{64}$")

PathOf = Callable[[str], Path | None]
"""Where the local file of a content is (checked to still hold it), or None."""
FETCH_BATCH = 48
"""Thumbnails read from the cloud with one request for their links (a page of tiles)."""
_SHOW, _KEEP = "show", "keep"


class Thumbnails:
    """The thumbnail cache and the one background thread that fills it.

    `get(sha)` never blocks on a picture: it answers from memory or disk, else queues the
    work (if `path_of` finds the file) and returns None; `on_ready` is called when a
    thumbnail has been made, so the screen can draw it.
    """

    def __init__(
        self,
        folder: Path,
        *,
        path_of: PathOf,
        on_ready: Callable[[], None] = lambda: None,
        max_bytes: int = MAX_CACHE_BYTES,
        cloud: CloudThumbs | None = None,
    ) -> None:
        self.folder = folder
        self._path_of = path_of
        self._cloud = cloud
        self._on_ready = on_ready
        self._max_bytes = max_bytes
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._missing: set[str] = set()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._work: queue.Queue[tuple[str, str, Path | None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._total: int | None = None
        self.made = 0
        """How many thumbnails this process has made (for tests and the curious)."""
        self.served = 0
        """How many thumbnails `get` has answered with."""
        self.fetched = 0
        """How many thumbnails this process has read from the cloud."""

    def _file(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.jpg"

    def get(self, sha: str, *, make: bool = True) -> bytes | None:
        """The thumbnail if it is made; else None, and (with `make`) it is queued."""
        if not _SHA.match(sha):
            return None
        with self._lock:
            data = self._memory.get(sha)
            if data is not None:
                self._memory.move_to_end(sha)
                self.served += 1
                return data
            if sha in self._missing:
                return None
        try:
            data = self._file(sha).read_bytes()
        except OSError:
            if make:
                self._request(sha)
            return None
        with contextlib.suppress(OSError):
            os.utime(self._file(sha))  # recently used: last out of the bounded folder
        self._remember(sha, data)
        with self._lock:
            self.served += 1
        return data

    def add(self, sha: str, source: Path) -> bool:
        """Make `sha`'s thumbnail from `source` now (blocking), e.g. before a copy is dropped;
        it is kept in the cloud in the background."""
        if not _SHA.match(sha):
            return False
        if not self._file(sha).exists():
            data = make_thumbnail(source) if is_picture(source) else None
            if data is None:
                return False
            self._store(sha, data)
        self.keep(sha, None)
        return True

    def keep_now(self, items: list[tuple[str, Path]]) -> int:
        """Keep these photos' thumbnails in the cloud now (blocking): free-up calls it before
        the photos leave the device. How many the cloud holds now."""
        if self._cloud is None:
            return 0
        thumbs = []
        for sha, source in items:
            data = self._cached(sha) or self._make_from(sha, source)
            if data is not None:
                thumbs.append((sha, data))
        return self._cloud.keep(thumbs)

    def keep(self, sha: str, source: Path | None) -> None:
        """Keep `sha`'s thumbnail in the cloud (made from `source` if it is not made yet):
        a photo just backed up, whose thumbnail the gallery shows after free-up."""
        if self._cloud is not None and _SHA.match(sha):
            self._enqueue((_KEEP, sha, source))

    def _remember(self, sha: str, data: bytes) -> None:
        with self._lock:
            self._memory[sha] = data
            self._memory.move_to_end(sha)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)

    def _store(self, sha: str, data: bytes, *, made: bool = True) -> None:
        target = self._file(sha)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("cannot keep a thumbnail in %s: %s", self.folder, exc)
        self._remember(sha, data)
        with self._lock:
            if made:
                self.made += 1
            else:
                self.fetched += 1
            self._missing.discard(sha)
            if self._total is not None:
                self._total += len(data)
        if self._total is None or self._total > self._max_bytes:
            self._prune()

    def _request(self, sha: str) -> None:
        with self._lock:
            if sha in self._queued or sha in self._missing:
                return
            self._queued.add(sha)
        self._enqueue((_SHOW, sha, None))

    def _enqueue(self, job: tuple[str, str, Path | None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="thumbnails", daemon=True)
                self._thread.start()
        self._work.put(job)

    def _run(self) -> None:
        while (job := self._work.get()) is not None:
            jobs = [job]
            while len(jobs) < FETCH_BATCH:  # what else is waiting: one cloud request for all
                try:
                    more = self._work.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._work.put(None)
                    break
                jobs.append(more)
            try:
                self._work_on(jobs)
            except Exception:
                log.exception("making a thumbnail failed")
            finally:
                with self._lock:
                    self._queued.difference_update(sha for kind, sha, _ in jobs if kind == _SHOW)

    def _work_on(self, jobs: list[tuple[str, str, Path | None]]) -> None:
        from_cloud: list[str] = []
        to_cloud: list[tuple[str, bytes]] = []
        for kind, sha, source in jobs:
            if kind == _KEEP:
                data = self._cached(sha) or self._make_from(sha, source)
                if data is not None:
                    to_cloud.append((sha, data))
            elif self._cached(sha) is None and self._make_from(sha, self._path_of(sha)) is None:
                from_cloud.append(sha)  # not on this device (any more): the cloud's copy
        if from_cloud and self._cloud is not None:
            found = self._cloud.fetch(from_cloud)
            for sha, data in found.items():
                self._store(sha, data, made=False)
            from_cloud = [sha for sha in from_cloud if sha not in found]
        if from_cloud:
            with self._lock:
                self._missing.update(from_cloud)
        if to_cloud and self._cloud is not None:
            self._cloud.keep(to_cloud)
        if any(kind == _SHOW for kind, _, _ in jobs):
            self._on_ready()

    def _cached(self, sha: str) -> bytes | None:
        with self._lock:
            data = self._memory.get(sha)
        if data is not None:
            return data
        try:
            return self._file(sha).read_bytes()
        except OSError:
            return None

    def _make_from(self, sha: str, source: Path | None) -> bytes | None:
        data = make_thumbnail(source) if source is not None and is_picture(source) else None
        if data is not None:
            self._store(sha, data)
        return data

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._work.put(None)
            self._thread.join(timeout=5)
        self._thread = None
        if self._cloud is not None:
            self._cloud.close()

    def _prune(self) -> None:
        """Keep the folder under its bound, dropping the least recently used first."""
        try:
            files = [(p.stat(), p) for p in self.folder.glob("*/*.jpg")]
        except OSError:
            return
        total = sum(st.st_size for st, _ in files)
        if total > self._max_bytes:
            for st, path in sorted(files, key=lambda f: f[0].st_mtime):
                with contextlib.suppress(OSError):
                    path.unlink()
                total -= st.st_size
                if total <= self._max_bytes * 0.8:
                    break
        self._total = total
