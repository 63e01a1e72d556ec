"""The upload journal: what this device has hashed, started and finished (SQLite, WAL).

Three tables:

- `hashes_v3`: the local hash cache, one row per path, valid while size and mtime are the ones
  recorded; also keeps the per-part digests of files sent in parts.
- `uploads`: one row per content (SHA-256): `presigned` → `uploading` (with the multipart
  upload id and part size) → `done`.
- `parts`: every part S3 has accepted, with its ETag and checksum.

Every change is its own committed transaction, so a process killed at any instant (kill -9
included) leaves the journal as it was after the last completed step. WAL lets the CLI and
the app read while an upload writes. Connections are shared between threads under a lock.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_backup.client._parts import FileHash, FileStamp
from mobile_backup.client.exceptions import JournalError

PRESIGNED, UPLOADING, DONE = "presigned", "uploading", "done"
CRC_SIZE = 4

# `hashes_v3`: parts are CRC32 (4 bytes each) with the whole file's CRC32; caches from
# before (`hashes`: SHA-256 parts, `hashes_v2`: CRC64NVME) are simply not read: those files
# hash again.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes_v3 (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    part_size INTEGER,
    part_crcs BLOB,
    full_crc TEXT,
    hashed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    upload_id TEXT,
    part_size INTEGER,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_said (
    sha256 TEXT PRIMARY KEY,
    verdict TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
"""


@dataclass(frozen=True, slots=True)
class UploadState:
    """The journal's row for one content."""

    sha256: str
    path: str
    size: int
    state: str
    upload_id: str | None
    part_size: int | None


@dataclass(frozen=True, slots=True)
class JournalPart:
    """A part S3 accepted."""

    number: int
    size: int
    etag: str
    checksum: str


def journal_path(state_dir: Path, account: str) -> Path:
    """The journal file of one account under a profile's state dir.

    One file per account: a content backed up by one user is not backed up for another.
    """
    tag = hashlib.sha256(account.encode("utf-8")).hexdigest()[:16]
    return state_dir / f"uploads-{tag}.sqlite3"


