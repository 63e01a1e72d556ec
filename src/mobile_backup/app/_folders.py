"""Automatic backup of chosen folders: find the media that has not been backed up yet.

A file counts as seen once it was backed up (or the cloud already had it) with the same
size and modification time; anything else found in a chosen folder is new. The seen list
is a SQLite table in the profile's state dir, so a large camera roll is not re-hashed at
every start.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from mobile_backup.client import NotLoggedInError, classify
from mobile_backup.media import is_photo_or_video

log = logging.getLogger(__name__)

NOT_MEDIA = "Not a photo or video, so it is not backed up."


def not_media(path: Path) -> str | None:
    """Why a picked file is refused (the CLI's scan rule: by name, else by content), or None.

    Raises OSError when the file cannot be read.
    """
    return None if is_photo_or_video(path) else NOT_MEDIA


class SeenFiles:
    """Which files of the chosen folders are already backed up."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY, size INT, mtime_ns INT)"
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def mark(self, path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO seen VALUES (?, ?, ?)",
                (str(path), st.st_size, st.st_mtime_ns),
            )

    def is_seen(self, path: Path, size: int, mtime_ns: int) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns FROM seen WHERE path = ?", (str(path),)
            ).fetchone()
        return row is not None and tuple(row) == (size, mtime_ns)


def scan(folders: Iterable[str | Path], seen: SeenFiles) -> list[Path]:
    """New photos and videos under `folders` (as the CLI's scan decides), oldest first."""
    found: list[tuple[int, Path]] = []
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            log.info("chosen folder %s is not available", root)
            continue
        for path in root.rglob("*"):
            try:
                st = path.stat()
            except OSError:
                continue
            if path.is_dir() or seen.is_seen(path, st.st_size, st.st_mtime_ns):
                continue
            if classify(path, root) is not None:
                continue  # the CLI's rules: hidden, the phone's trash, not a photo or video
            found.append((st.st_mtime_ns, path))
    found.sort()
    return [p for _, p in found]


class FolderWatch:
    """The chosen folders of the signed-in member: scanned every `interval` seconds while
    the app runs, each new photo or video queued once, and marked seen once backed up.

    `folders` reads the chosen folders (the preferences), `account_dir` the signed-in
    member's state folder (None while signed out: nothing is scanned then).
    """

    def __init__(
        self,
        *,
        folders: Callable[[], tuple[str, ...]],
        account_dir: Callable[[], Path | None],
        queue_files: Callable[[list[Path]], int],
        interval: float,
    ) -> None:
        self._folders = folders
        self._account_dir = account_dir
        self._queue_files = queue_files
        self._interval = interval
        self._lock = threading.Lock()
        self._seen: SeenFiles | None = None
        self._seen_dir: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seen(self) -> SeenFiles:
        """The signed-in member's list of folder files already backed up."""
        folder = self._account_dir()
        if folder is None:
            raise NotLoggedInError("not signed in")
        with self._lock:
            if self._seen is None or self._seen_dir != folder:
                if self._seen is not None:
                    self._seen.close()
                self._seen, self._seen_dir = SeenFiles(folder / "seen.sqlite3"), folder
            return self._seen

    def close(self) -> None:
        """Signed out (or stopping): the member's seen-files list is closed."""
        with self._lock:
            if self._seen is not None:
                self._seen.close()
            self._seen = self._seen_dir = None

    def scan(self) -> int:
        """Queue new media from the chosen folders (only while signed in)."""
        folders = self._folders()
        if not folders or self._account_dir() is None:
            return 0
        return self._queue_files(scan(folders, self.seen()))

    def backed_up(self, path: Path) -> None:
        """`path` is in the cloud: a file of a chosen folder is not queued again."""
        chosen = any(path.is_relative_to(Path(f).expanduser()) for f in self._folders())
        if chosen and self._account_dir() is not None:
            self.seen().mark(path)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="app-folders", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.close()

    def _watch(self) -> None:
        while True:
            try:
                self.scan()
            except Exception:
                log.exception("scanning the chosen folders failed")
            if self._stop.wait(self._interval):
                return
