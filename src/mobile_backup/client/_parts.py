"""How a file is cut into parts, hashed, and read back one byte range at a time.

The part size is chosen by the client (the API accepts it within S3's limits) because the
client hashes every part in the same run over the file as the whole-file SHA-256, so a
multipart upload reads the file once to hash and once to send, never more.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.client.exceptions import FileChangedError
from mobile_backup.core import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    choose_part_size,
    part_count,
    part_range,
)
from mobile_backup.core.wire import MULTIPART_CHECKSUM, ChecksumAlgorithm
from mobile_backup.media import check_regular, open_regular, read_regular

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "FileHash",
    "FileStamp",
    "RangeBody",
    "choose_part_size",
    "hash_file",
    "part_count",
    "part_range",
]

MIB = 1024**2
READ_CHUNK = MIB


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies a file's content without reading it: size and modification time."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        """Raises NotRegularFileError (an OSError) for a pipe, a device, a socket, a folder."""
        st = check_regular(path, path.stat())
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns)

    @classmethod
    def of_fd(cls, fd: int) -> FileStamp:
        st = os.fstat(fd)
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class FileHash:
    """A file's SHA-256 and, for a multipart upload, its CRC32 and each part's.

    Multipart uploads carry a CRC because only CRCs let S3 check the whole assembled object
    (it combines the parts' CRCs): S3 then refuses to complete an object that is not exactly
    the file hashed here, in the same pass as its SHA-256. CRC32 is the standard library's
    (`zlib.crc32`, C, and free of the GIL on big buffers): no binary wheel, so a phone can
    install it.
    """

    sha256: str
    stamp: FileStamp
    part_size: int | None = None
    part_digests: tuple[bytes, ...] = ()
    """Each part's CRC32, 4 bytes big-endian."""
    full_crc: str | None = None
    """The whole file's CRC32, base64 (multipart files only)."""
    checksum_algorithm: ChecksumAlgorithm = MULTIPART_CHECKSUM

    @property
    def size(self) -> int:
        return self.stamp.size

    def part_checksum(self, number: int) -> str:
        """The base64 CRC32 of part `number`, as S3 takes it."""
        return b64(self.part_digests[number - 1])

    @property
    def part_checksums(self) -> list[str]:
        return [b64(d) for d in self.part_digests]


def _read_chunks(path: Path, stamp: FileStamp) -> Iterator[bytes]:
    with open_regular(path) as fh:
        if FileStamp.of_fd(fh.fileno()) != stamp:
            raise FileChangedError(f"{path.name} changed while it was being read")
        while chunk := fh.read(READ_CHUNK):
            yield chunk


CRC_SIZE = 4


def _crc_bytes(value: int) -> bytes:
    return value.to_bytes(CRC_SIZE, "big")


def _part_crcs(path: Path, stamp: FileStamp, part_size: int) -> tuple[tuple[bytes, ...], str]:
    """Each part's CRC32 and the whole file's (base64), in one read."""
    crcs: list[bytes] = []
    whole, current, filled = 0, 0, 0
    for chunk in _read_chunks(path, stamp):
        whole = zlib.crc32(chunk, whole)
        view = memoryview(chunk)
        while view:
            take = min(len(view), part_size - filled)
            current = zlib.crc32(view[:take], current)
            filled += take
            view = view[take:]
            if filled == part_size:
                crcs.append(_crc_bytes(current))
                current, filled = 0, 0
    if filled or not crcs:
        crcs.append(_crc_bytes(current))
    return tuple(crcs), b64(_crc_bytes(whole))


def hash_file(
    path: Path, *, part_size: int | None = None, stamp: FileStamp | None = None
) -> FileHash:
    """Hash `path`; with `part_size`, also each part (in a second thread, at the same time).
    `stamp`: the file's, just read by the caller (saves reading it again).

    Raises FileChangedError if the file changes while it is read, OSError if it cannot be.
    """
    stamp = stamp or FileStamp.of(path)
    if part_size is None and stamp.size < READ_CHUNK:
        return _hash_small(path, stamp)
    parts: list[tuple[tuple[bytes, ...], str]] = []
    failure: list[BaseException] = []
    worker: threading.Thread | None = None
    if part_size is not None:
        # hashlib releases the GIL on big buffers: the two digests take one core each, and
        # the second read of every chunk comes from the page cache.
        def run() -> None:
            try:
                parts.append(_part_crcs(path, stamp, part_size))
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=run, name="hash-parts", daemon=True)
        worker.start()
    whole = hashlib.sha256()
    try:
        for chunk in _read_chunks(path, stamp):
            whole.update(chunk)
    finally:
        if worker is not None:
            worker.join()
    if failure:
        raise failure[0]
    if FileStamp.of(path) != stamp:
        raise FileChangedError(f"{path.name} changed while it was being read")
    return FileHash(
        sha256=whole.hexdigest(),
        stamp=stamp,
        part_size=part_size,
        part_digests=parts[0][0] if parts else (),
        full_crc=parts[0][1] if parts else None,
    )


def _hash_small(path: Path, stamp: FileStamp) -> FileHash:
    """A file under one read chunk: one read of the whole (a byte more, to see it grow),
    the file as opened the same before and after it (the bytes hashed are the ones read)."""
    data, before, after = read_regular(path, stamp.size + 1)
    if len(data) != stamp.size or any(
        (st.st_size, st.st_mtime_ns) != (stamp.size, stamp.mtime_ns) for st in (before, after)
    ):
        raise FileChangedError(f"{path.name} changed while it was being read")
    return FileHash(sha256=hashlib.sha256(data).hexdigest(), stamp=stamp)


class RangeBody:
    """An iterable request body: `length` bytes of `path` from `offset`, read as sent.

    Memory stays at one read chunk whatever the part size. `on_chunk` is told each chunk's
    length as it is handed to the connection. The file must still be the one hashed
    (`stamp`), or FileChangedError stops the request before S3 could take other bytes.
    """

    def __init__(
        self,
        path: Path,
        *,
        offset: int,
        length: int,
        stamp: FileStamp,
        on_chunk: Callable[[int], None] = lambda _n: None,
        chunk_size: int = READ_CHUNK,
    ) -> None:
        self._path = path
        self._offset = offset
        self._length = length
        self._stamp = stamp
        self._on_chunk = on_chunk
        self._chunk = chunk_size
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        with open_regular(self._path) as fh:
            if FileStamp.of_fd(fh.fileno()) != self._stamp:
                raise FileChangedError(f"{self._path.name} changed since it was hashed")
            fh.seek(self._offset)
            left = self._length
            while left > 0:
                chunk = fh.read(min(self._chunk, left))
                if not chunk:
                    raise FileChangedError(f"{self._path.name} is shorter than when hashed")
                left -= len(chunk)
                self.sent += len(chunk)
                self._on_chunk(len(chunk))
                yield chunk