class Journal:
    """The journal in the SQLite file `path` (`":memory:"` for a journal that is not kept)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: each statement is a transaction, committed before the call returns.
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across process crashes in WAL mode; a power cut may lose the
            # last few notes, which only means a part is sent again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the upload journal {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def memory(cls) -> Journal:
        return cls(":memory:")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write the upload journal {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"cannot read the upload journal {self.path}: {exc}") from exc

    # Hash cache ------------------------------------------------------------------------
    def cached_hash(self, path: Path, stamp: FileStamp) -> FileHash | None:
        """The hash recorded for `path` if its size and mtime are still `stamp`'s."""
        rows = self._query(
            "SELECT sha256, part_size, part_crcs, full_crc FROM hashes_v3 "
            "WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path), stamp.size, stamp.mtime_ns),
        )
        return _file_hash(stamp, *rows[0]) if rows else None

    def cached_hashes(self, paths: Sequence[Path]) -> dict[Path, FileHash]:
        """The hashes recorded for these paths, each with the stamp it was made at (compare
        it with the file's own): one query for a batch, not one per file."""
        if not paths:
            return {}
        by_text = {str(path): path for path in paths}
        marks = ", ".join("?" * len(by_text))  # placeholders only: the paths are parameters
        columns = "path, size, mtime_ns, sha256, part_size, part_crcs, full_crc"
        sql = f"SELECT {columns} FROM hashes_v3 WHERE path IN ({marks})"  # noqa: S608
        rows = self._query(sql, tuple(by_text))
        return {
            by_text[text]: _file_hash(FileStamp(size=size, mtime_ns=mtime), *rest)
            for text, size, mtime, *rest in rows
        }

    def remember_hash(self, path: Path, file_hash: FileHash) -> None:
        self.remember_hashes([(path, file_hash)])

    def remember_hashes(self, hashes: Sequence[tuple[Path, FileHash]]) -> None:
        """Record many files' hashes in one transaction (a folder of years is tens of
        thousands of files: a commit each would cost more than hashing small ones)."""
        if not hashes:
            return
        now = time.time()
        rows = [
            (
                str(path),
                file_hash.stamp.size,
                file_hash.stamp.mtime_ns,
                file_hash.sha256,
                file_hash.part_size,
                b"".join(file_hash.part_digests) if file_hash.part_digests else None,
                file_hash.full_crc,
                now,
            )
            for path, file_hash in hashes
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO hashes_v3 VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # Uploads ---------------------------------------------------------------------------
    def upload(self, sha256: str) -> UploadState | None:
        rows = self._query(
            "SELECT sha256, path, size, state, upload_id, part_size FROM uploads WHERE sha256 = ?",
            (sha256,),
        )
        if not rows:
            return None
        sha, path, size, state, upload_id, part_size = rows[0]
        return UploadState(
            sha256=str(sha),
            path=str(path),
            size=int(size),
            state=str(state),
            upload_id=str(upload_id) if upload_id is not None else None,
            part_size=int(part_size) if isinstance(part_size, int) else None,
        )

    def is_done(self, sha256: str) -> bool:
        rows = self._query("SELECT 1 FROM uploads WHERE sha256 = ? AND state = ?", (sha256, DONE))
        return bool(rows)

    def mark_presigned(self, files: Iterable[tuple[str, Path, int]]) -> None:
        """Note single-part uploads about to be sent ((sha256, path, size) each)."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, NULL, NULL, ?) "
                "ON CONFLICT(sha256) DO UPDATE SET path = excluded.path, "
                "size = excluded.size, state = excluded.state, updated_at = excluded.updated_at "
                "WHERE uploads.state <> 'done'",
                [(sha, str(path), size, PRESIGNED, now) for sha, path, size in files],
            )

    def mark_uploading(
        self, sha256: str, *, path: Path, size: int, upload_id: str, part_size: int
    ) -> None:
        """Note the multipart upload a content is being sent in."""
        with self._tx() as db:
            old = db.execute("SELECT upload_id FROM uploads WHERE sha256 = ?", (sha256,)).fetchone()
            if old and old[0] and old[0] != upload_id:
                db.execute("DELETE FROM parts WHERE upload_id = ?", (old[0],))
            db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha256, str(path), size, UPLOADING, upload_id, part_size, time.time()),
            )

    def mark_done(self, sha256: str, *, path: Path, size: int) -> None:
        """Note a content as backed up; its parts are forgotten."""
        with self._tx() as db:
            old = db.execute("SELECT upload_id FROM uploads WHERE sha256 = ?", (sha256,)).fetchone()
            if old and old[0]:
                db.execute("DELETE FROM parts WHERE upload_id = ?", (old[0],))
            db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, NULL, NULL, ?)",
                (sha256, str(path), size, DONE, time.time()),
            )

    def backed_up_from(self, path: Path) -> set[str]:
        """The contents this journal backed up from `path` (any earlier version of it)."""
        rows = self._query(
            "SELECT sha256 FROM uploads WHERE path = ? AND state = ?", (str(path), DONE)
        )
        return {str(row[0]) for row in rows}

    def local_copy(self, sha256: str) -> Path | None:
        """Where this device still holds `sha256`: the path it was backed up from, while
        that file's size and modification time are still the ones that were hashed."""
        rows = self._query(
            "SELECT u.path, h.size, h.mtime_ns FROM uploads u "
            "JOIN hashes_v3 h ON h.path = u.path AND h.sha256 = u.sha256 WHERE u.sha256 = ?",
            (sha256,),
        )
        for path, size, mtime_ns in rows:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size == size and st.st_mtime_ns == mtime_ns:
                return Path(path)
        return None

    def forget_upload(self, sha256: str) -> None:
        """Drop a multipart upload the server no longer has (or that was abandoned)."""
        with self._tx() as db:
            old = db.execute("SELECT upload_id FROM uploads WHERE sha256 = ?", (sha256,)).fetchone()
            if old and old[0]:
                db.execute("DELETE FROM parts WHERE upload_id = ?", (old[0],))
            db.execute("DELETE FROM uploads WHERE sha256 = ? AND state <> ?", (sha256, DONE))

    # What the ledger said (client/_ledger_mirror.py) ----------------------------------
    def ledger_said(self, sha256s: Sequence[str]) -> dict[str, str]:
        """The kept verdicts of these contents (those the journal has), one query."""
        if not sha256s:
            return {}
        marks = ", ".join("?" * len(sha256s))  # placeholders only: the digests are parameters
        sql = f"SELECT sha256, verdict FROM ledger_said WHERE sha256 IN ({marks})"  # noqa: S608
        return {str(sha): str(verdict) for sha, verdict in self._query(sql, tuple(sha256s))}

    def remember_ledger(self, verdicts: Iterable[tuple[str, str]], **marks: str | None) -> None:
        """Keep verdicts ((sha256, verdict) each) and set (or, with None, clear) marks, in
        one transaction."""
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO ledger_said VALUES (?, ?)", list(verdicts))
            self._set_marks(db, marks)

    def forget_ledger(self, **marks: str | None) -> None:
        """Drop every kept verdict and set (or clear) marks, in one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM ledger_said")
            self._set_marks(db, marks)

    def marks(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._query("SELECT name, value FROM marks", ())}

    @staticmethod
    def _set_marks(db: sqlite3.Connection, marks: dict[str, str | None]) -> None:
        for name, value in marks.items():
            if value is None:
                db.execute("DELETE FROM marks WHERE name = ?", (name,))
            else:
                db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (name, value))

    # Parts -----------------------------------------------------------------------------
    def part_done(self, upload_id: str, part: JournalPart) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                (upload_id, part.number, part.size, part.etag, part.checksum),
            )

    def parts(self, upload_id: str) -> dict[int, JournalPart]:
        rows = self._query(
            "SELECT number, size, etag, checksum FROM parts WHERE upload_id = ?", (upload_id,)
        )
        return {int(n): JournalPart(int(n), int(s), str(e), str(c)) for n, s, e, c in rows}

    def replace_parts(self, upload_id: str, parts: Iterable[JournalPart]) -> None:
        """Make the journal's parts of an upload exactly `parts` (what S3 says it holds)."""
        with self._tx() as db:
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            db.executemany(
                "INSERT INTO parts VALUES (?, ?, ?, ?, ?)",
                [(upload_id, p.number, p.size, p.etag, p.checksum) for p in parts],
            )


def _file_hash(
    stamp: FileStamp, sha256: object, part_size: object, blob: object, full_crc: object
) -> FileHash:
    """A hash as the journal's row has it."""
    digests: tuple[bytes, ...] = ()
    if isinstance(blob, bytes):
        digests = tuple(blob[i : i + CRC_SIZE] for i in range(0, len(blob), CRC_SIZE))
    return FileHash(
        sha256=str(sha256),
        stamp=stamp,
        part_size=int(part_size) if isinstance(part_size, int) else None,
        part_digests=digests,
        full_crc=str(full_crc) if full_crc else None,
    )
