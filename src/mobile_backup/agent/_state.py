"""The agent's local memory: what it placed where, resumable downloads, and its health.

A SQLite file in WAL mode at `{library}/.mobile-backup/agent.sqlite3`. It lives with the
library rather than in the per-user state dir because it describes the library: the
content-hash → path map must follow the library if it moves to another disk, and a service
(often another account: LocalSystem on Windows, a system user under systemd) and the user's
`mobile-backup agent status` must find the same file, which they do through the one setting
they share, the library path. WAL lets `agent status` read while the service writes.
(SQLite's WAL needs the file on a local disk, so a library on a network share is not
supported for the running agent.)

Tables:
- `placed`: (user, sha256) → relative path, size, mtime_ns: exactly-once on disk, and what
  the audit checks the library against.
- `downloads` / `parts` / `progress`: ranged downloads in progress, their completed parts
  and how far each unfinished part got, so a restarted agent resumes instead of fetching
  finished parts, or a part's first bytes, again.
- `untagged`: cloud copies whose `state` tag waits for a quiet moment (`tag_later`).
- `kv` and `daily`: last success, last error, pause, liveness, files per day.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mobile_backup.agent.exceptions import AgentError

STATE_FILE = "agent.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS placed (
    user_sub TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    placed_at TEXT NOT NULL,
    PRIMARY KEY (user_sub, sha256)
);
CREATE TABLE IF NOT EXISTS downloads (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    part_size INTEGER NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (name, idx)
);
CREATE TABLE IF NOT EXISTS progress (
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kept INTEGER NOT NULL,
    PRIMARY KEY (name, idx)
);
CREATE TABLE IF NOT EXISTS untagged (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS daily (
    day TEXT PRIMARY KEY,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class PlacedFile:
    """One row of `placed`: a file the agent put in the library."""

    user_sub: str
    sha256: str
    path: PurePosixPath
    size: int
    mtime_ns: int
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class Health:
    """What `agent status` shows from the state file."""

    last_success_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    paused_until: datetime | None
    pause_reason: str | None
    alive_at: datetime | None
    pid: int | None
    host: str | None
    files_today: int
    bytes_today: int
    placed_total: int
    resumable: int


class StateDB:
    """The state file; thread-safe (one connection behind a lock), cheap to open.

    Args:
        path: the SQLite file (its folder is created).
        readonly: open an existing file for reading only (`agent status`).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingPlaced] = []
        try:
            if readonly:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, check_same_thread=False, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a committed placement survives power loss as the fsynced file does.
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO kv(key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.commit()
            # Lookups get a connection of their own: in WAL mode they read beside a
            # commit (whose fsync can take a while on a busy disk) instead of queuing
            # behind it for the writer's lock.
            reader = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=10
            )
        except sqlite3.Error as exc:
            raise AgentError(f"cannot open the agent state file {path}: {exc}") from exc
        self._conn = conn
        self._reader = reader
        self._read_lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._conn.close()

    def _run(
        self, sql: str, params: tuple[Any, ...] = (), *, durable: bool = True
    ) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                if not durable:
                    return self._run_relaxed(sql, params)
                with self._conn:  # one transaction, committed or rolled back
                    return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise AgentError(f"agent state file {self._path}: {exc}") from exc

    def _run_relaxed(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """One transaction committed without an fsync (caller holds the lock).

        In WAL mode a commit at synchronous=NORMAL survives a crash of the process, only
        not a power cut. On a busy disk an fsync of the WAL also makes the file system
        write out everything else pending (ext4 ordered mode), and it is taken under the
        lock every worker needs, so bookkeeping that may be lost is written this way.
        """
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._conn:
                return self._conn.execute(sql, params).fetchall()
        finally:
            self._conn.execute("PRAGMA synchronous=FULL")

    # Placed files ----------------------------------------------------------------------
    def placed(self, user_sub: str, sha256: str) -> PlacedFile | None:
        with self._read_lock:
            try:
                rows = self._reader.execute(
                    "SELECT user_sub, sha256, path, size, mtime_ns, placed_at FROM placed "
                    "WHERE user_sub = ? AND sha256 = ?",
                    (user_sub, sha256),
                ).fetchall()
            except sqlite3.Error as exc:
                raise AgentError(f"agent state file {self._path}: {exc}") from exc
        return _placed(rows[0]) if rows else None

    def record_placed(
        self,
        *,
        user_sub: str,
        sha256: str,
        path: PurePosixPath,
        size: int,
        mtime_ns: int,
        at: datetime,
        new_file: bool,
    ) -> None:
        """Remember where this content is; count it for today when it is a new file.

        Returns once the row is committed (synchronous=FULL). Concurrent calls share one
        transaction (group commit): whichever caller gets the lock first commits every
        row waiting, so many workers finishing together pay for one fsync, not one each.
        """
        entry = _PendingPlaced(
            (user_sub, sha256, path.as_posix(), size, mtime_ns, at.isoformat()),
            at=at,
            new_file=new_file,
        )
        with self._pending_lock:
            self._pending.append(entry)
        with self._lock:
            if not entry.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._commit_placed(batch)
                except sqlite3.Error as exc:
                    for item in batch:
                        item.error = exc
                finally:
                    for item in batch:
                        item.done = True
        if entry.error is not None:
            raise AgentError(f"agent state file {self._path}: {entry.error}") from entry.error

    def _commit_placed(self, batch: list[_PendingPlaced]) -> None:
        """One transaction for `batch` (caller holds the lock)."""
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO placed VALUES (?, ?, ?, ?, ?, ?)",
                [item.row for item in batch],
            )
            last = max(item.at for item in batch)
            self._conn.execute(
                "INSERT OR REPLACE INTO kv VALUES ('last_success_at', ?)",
                (json.dumps(last.isoformat()),),
            )
            for item in batch:
                if item.new_file:
                    self._conn.execute(
                        "INSERT INTO daily VALUES (?, 1, ?) ON CONFLICT(day) DO UPDATE "
                        "SET files = files + 1, bytes = bytes + excluded.bytes",
                        (item.at.date().isoformat(), item.row[3]),
                    )

    def iter_placed(self, batch: int = 500) -> Iterator[PlacedFile]:
        """Every placed file, in key order, read in batches (the audit walks this)."""
        last: tuple[str, str] = ("", "")
        while True:
            rows = self._run(
                "SELECT user_sub, sha256, path, size, mtime_ns, placed_at FROM placed "
                "WHERE (user_sub, sha256) > (?, ?) ORDER BY user_sub, sha256 LIMIT ?",
                (*last, batch),
            )
            if not rows:
                return
            for row in rows:
                yield _placed(row)
            last = (rows[-1][0], rows[-1][1])

    def users(self) -> list[str]:
        return [r[0] for r in self._run("SELECT DISTINCT user_sub FROM placed ORDER BY 1")]

    def forget_placed(self, user_sub: str, sha256: str) -> None:
        self._run("DELETE FROM placed WHERE user_sub = ? AND sha256 = ?", (user_sub, sha256))

    # Resumable downloads ---------------------------------------------------------------
    def begin_download(
        self, name: str, *, sha256: str, size: int, part_size: int, at: datetime
    ) -> set[int]:
        """Register a ranged download; returns the parts already completed (to resume).

        A registration for other bytes or another part size starts over.
        """
        with self._lock:
            try:
                with self._conn:
                    row = self._conn.execute(
                        "SELECT sha256, size, part_size FROM downloads WHERE name = ?", (name,)
                    ).fetchone()
                    if row == (sha256, size, part_size):
                        done = self._conn.execute(
                            "SELECT idx FROM parts WHERE name = ?", (name,)
                        ).fetchall()
                        return {r[0] for r in done}
                    self._conn.execute("DELETE FROM parts WHERE name = ?", (name,))
                    self._conn.execute("DELETE FROM progress WHERE name = ?", (name,))
                    self._conn.execute(
                        "INSERT OR REPLACE INTO downloads VALUES (?, ?, ?, ?, ?)",
                        (name, sha256, size, part_size, at.isoformat()),
                    )
                    return set()
            except sqlite3.Error as exc:
                raise AgentError(f"agent state file {self._path}: {exc}") from exc

    def part_done(self, name: str, idx: int) -> None:
        # synchronous=FULL is not needed for this: a part recorded but lost in a power cut
        # is caught by the whole-file hash, and the download then starts over.
        self._run("INSERT OR IGNORE INTO parts VALUES (?, ?)", (name, idx), durable=False)

    def part_progress(self, name: str, idx: int, kept: int) -> None:
        """The first `kept` bytes of unfinished part `idx` are in the staging file (written,
        not yet synced: as for `part_done`, a power cut is caught by the whole-file hash)."""
        self._run(
            "INSERT OR REPLACE INTO progress VALUES (?, ?, ?)", (name, idx, kept), durable=False
        )

    def kept_of_parts(self, name: str) -> dict[int, int]:
        """Unfinished parts of a registered download → bytes an earlier run kept of each."""
        rows = self._run(
            "SELECT idx, kept FROM progress WHERE name = ? AND idx NOT IN "
            "(SELECT idx FROM parts WHERE name = ?)",
            (name, name),
        )
        return {int(idx): int(kept) for idx, kept in rows}

    def end_download(self, name: str) -> None:
        with self._lock:
            try:
                with self._conn:
                    self._conn.execute("DELETE FROM parts WHERE name = ?", (name,))
                    self._conn.execute("DELETE FROM progress WHERE name = ?", (name,))
                    self._conn.execute("DELETE FROM downloads WHERE name = ?", (name,))
            except sqlite3.Error as exc:
                raise AgentError(f"agent state file {self._path}: {exc}") from exc

    def resumable(self) -> set[str]:
        """Names of staging files a restarted agent may resume."""
        return {r[0] for r in self._run("SELECT name FROM downloads")}

    # Tags to set -----------------------------------------------------------------------
    def tag_later(self, bucket: str, key: str, state: str) -> None:
        """Remember that the cloud copy `key` is to be tagged `state`. Without an fsync: a
        row lost in a power cut leaves the copy untagged, which only keeps it longer."""
        self._run(
            "INSERT OR REPLACE INTO untagged VALUES (?, ?, ?)", (bucket, key, state), durable=False
        )

    def untagged(self, limit: int) -> list[tuple[str, str, str]]:
        """Up to `limit` (bucket, key, state) waiting for their tag, oldest first."""
        rows = self._run("SELECT bucket, key, state FROM untagged ORDER BY rowid LIMIT ?", (limit,))
        return [(r[0], r[1], r[2]) for r in rows]

    def untagged_count(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM untagged")[0][0])

    def tagged(self, bucket: str, key: str, state: str) -> None:
        """The tag is set (or no longer can be): the row goes, unless a newer state for
        the same copy replaced it meanwhile."""
        self._run(
            "DELETE FROM untagged WHERE bucket = ? AND key = ? AND state = ?",
            (bucket, key, state),
            durable=False,
        )

    # Health ----------------------------------------------------------------------------
    def set_values(self, **values: object) -> None:
        """Store health values (JSON-encoded); None deletes a key."""
        with self._lock:
            try:
                with self._conn:
                    for key, value in values.items():
                        if value is None:
                            self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                        else:
                            encoded = value.isoformat() if isinstance(value, datetime) else value
                            self._conn.execute(
                                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                                (key, json.dumps(encoded)),
                            )
            except sqlite3.Error as exc:
                raise AgentError(f"agent state file {self._path}: {exc}") from exc

    def value(self, key: str) -> Any:
        """One value stored with `set_values` (None when absent)."""
        rows = self._run("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def record_error(self, *, code: str, message: str, at: datetime) -> None:
        self.set_values(last_error=message[:500], last_error_code=code, last_error_at=at)

    def health(self, *, today: date) -> Health:
        kv = dict(self._run("SELECT key, value FROM kv"))
        day = self._run("SELECT files, bytes FROM daily WHERE day = ?", (today.isoformat(),))
        total = self._run("SELECT COUNT(*) FROM placed")[0][0]
        resumable = self._run("SELECT COUNT(*) FROM downloads")[0][0]

        def val(key: str) -> Any:
            raw = kv.get(key)
            if raw is None:
                return None
            return json.loads(raw)

        def when(key: str) -> datetime | None:
            raw = val(key)
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None

        return Health(
            last_success_at=when("last_success_at"),
            last_error=val("last_error"),
            last_error_code=val("last_error_code"),
            last_error_at=when("last_error_at"),
            paused_until=when("paused_until"),
            pause_reason=val("pause_reason"),
            alive_at=when("alive_at"),
            pid=val("pid"),
            host=val("host"),
            files_today=day[0][0] if day else 0,
            bytes_today=day[0][1] if day else 0,
            placed_total=total,
            resumable=resumable,
        )


@dataclass(slots=True)
class _PendingPlaced:
    """A `record_placed` row waiting for (or done with) its group commit."""

    row: tuple[str, str, str, int, int, str]
    at: datetime
    new_file: bool
    done: bool = False
    error: sqlite3.Error | None = None


def _placed(row: tuple[Any, ...]) -> PlacedFile:
    return PlacedFile(
        user_sub=row[0],
        sha256=row[1],
        path=PurePosixPath(row[2]),
        size=row[3],
        mtime_ns=row[4],
        placed_at=datetime.fromisoformat(row[5]),
    )
