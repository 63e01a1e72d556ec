"""Fetch one object into a staging file: streamed, verified, fsynced, in constant memory.

Small objects are one streaming GET hashed on the fly. Objects of at least
`TransferConfig.threshold` bytes are fetched as parallel ranged GETs, each part streamed
straight to its offset in a pre-sized staging file through its own file descriptor. A
`RangedDownload` holds the whole transfer's state (s3transfer's coordinator): the parts in
flight as futures, driven by `wait(FIRST_COMPLETED)`; the parts done; the next part to hash.
The calling thread hashes parts in order as soon as they are complete (reading them back
from the page cache), so hashing overlaps the download and memory stays at a few chunks per
part in flight whatever the object's size. A part whose connection breaks carries on from
the byte it reached, under the product's one `RetryPolicy`. Completed parts are journaled in
the state file, and each unfinished part's progress every `progress_every` bytes: an agent
killed mid-video resumes where it stopped, never fetches a completed part twice and of the
parts it cut off only their last few MiB; the whole-file SHA-256 still decides, so bytes
lost to a power cut only cost a re-download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_backup.agent._placement import Library, Readable
from mobile_backup.agent.exceptions import (
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    ObjectMissingError,
)
from mobile_backup.aws import AwsFailure, AwsNotFoundError, Bucket
from mobile_backup.core import CancelledError, PartPlan, RetryPolicy, utcnow
from mobile_backup.instrument import crash_point

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mobile_backup.agent._state import StateDB

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_O_BINARY = getattr(os, "O_BINARY", 0)
TARGET_PARTS = 64
PART_RETRY = RetryPolicy(attempts=4, initial=0.1, maximum=2.0)


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
    progress_every: int = 4 * MiB
    """An unfinished part's progress is noted in the state file each time this many more
    of its bytes are in: what a killed agent's restart need not fetch again."""
    part_retry: RetryPolicy = PART_RETRY
    """How a part whose connection breaks mid-part is fetched again (botocore retries the
    request itself; this is for a body that stops flowing)."""
    max_bandwidth: int | None = None
    """Bytes per second for the whole agent, or None for no limit."""

    def __post_init__(self) -> None:
        if min(self.part_size, self.chunk_size, self.max_concurrency, self.progress_every) < 1:
            raise ValueError(
                "part_size, chunk_size, max_concurrency and progress_every must be positive"
            )
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
        DownloadError (ObjectMissingError when S3 has no such key), DownloadIntegrityError
        (nothing kept), CancelledError (a ranged download stays resumable), or OSError from the
        disk (disk full, permission denied).
        """
        cancel = cancel or threading.Event()
        objects = Bucket(self._s3, bucket)
        if size < self._config.threshold:
            return self._fetch_whole(objects, key=key, sha256=sha256, size=size, cancel=cancel)
        download = RangedDownload(
            self, objects, key=key, sha256=sha256, size=size, name=name, cancel=cancel
        )
        return download.run()

    def discard(self, name: str) -> None:
        """Forget a resumable download and delete its staging file."""
        self._library.staging_path(name).unlink(missing_ok=True)
        if self._state is not None:
            self._state.end_download(name)

    # One stream ------------------------------------------------------------------------
    def _fetch_whole(
        self, objects: Bucket, *, key: str, sha256: str, size: int, cancel: threading.Event
    ) -> Path:
        got = _get(objects, key)
        try:
            stream = _GuardedStream(got.body, key, cancel=cancel, bandwidth=self._bandwidth)
            return self._library.stage(stream, sha256=sha256, size=size)
        finally:
            got.body.close()

    # One part (on a pool thread) ---------------------------------------------------------
    def _fetch_part(
        self, objects: Bucket, key: str, path: Path, span: tuple[int, int], size: int,
        stop: threading.Event, written: Callable[[int], None],
    ) -> None:  # fmt: skip
        """Bytes `span` (first, last) of the object into their place in the staging file,
        written back to disk; `written(next_byte)` after each chunk is in the file. A
        connection that breaks raises `_BrokenStream`."""
        start, end = span
        got = _get(objects, key, first=start, last=end)
        try:
            if got.total_size != size:
                raise DownloadIntegrityError(
                    f"{key} has {got.total_size} bytes in the bucket, the ledger says {size}"
                )
            fd = os.open(path, os.O_WRONLY | _O_BINARY)
            try:
                os.lseek(fd, start, os.SEEK_SET)
                position = start
                while position <= end:
                    if stop.is_set():
                        raise CancelledError(f"download of {key} stopped")
                    chunk = _read(got.body, min(self._config.chunk_size, end + 1 - position))
                    if not chunk:
                        raise _BrokenStream(f"ended at byte {position}, expected {end + 1}")
                    if self._bandwidth is not None:
                        self._bandwidth.consume(len(chunk))
                    self._library.write_all(fd, chunk)
                    position += len(chunk)
                    written(position)
                # Write each part back while the others still download, so the fsync after
                # the last byte has little left to do (and a journaled part is on disk).
                _fdatasync(fd)
            finally:
                os.close(fd)
        finally:
            got.body.close()

    def _count_part(self) -> None:
        with self._count_lock:
            self.parts_fetched += 1


class RangedDownload:
    """One object fetched as parallel ranged parts: the transfer's whole state in one place.

    `run` submits every part not yet done, then waits for whichever finishes first
    (`wait(FIRST_COMPLETED)`), records it, and hashes every part it can in order; the
    first failure stops the others (and waits for them: no part may write after `run`
    returns). A part's broken connection is retried by `TransferConfig.part_retry`.
    """

    def __init__(
        self,
        downloader: Downloader,
        objects: Bucket,
        *,
        key: str,
        sha256: str,
        size: int,
        name: str,
        cancel: threading.Event,
    ) -> None:
        self._d = downloader
        self._objects = objects
        self.key = key
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.cancel = cancel
        self.stop = threading.Event()
        """Set on cancel or the first failure: parts in flight stop at their next chunk."""
        config = downloader.config
        self.plan = PartPlan(size, config.part_size_for(size))
        self.path = downloader._library.staging_path(name)
        self.done: set[int] = set()
        """Part indexes (0-based) whose bytes are on disk."""
        self.kept: dict[int, int] = {}
        """Unfinished parts → bytes of them an earlier run left on disk (fetched no more)."""
        self.in_flight: dict[Future[None], int] = {}
        self.next_to_hash = 0
        self._digest = hashlib.sha256()

    def run(self) -> Path:
        self._prepare()
        try:
            with self.path.open("rb") as staged:
                self._submit()
                while self.next_to_hash < self.plan.count:
                    self._hash_ready(staged)
                    if self.next_to_hash < self.plan.count:
                        self._wait_for_a_part()
            with self.path.open("rb+") as synced:
                os.fsync(synced.fileno())
            crash_point("agent.staged")
        except BaseException as exc:
            self._stop_parts()
            if isinstance(exc, DownloadIntegrityError):
                self._d.discard(self.name)
            raise
        actual = self._digest.hexdigest()
        if actual != self.sha256:
            self._d.discard(self.name)
            raise ContentMismatchError(f"SHA-256 mismatch: expected {self.sha256}, got {actual}")
        return self.path

    # Steps -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        """A staging file of the object's size, and what an earlier run left in it: the
        parts it finished and the first bytes of those it did not."""
        library, state = self._d._library, self._d._state
        library.staging.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_BINARY, library.file_mode)
        try:
            fresh = os.fstat(fd).st_size != self.size
            if fresh:
                os.ftruncate(fd, self.size)
        finally:
            os.close(fd)
        if state is None:
            return
        if fresh:  # a journal without its file (or with a file of another size) starts over
            state.end_download(self.name)
        done = state.begin_download(
            self.name,
            sha256=self.sha256,
            size=self.size,
            part_size=self.plan.part_size,
            at=utcnow(),
        )
        self.done = {i for i in done if 0 <= i < self.plan.count}
        for idx, kept in state.kept_of_parts(self.name).items():
            if 0 <= idx < self.plan.count and 0 < kept < self.plan.range(idx + 1)[1]:
                self.kept[idx] = kept
        if self.done or self.kept:
            logger.info(
                "resuming %s: %d of %d parts already here, and %d MiB of %d others",
                self.key,
                len(self.done),
                self.plan.count,
                sum(self.kept.values()) // MiB,
                len(self.kept),
            )

    def _submit(self) -> None:
        for idx in range(self.plan.count):
            if idx not in self.done:
                future = self._d._pool.submit(self._part, idx)
                self.in_flight[future] = idx

    def _wait_for_a_part(self) -> None:
        """Wait (a fraction of a second at a time, to notice a cancel) for a part to end."""
        while True:
            if self.cancel.is_set():
                raise CancelledError(f"download of {self.key} stopped; it will resume")
            finished, _ = wait(self.in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            if finished:
                break
        for future in finished:
            idx = self.in_flight.pop(future)
            future.result()  # the part's failure, first come, ends the download
            self.done.add(idx)

    def _hash_ready(self, staged: Any) -> None:
        """Hash, in order, every part from `next_to_hash` on that is on disk."""
        chunk_size = self._d.config.chunk_size
        while self.next_to_hash in self.done:
            offset, length = self.plan.range(self.next_to_hash + 1)
            staged.seek(offset)
            while length > 0:
                chunk = staged.read(min(chunk_size, length))
                if not chunk:
                    raise DownloadIntegrityError(f"staging file of {self.key} is short")
                self._digest.update(chunk)
                length -= len(chunk)
            self.next_to_hash += 1

    def _part(self, idx: int) -> None:
        """One part on a pool thread: fetched (a broken connection carries on from the byte
        it reached), then journaled, so a resumed download never fetches it again. On the
        way its progress is noted every `progress_every` bytes: a restart fetches the rest."""
        offset, length = self.plan.range(idx + 1)
        end = offset + length - 1
        at = offset + self.kept.get(idx, 0)  # the next byte to fetch
        noted = at
        state, every = self._d._state, self._d.config.progress_every

        def written(position: int) -> None:
            nonlocal at, noted
            at = position
            if state is not None and position - noted >= every and position <= end:
                state.part_progress(self.name, idx, position - offset)
                noted = position

        def fetch() -> None:
            if self.stop.is_set():
                raise CancelledError(f"download of {self.key} stopped")
            self._d._fetch_part(
                self._objects, self.key, self.path, (at, end), self.size, self.stop, written
            )

        def broken(exc: BaseException) -> bool:
            if isinstance(exc, _BrokenStream):
                logger.info(
                    "part %d of %s broke off (%s); fetching its remaining %d bytes",
                    idx, self.key, exc, end + 1 - at,
                )  # fmt: skip
                return True
            return False

        try:
            self._d.config.part_retry.call(fetch, transient=broken, cancel=self.stop)
        except _BrokenStream as exc:
            raise DownloadError(f"part {idx} of {self.key} kept failing: {exc}") from exc
        self._d._count_part()
        crash_point("agent.part_written")
        if self._d._state is not None:
            self._d._state.part_done(self.name, idx)
        crash_point("agent.part_journaled")

    def _stop_parts(self) -> None:
        """Stop and wait for every part still in flight: none may write after we return."""
        self.stop.set()
        for future in self.in_flight:
            future.cancel()
        for future in self.in_flight:
            if not future.cancelled():
                future.exception()


class _BrokenStream(Exception):
    """The connection broke mid-part; the part is fetched again."""


def _get(objects: Bucket, key: str, *, first: int | None = None, last: int | None = None) -> Any:
    """The object's stream, S3's answers as the agent's errors."""
    try:
        return objects.stream(key, first=first, last=last)
    except AwsNotFoundError as exc:
        raise ObjectMissingError(f"{key} is not in the bucket") from exc
    except AwsFailure as exc:  # refused (a range past the end), or no answer
        if exc.aws_code == "InvalidRange":
            raise DownloadIntegrityError(f"{key} is shorter than the ledger says") from exc
        raise DownloadError(f"could not get {key}: {exc}") from exc


def _read(body: Any, size: int) -> bytes:
    """One chunk of a part; a connection broken mid-body is `_BrokenStream` (retried)."""
    try:
        return Bucket.read_chunk(body, size)
    except (AwsFailure, OSError) as exc:
        raise _BrokenStream(str(exc)) from exc


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
            chunk = Bucket.read_chunk(self._body, size)
        except (AwsFailure, OSError) as exc:
            raise DownloadError(f"download of {self._key} broke off: {exc}") from exc
        if self._bandwidth is not None and chunk:
            self._bandwidth.consume(len(chunk))
        return chunk
