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
from collections.abc import Iterable
from pathlib import Path

from mobile_backup.client import classify
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
