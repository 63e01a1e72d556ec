"""Download to a hidden staging file, verify, then place it without ever overwriting.

The staging directory `{library}/.mobile-backup/staging/` is on the library's filesystem, so
placing is a link or rename, never a copy. A file appears under its final name only complete,
fsynced and verified; a crash leaves at most a staging file, removed at the next start.

Placing never replaces a file: `os.link(staged, target)` fails if the name is taken, and
then either the existing file is this very content (a redelivered message: nothing to do) or
it is another file with the same name, and the next name `stem (1).ext`, `stem (2).ext`, ...
is tried.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from mobile_backup.agent._paths import ensure_inside, split_extension
from mobile_backup.agent.exceptions import (
    AgentError,
    ContentMismatchError,
    DownloadIntegrityError,
    UnsafePathError,
)
from mobile_backup.core import Capture, sha256_file
from mobile_backup.instrument import crash_point

logger = logging.getLogger(__name__)

STAGING_DIR = PurePosixPath(".mobile-backup", "staging")
CHUNK_SIZE = 1024 * 1024
MAX_COLLISIONS = 10_000
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines


class Readable(Protocol):
    """A binary stream read in chunks (botocore's StreamingBody, an open file)."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a file ended up."""

    path: Path
    """Absolute, resolved path of the file in the library."""
    relative: PurePosixPath
    """The same path relative to the library root (what a receipt records)."""
    already_present: bool
    """True when the same content was already there (a redelivery); nothing was written."""
    capture: Capture | None = None
    """The capture time the file was filed by, when this run chose it."""


class FileState(enum.StrEnum):
    """What a check of a file in the library found."""

    OK = "ok"
    MISSING = "missing"
    """Not at its recorded path any more (deleted, moved or renamed by someone)."""
    ALTERED = "altered"
    """Still there, but its bytes are no longer the ones received."""


@dataclass(frozen=True, slots=True)
class FileCheck:
    """`Library.check`'s answer: the state, and what was looked at."""

    state: FileState
    path: Path | None = None
    mtime_ns: int | None = None
    """The file's modification time now (when it is there)."""
    hashed: bool = False
    """True when its bytes were read and hashed (not only its size and time compared)."""


def library_problem(root: Path) -> str | None:
    """Why `root` cannot be (or become) the library folder, in words; None if it can."""
    for path in (root, *root.parents):
        if not path.exists():
            continue
        if not path.is_dir():
            what = "is a file" if path == root else f"cannot be a folder: {path} is a file"
            return f"the library {root} {what}; choose another folder"
        if not os.access(path, os.W_OK | os.X_OK):
            if path == root:
                return f"the library {root} is read-only for this user; the agent must write there"
            return f"cannot create the library {root}: {path} is read-only for this user"
        return None
    return None


class Library:
    """A library root and its staging directory.

    Args:
        root: the library folder (created if missing).
        chunk_size: bytes per read while downloading.
        link: the hard-link call; injectable to exercise the fallback for filesystems
            without hard links (FAT, exFAT, some network shares).
        write: the `os.write`-like call every staged byte goes through; the filesystem
            seam for tests (a disk that fills up, a folder that turns read-only).
        private: folders 0700 and files 0600, so other accounts on the PC cannot browse a
            family's photos; False gives 0777/0666 under the umask (a shared folder). On
            Windows the mode bits mean little and files inherit the folder's ACL.
    """

    def __init__(
        self,
        root: Path,
        *,
        chunk_size: int = CHUNK_SIZE,
        link: Callable[[Path, Path], None] = os.link,
        write: Callable[[int, memoryview], int] = os.write,
        private: bool = True,
    ) -> None:
        self.file_mode = 0o600 if private else 0o666
        """The mode every file the agent creates in the library gets (under the umask)."""
        self.dir_mode = 0o700 if private else 0o777
        self._root = root.resolve()
        self._staging = self._root.joinpath(*STAGING_DIR.parts)
        self._chunk_size = chunk_size
        self._link = link
        self._write = write
        self._hardlinks = True

    @property
    def root(self) -> Path:
        return self._root

    @property
    def staging(self) -> Path:
        return self._staging

    def create(self) -> None:
        """The root (with the library's mode) and the agent's own folders (always 0700)."""
        if not self._root.exists():
            self._root.mkdir(mode=self.dir_mode, parents=True)
        self._staging.parent.mkdir(mode=0o700, exist_ok=True)
        self._staging.mkdir(mode=0o700, exist_ok=True)

    def prepare(self, *, keep: Collection[str] = ()) -> int:
        """Create the library and staging dirs; delete staging leftovers of a crash.

        `keep` names staging files a resumable download still owns. Returns the number of
        leftovers removed. Only one agent may use a library at a time: this would delete
        another agent's in-flight downloads.
        """
        self.create()
        removed = 0
        for entry in self._staging.iterdir():
            if entry.name in keep and entry.is_file() and not entry.is_symlink():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        if removed:
            logger.info("removed %d unfinished download(s) from %s", removed, self._staging)
        return removed

    def check(
        self,
        relative: PurePosixPath,
        *,
        sha256: str,
        size: int,
        mtime_ns: int | None = None,
        verify: bool = False,
    ) -> FileCheck:
        """Whether the file at `relative` still holds this content.

        The one integrity check of the library (redeliveries, the audit, placing next to a
        file of the same name): only a regular file inside the root counts (a link planted
        in the library is never followed). With the `mtime_ns` it had when placed, an
        unchanged size and time is taken as unchanged (hashing every redelivered video
        would cost a full read); otherwise, or with `verify`, the bytes are hashed.
        """
        try:
            path = self._inside(relative)
        except UnsafePathError:
            return FileCheck(FileState.MISSING)
        return _check(path, sha256=sha256, size=size, mtime_ns=mtime_ns, verify=verify)

    def find(self, relative: PurePosixPath, *, sha256: str, size: int) -> Placement | None:
        """The file with this content at `relative` or one of its ` (n)` names, if any."""
        directory = self._inside(relative.parent)
        for name in _candidates(relative.name):
            target = directory / name
            if not os.path.lexists(target):
                return None
            if _check(target, sha256=sha256, size=size).state == FileState.OK:
                return self._placement(target, already_present=True)
        return None

    def store(
        self, stream: Readable, relative: PurePosixPath, *, sha256: str, size: int
    ) -> Placement:
        """Stage `stream`, verify it against `sha256` and `size`, then place it.

        Raises:
            DownloadIntegrityError: the bytes do not match; nothing was placed and the
                staging file is gone.
            UnsafePathError: `relative` leaves the library root.
        """
        staged = self.stage(stream, sha256=sha256, size=size)
        try:
            return self.place(staged, relative, sha256=sha256, size=size)
        finally:
            staged.unlink(missing_ok=True)

    def stage(self, stream: Readable, *, sha256: str, size: int) -> Path:
        """Stream into a new staging file while hashing; fsync; verify. Returns its path."""
        self._staging.mkdir(parents=True, exist_ok=True)
        path = self._staging / f"{sha256[:16]}-{uuid.uuid4().hex}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, self.file_mode)
        try:
            digest = hashlib.sha256()
            total = 0
            try:
                while chunk := stream.read(self._chunk_size):
                    total += len(chunk)
                    if total > size:
                        # Stop early: a wrong object must not be allowed to fill the disk.
                        raise DownloadIntegrityError(
                            f"received more than the {size} bytes declared for {sha256}"
                        )
                    digest.update(chunk)
                    self.write_all(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            if total != size:
                raise DownloadIntegrityError(
                    f"received {total} bytes, expected {size}, for {sha256}"
                )
            actual = digest.hexdigest()
            if actual != sha256:
                raise ContentMismatchError(f"SHA-256 mismatch: expected {sha256}, got {actual}")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def write_all(self, fd: int, data: bytes) -> None:
        """Write all of `data` at the descriptor's position (through the write seam)."""
        view = memoryview(data)
        while view:
            view = view[self._write(fd, view) :]

    def staging_path(self, name: str) -> Path:
        """A named (resumable) staging file; `name` is made by the agent, not a phone."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise AgentError(f"not a staging file name: {name!r}")
        return self._staging / name

    def place(self, staged: Path, relative: PurePosixPath, *, sha256: str, size: int) -> Placement:
        """Give the verified `staged` file its final name without overwriting anything.

        The staging file is consumed (linked then removed, or renamed).
        """
        directory = self._make_dirs(relative.parent)
        for name in _candidates(relative.name):
            target = self._entry(directory, name)
            try:
                self._claim(staged, target)
            except FileExistsError:
                if _check(target, sha256=sha256, size=size).state == FileState.OK:
                    staged.unlink(missing_ok=True)
                    logger.info("%s is already in the library", target)
                    return self._placement(target, already_present=True)
                continue
            _fsync_dir(directory)
            crash_point("agent.placed")
            return self._placement(target, already_present=False)
        raise AgentError(f"more than {MAX_COLLISIONS} different files named {relative}")

    # Helpers ---------------------------------------------------------------------------
    def _claim(self, staged: Path, target: Path) -> None:
        """Move `staged` to `target`; FileExistsError if the name is taken."""
        if self._hardlinks:
            try:
                self._link(staged, target)
            except FileExistsError:
                raise
            except OSError as exc:
                logger.info("hard links unavailable in %s (%s); using rename", self._root, exc)
                self._hardlinks = False
            else:
                crash_point("agent.linked")
                staged.unlink()
                return
        # Reserve the name exclusively, then rename over our own empty reservation. A crash
        # between the two leaves an empty file; hard links, where they exist, avoid that.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, self.file_mode)
        os.close(fd)
        try:
            os.replace(staged, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def _make_dirs(self, relative_dir: PurePosixPath) -> Path:
        """Create `relative_dir` under the root, fsyncing each new entry's parent.

        Every file placed passes here, from many workers at once, and each look at the disk
        lets another thread take the interpreter: a folder that already exists costs one
        resolve and one stat, not a walk.
        """
        directory = self._inside(relative_dir)
        if os.path.isdir(directory):
            return directory
        current = self._root
        for part in relative_dir.parts:
            parent, current = current, current / part
            if not current.is_dir():
                current.mkdir(mode=self.dir_mode, exist_ok=True)
                _fsync_dir(parent)
        # Checked again now that it exists: a component may have been a symlink.
        return self._inside(directory.relative_to(self._root))

    def _inside(self, relative: PurePosixPath | Path) -> Path:
        return ensure_inside(self._root, relative, root_resolved=True)

    def _entry(self, directory: Path, name: str) -> Path:
        """`directory / name`, for a `directory` resolved inside the root: the name is one
        plain component, so only a link there could lead elsewhere (then it is resolved and
        checked like any path)."""
        target = directory / name
        if name in ("", ".", "..") or "/" in name or os.sep in name or os.path.islink(target):
            return self._inside(target.relative_to(self._root))
        return target

    def _placement(self, target: Path, *, already_present: bool) -> Placement:
        return Placement(
            path=target,
            relative=PurePosixPath(target.relative_to(self._root).as_posix()),
            already_present=already_present,
        )


def _candidates(filename: str) -> Iterator[str]:
    """`name.ext`, `name (1).ext`, `name (2).ext`, ..."""
    yield filename
    stem, ext = split_extension(filename)
    for n in range(1, MAX_COLLISIONS):
        yield f"{stem} ({n}){ext}"


def _check(
    path: Path, *, sha256: str, size: int, mtime_ns: int | None = None, verify: bool = False
) -> FileCheck:
    try:
        st = path.lstat()
    except OSError:
        return FileCheck(FileState.MISSING)
    if not stat.S_ISREG(st.st_mode):
        return FileCheck(FileState.MISSING)
    if st.st_size != size:
        return FileCheck(FileState.ALTERED, path, st.st_mtime_ns)
    if not verify and mtime_ns is not None and st.st_mtime_ns == mtime_ns:
        return FileCheck(FileState.OK, path, st.st_mtime_ns)
    try:
        same = sha256_file(path) == sha256
    except OSError:
        return FileCheck(FileState.MISSING)
    return FileCheck(FileState.OK if same else FileState.ALTERED, path, st.st_mtime_ns, True)


def _fsync_dir(path: Path) -> None:
    """Make a directory's new entries durable (POSIX; NTFS journals its metadata itself)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
