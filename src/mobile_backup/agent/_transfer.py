"""Fetch one object into a staging file: streamed, verified, fsynced, in constant memory.

Small objects are one streaming GET hashed on the fly. Objects of at least
`TransferConfig.threshold` bytes are fetched as parallel ranged GETs, each part streamed
straight to its offset in a pre-sized staging file through its own file descriptor; the
calling thread hashes the parts in order as they complete (reading them back from the page
cache), so hashing overlaps the download and memory stays at a few chunks per part in
flight whatever the object's size. Completed parts are journaled in the state file: an agent
killed mid-video resumes where it stopped and never fetches a completed part twice; the
whole-file SHA-256 still decides, so a part lost to a power cut only costs a re-download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mobile_backup.agent._placement import Library, Readable
from mobile_backup.agent.exceptions import (
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    ObjectMissingError,
)
from mobile_backup.core import (
    CancelledError,
    PartPlan,
    crash_point,
    error_code,
    object_missing,
    utcnow,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

    from mobile_backup.agent._state import StateDB

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_O_BINARY = getattr(os, "O_BINARY", 0)
TARGET_PARTS = 64


# fdatasync where the OS has it (not Windows, where fsync is what there is).
_fdatasync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferConfig:
    """How objects are fetched."""

    threshold: int = 16 * MiB
    """Objects at least this big are fetched as parallel ranged GETs."""
    part_size: int = 8 * MiB
    """Bytes per ranged GET (and per journaled part) at least; see `part_size_for`."""
    max_part_size: int = 32 * MiB
    """Bytes per ranged GET at most: a long video's parts grow up to this."""
    max_concurrency: int = 8
    """Ranged GETs in flight across the whole agent."""
    chunk_size: int = 1 * MiB
    """Bytes per read from a response body; with `max_concurrency`, bounds memory."""
    part_attempts: int = 4
    """Tries per part when the connection breaks mid-part (botocore retries the request)."""
    max_bandwidth: int | None = None
    """Bytes per second for the whole agent, or None for no limit."""

    def __post_init__(self) -> None:
        if self.part_size < 1 or self.chunk_size < 1 or self.max_concurrency < 1:
            raise ValueError("part_size, chunk_size and max_concurrency must be positive")
        if self.threshold < self.part_size:
            raise ValueError("threshold must be at least part_size")
        if self.max_part_size < self.part_size:
            raise ValueError("max_part_size must be at least part_size")

    def part_size_for(self, size: int) -> int:
        """The part size for an object of `size` bytes: `part_size`, grown (in multiples of
        it, up to `max_part_size`) so that a long video is about `TARGET_PARTS` parts.

        Fewer, larger GETs cost the server and the agent less per byte (8 MiB parts cost
        SeaweedFS 1.5 s more CPU per 2 GiB than 32 MiB parts); that many parts are still
        several rounds of `max_concurrency`, so the in-order hash follows the download. It
        depends only on the size and the settings: a resumed download plans the same parts.
        """
        wanted = -(-size // TARGET_PARTS)
        wanted = -(-wanted // self.part_size) * self.part_size
        return max(self.part_size, min(self.max_part_size, wanted))


class Bandwidth:
    """A token bucket shared by every transfer: `consume(n)` sleeps to stay under the rate."""

    def __init__(self, bytes_per_second: int, *, clock: Callable[[], float] = time.monotonic):
        self._rate = float(bytes_per_second)
        self._clock = clock
        self._lock = threading.Lock()
        self._next = clock()

    def consume(self, n: int) -> None:
        with self._lock:
            now = self._clock()
            start = max(self._next, now)
            self._next = start + n / self._rate
            delay = start - now
        if delay > 0:
            time.sleep(delay)


class Downloader:
    """Fetches objects into the library's staging dir.

    Args:
        s3: the S3 client (any S3 endpoint: AWS, the emulator, seaweedfs).
        library: where staging files live, and its write seam.
        state: the journal of completed parts (None: ranged downloads do not resume).
        config: sizes and concurrency.
    """

    def __init__(
        self,
        s3: S3Client,
        *,
        library: Library,
        state: StateDB | None = None,
        config: TransferConfig | None = None,
    ) -> None:
        self._s3 = s3
        self._library = library
        self._state = state
        self._config = config or TransferConfig()
        self._pool = ThreadPoolExecutor(self._config.max_concurrency, thread_name_prefix="part")
        rate = self._config.max_bandwidth
        self._bandwidth = Bandwidth(rate) if rate else None
        self.parts_fetched = 0
        """Ranged parts fetched since start (B7 counts re-fetched parts with this)."""
        self._count_lock = threading.Lock()

    @property
    def config(self) -> TransferConfig:
        return self._config

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def fetch(
        self,
        *,
        bucket: str,
        key: str,
        sha256: str,
        size: int,
        name: str,
        cancel: threading.Event | None = None,
    ) -> Path:
        """The verified, fsynced staging file holding the object's bytes.

        `name` identifies a resumable staging file (same content, same name). Raises
        DownloadError (code `object_missing` when S3 has no such key), DownloadIntegrityError
        (nothing kept), CancelledError (a ranged download stays resumable), or OSError from the
        disk (disk full, permission denied).
        """
        cancel = cancel or threading.Event()
        if size < self._config.threshold:
            return self._fetch_whole(
                bucket=bucket, key=key, sha256=sha256, size=size, cancel=cancel
            )
        return self._fetch_ranged(
            bucket=bucket, key=key, sha256=sha256, size=size, name=name, cancel=cancel
        )

    def discard(self, name: str) -> None:
        """Forget a resumable download and delete its staging file."""
        self._library.staging_path(name).unlink(missing_ok=True)
        if self._state is not None:
            self._state.end_download(name)

    # One stream ------------------------------------------------------------------------
    def _fetch_whole(
        self, *, bucket: str, key: str, sha256: str, size: int, cancel: threading.Event
    ) -> Path:
        resp = self._get(bucket, key)
        body = resp["Body"]
        try:
            stream = _GuardedStream(body, key, cancel=cancel, bandwidth=self._bandwidth)
            return self._library.stage(stream, sha256=sha256, size=size)
        finally:
            body.close()

    # Ranged parts ----------------------------------------------------------------------
    def _fetch_ranged(
        self,
        *,
        bucket: str,
        key: str,
        sha256: str,
        size: int,
        name: str,
        cancel: threading.Event,
    ) -> Path:
        cfg = self._config
        part_size = cfg.part_size_for(size)
        path = self._library.staging_path(name)
        self._library.staging.mkdir(parents=True, exist_ok=True)
        done: set[int] = set()
        if self._state is not None:
            if not path.exists():
                self._state.end_download(name)  # a journal without its file starts over
            done = self._state.begin_download(
                name, sha256=sha256, size=size, part_size=part_size, at=utcnow()
            )
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_BINARY, self._library.file_mode)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
                done = set()
        finally:
            os.close(fd)
        plan = PartPlan(size, part_size)  # part n of the plan is idx n - 1 here
        count = plan.count
        finished = [threading.Event() for _ in range(count)]
        for idx in done:
            if 0 <= idx < count:
                finished[idx].set()
        if done:
            logger.info("resuming %s: %d of %d parts already here", key, len(done), count)
        failed = threading.Event()
        errors: list[BaseException] = []
        futures: list[Future[None]] = []

        def on_error(exc: BaseException) -> None:
            errors.append(exc)
            failed.set()

        for idx in range(count):
            if finished[idx].is_set():
                continue
            start, length = plan.range(idx + 1)
            end = start + length - 1
            futures.append(
                self._pool.submit(
                    self._part,
                    bucket=bucket,
                    key=key,
                    path=path,
                    name=name,
                    idx=idx,
                    start=start,
                    end=end,
                    size=size,
                    done=finished[idx],
                    stop=(cancel, failed),
                    on_error=on_error,
                )
            )
        try:
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for idx in range(count):
                    while not finished[idx].wait(0.2):
                        if failed.is_set():
                            raise errors[0]
                        if cancel.is_set():
                            raise CancelledError(f"download of {key} stopped; it will resume")
                    offset, length = plan.range(idx + 1)
                    fh.seek(offset)
                    while length > 0:
                        chunk = fh.read(min(cfg.chunk_size, length))
                        if not chunk:
                            raise DownloadIntegrityError(f"staging file of {key} is short")
                        digest.update(chunk)
                        length -= len(chunk)
            if errors:
                raise errors[0]
            with path.open("rb+") as synced:
                os.fsync(synced.fileno())
            crash_point("agent.staged")
        except BaseException as exc:
            failed.set()
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled():
                    future.exception()  # wait: no part may write after we return
            if isinstance(exc, DownloadIntegrityError):
                self.discard(name)
            raise
        actual = digest.hexdigest()
        if actual != sha256:
            self.discard(name)
            raise ContentMismatchError(f"SHA-256 mismatch: expected {sha256}, got {actual}")
        return path

    def _part(
        self,
        *,
        bucket: str,
        key: str,
        path: Path,
        name: str,
        idx: int,
        start: int,
        end: int,
        size: int,
        done: threading.Event,
        stop: tuple[threading.Event, threading.Event],
        on_error: Callable[[BaseException], None],
    ) -> None:
        try:
            for attempt in range(1, self._config.part_attempts + 1):
                try:
                    self._fetch_part(bucket, key, path, start, end, size, stop)
                    break
                except _BrokenStream as exc:
                    if attempt == self._config.part_attempts:
                        raise DownloadError(f"part {idx} of {key} kept failing: {exc}") from exc
                    logger.info("part %d of %s broke off (%s); retrying", idx, key, exc)
            with self._count_lock:
                self.parts_fetched += 1
            crash_point("agent.part_written")
            if self._state is not None:
                self._state.part_done(name, idx)
            crash_point("agent.part_journaled")
            done.set()
        except BaseException as exc:
            on_error(exc)

    def _fetch_part(
        self,
        bucket: str,
        key: str,
        path: Path,
        start: int,
        end: int,
        size: int,
        stop: tuple[threading.Event, threading.Event],
    ) -> None:
        resp = self._get(bucket, key, byte_range=f"bytes={start}-{end}")
        body = resp["Body"]
        try:
            total = _total_size(resp.get("ContentRange", ""))
            if total != size:
                raise DownloadIntegrityError(
                    f"{key} has {total} bytes in the bucket, the ledger says {size}"
                )
            fd = os.open(path, os.O_WRONLY | _O_BINARY)
            try:
                os.lseek(fd, start, os.SEEK_SET)
                position = start
                while position <= end:
                    if any(e.is_set() for e in stop):
                        raise CancelledError(f"download of {key} stopped")
                    try:
                        chunk = body.read(min(self._config.chunk_size, end + 1 - position))
                    except (BotoCoreError, ClientError, OSError) as exc:
                        raise _BrokenStream(str(exc)) from exc
                    if not chunk:
                        raise _BrokenStream(f"ended at byte {position}, expected {end + 1}")
                    if self._bandwidth is not None:
                        self._bandwidth.consume(len(chunk))
                    self._library.write_all(fd, chunk)
                    position += len(chunk)
                # Write each part back while the others still download, so the fsync after
                # the last byte has little left to do (and a journaled part is on disk).
                _fdatasync(fd)
            finally:
                os.close(fd)
        finally:
            body.close()

    def _get(
        self, bucket: str, key: str, *, byte_range: str | None = None
    ) -> GetObjectOutputTypeDef:
        try:
            if byte_range is None:
                resp = self._s3.get_object(Bucket=bucket, Key=key)
            else:
                resp = self._s3.get_object(Bucket=bucket, Key=key, Range=byte_range)
        except ClientError as exc:
            if object_missing(self._s3, bucket, key, exc):
                raise ObjectMissingError(f"{key} is not in the bucket") from exc
            if error_code(exc) == "InvalidRange":
                raise DownloadIntegrityError(f"{key} is shorter than the ledger says") from exc
            raise DownloadError(f"could not get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise DownloadError(f"could not get {key}: {exc}") from exc
        return resp


class _BrokenStream(Exception):
    """The connection broke mid-part; the part is fetched again."""


class _GuardedStream:
    """A response body that stops on cancel, keeps to the bandwidth limit, and turns
    network errors mid-download into DownloadError."""

    def __init__(
        self,
        body: Readable,
        key: str,
        *,
        cancel: threading.Event,
        bandwidth: Bandwidth | None,
    ) -> None:
        self._body = body
        self._key = key
        self._cancel = cancel
        self._bandwidth = bandwidth

    def read(self, size: int, /) -> bytes:
        if self._cancel.is_set():
            raise CancelledError(f"download of {self._key} stopped")
        try:
            chunk = self._body.read(size)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise DownloadError(f"download of {self._key} broke off: {exc}") from exc
        if self._bandwidth is not None and chunk:
            self._bandwidth.consume(len(chunk))
        return chunk


def _total_size(content_range: object) -> int | None:
    match = _CONTENT_RANGE.fullmatch(str(content_range))
    if match:
        return int(match.group(3))
    return None
