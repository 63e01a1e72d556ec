"""Who owns a library: one running agent at a time, by an OS file lock.

The owner cleans the staging dir at start and resumes journaled downloads. A second
`agent run` on the same library is refused, naming the holder (its pid, host and since
when, from the owner file beside the lock); a one-off process on it (`agent reconcile`
while the service runs) is a guest: it stages under unique names, never cleans, never
resumes, so it cannot disturb the owner. The OS releases the lock when the process dies,
kill -9 included.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOCK_FILE = "agent.lock"
OWNER_FILE = "agent.owner"
"""Who holds the lock (JSON), kept apart from the lock file: Windows forbids reading a
locked region."""


@dataclass(frozen=True, slots=True)
class LockHolder:
    """What the holder of a library's lock wrote about itself."""

    pid: int | None
    host: str | None
    since: datetime | None
    pc: str | None

    def describe(self) -> str:
        """'pid 4242 on vm, PC main, since 2026-12-03 17:40 UTC' (what is known of it)."""
        said = [f"pid {self.pid}" if self.pid else "pid unknown"]
        if self.host:
            said[0] += f" on {self.host}"
        if self.pc:
            said.append(f"PC {self.pc}")
        if self.since:
            said.append(f"since {self.since:%Y-%m-%d %H:%M} UTC")
        return ", ".join(said)


class LibraryLock:
    """An exclusive, non-blocking lock on `path`; `acquire()` says whether we got it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._owner = path.with_name(OWNER_FILE)
        self._fh: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, *, pc: str | None = None) -> bool:
        """Take the lock if free (and say who we are in the owner file)."""
        if self._fh is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fh = self._path.open("a+b", buffering=0)  # a refused write must not linger to close
        try:
            _lock(fh)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        with contextlib.suppress(OSError):  # the pid is a courtesy; a full disk refuses it
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()).encode())
            fh.flush()
        about = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "pc": pc,
        }
        try:
            tmp = self._owner.with_suffix(".tmp")
            tmp.write_text(json.dumps(about), encoding="utf-8")
            tmp.replace(self._owner)
        except OSError:
            pass  # only a courtesy to the next process refused (a full disk, say)
        return True

    def holder(self) -> LockHolder:
        """Who holds the lock, as it wrote (fields None where it did not or could not)."""
        try:
            data = json.loads(self._owner.read_text(encoding="utf-8"))
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            pid = data.get("pid")
            return LockHolder(
                pid=pid if isinstance(pid, int) else None,
                host=data.get("host"),
                since=since,
                pc=data.get("pc"),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return LockHolder(pid=None, host=None, since=None, pc=None)

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            _unlock(fh)
            fh.close()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
