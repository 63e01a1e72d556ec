"""Opening a file to read what it holds: regular files only, and never waiting on one.

A path named on the command line is whatever the user named: `mkfifo pipe.jpg` then
`upload pipe.jpg` hung forever in `open()`, waiting for a writer. Every read of a file the
engine backs up goes through `open_regular`, which opens without blocking and refuses
anything that is not a regular file (a named pipe, a device, a socket, a folder) as an
OSError whose message says what it is, so the file fails in one line and the run goes on.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegularFileError(OSError):
    """The path is not a regular file; `strerror` says what it is."""

    def __init__(self, path: Path | str, mode: int) -> None:
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", str(path))


def check_regular(path: Path | str, st: os.stat_result) -> os.stat_result:
    """`st` if it describes a regular file; NotRegularFileError otherwise."""
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(path, st.st_mode)
    return st


_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, once its open file is known to be a regular file.

    Opened non-blocking (a FIFO would otherwise wait for a writer), checked with `fstat` on
    what was opened (not on the name, which may have changed since), then made blocking.
    """
    fd = os.open(path, _FLAGS)
    try:
        check_regular(path, os.fstat(fd))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result, os.stat_result]:
    """Up to `limit` bytes of `path` and the `fstat` of what was opened, before and after
    the read (a file written meanwhile shows it), opened as `open_regular` opens (never
    waiting, regular files only).

    For small files read whole: no buffered reader and no chunk-sized buffer per file (a
    folder of years is tens of thousands of them). A regular file ignores O_NONBLOCK, so it
    is read as opened.
    """
    fd = os.open(path, _FLAGS)
    try:
        st = check_regular(path, os.fstat(fd))
        chunks: list[bytes] = []
        left = limit
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return data, st, os.fstat(fd)
    finally:
        os.close(fd)
