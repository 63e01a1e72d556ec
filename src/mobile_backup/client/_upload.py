"""The upload engine: hash, skip what is backed up, send the rest, resumably.

Small files are presigned in batches of up to 100 (one API call per batch) and sent with one
PUT each; files from `multipart_threshold` up are sent in parts (`_multipart.py`) that
survive a crash. Hashing of the next batch overlaps the transfers of the previous one, and
at most about one batch waits for a connection, so no URL waits long enough to expire. The
first batch is small (`FIRST_BATCH`), so the first PUTs start once a few files are hashed
rather than a hundred, and the batches after it grow twice as big each time.

Progress goes to subscribers (`on_queued`, `on_progress`, `on_done`), so the CLI, the app
and tests all watch the same engine. One file's failure never stops the others.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from mobile_backup.client._api import MAX_BATCH, ApiClient, Lookup, UploadTicket
from mobile_backup.client._engine import Engine, Prepared
from mobile_backup.client._journal import Journal
from mobile_backup.client._ledger_mirror import LedgerMirror
from mobile_backup.client._multipart import MultipartJob
from mobile_backup.client._parts import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    RangeBody,
    choose_part_size,
)
from mobile_backup.client._preparing import Preparer
from mobile_backup.client._results import (
    CANCELLED,
    DUPLICATE,
    FAILED,
    HASHING,
    READING_LEDGER,
    UPLOADED,
    WOULD_UPLOAD,
    FileResult,
    UploadSubscriber,
    UploadSummary,
)
from mobile_backup.client._run import Run
from mobile_backup.client._transfer import fresh_until, put_range
from mobile_backup.client.exceptions import UploadError, UrlRejectedError
from mobile_backup.core import CancelledError, MobileBackupError, RetryPolicy, chunked
from mobile_backup.instrument import crash_point

log = logging.getLogger(__name__)

# A URL S3 refuses (expired, clock skew) is asked for again this many times.
MAX_REPLANS = 2
# Files sent in parts at the same time (each keeps `parallel` parts in flight).
MULTIPART_FILES_AT_ONCE = 2
# Files in the first presign batch: enough to fill the connections while the next batch is
# hashed; the batches after it double up to 100. A run of 1,000 photos costs three API calls
# more than batches of 100 from the start (13 instead of 10).
FIRST_BATCH = 10
SMALL_FILES = 256 * 1024
"""A dry run whose files average less than this hashes them on one thread (`dry_run`)."""
LOOKUPS_IN_FLIGHT = 4
"""A dry run's ledger lookups (100 files each) in flight at once: a home link's round trips
overlap instead of adding up."""

__all__ = [
    "CANCELLED",
    "DUPLICATE",
    "FAILED",
    "UPLOADED",
    "FileResult",
    "UploadSubscriber",
    "UploadSummary",
    "Uploader",
]


class _InFlight:
    """Counts single PUTs not finished yet, so the presigning can wait for them."""

    def __init__(self) -> None:
        self._n = 0
        self._cond = threading.Condition()

    def add(self, n: int) -> None:
        with self._cond:
            self._n += n

    def done(self) -> None:
        with self._cond:
            self._n -= 1
            self._cond.notify_all()

    def wait_below(self, limit: int, cancel: threading.Event) -> None:
        with self._cond:
            while self._n > limit and not cancel.is_set():
                self._cond.wait(0.5)


class Uploader:
    """Backs up files through the API's presigned URLs.

    Keyword-only arguments:
        api: the API client (it refreshes the token itself).
        http: the client for S3 PUTs (default: pooled, generous write timeout).
        journal: where hashes, uploads and parts are noted; without one nothing survives
            the process (pass `Journal(journal_path(...))` to resume after a crash).
        parallel: PUTs in flight at once, whether of small files or of parts.
        retry: how transient failures are retried (per request).
        device: the sending device's name, kept in the ledger.
        subscribers: progress receivers.
        multipart_threshold: files of at least this many bytes are sent in parts.
        part_size: preferred part size (≥ 5 MiB); grown for very large files.
        received_dir: where the app keeps files a browser sent it; their modification time
            is when they arrived, so it is never sent as a capture time.
    """

    def __init__(
        self,
        *,
        api: ApiClient,
        http: httpx.Client | None = None,
        journal: Journal | None = None,
        parallel: int = 4,
        retry: RetryPolicy | None = None,
        device: str | None = None,
        subscribers: Sequence[UploadSubscriber] = (),
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        received_dir: Path | None = None,
    ) -> None:
        choose_part_size(0, preferred=part_size)  # validates it
        self._received_dir = received_dir.resolve() if received_dir else None
        self._parallel = max(1, parallel)
        self._device = device
        self._threshold = max(1, multipart_threshold)
        self._part_size = part_size
        self._cancel = threading.Event()
        self._owns_http = http is None
        self._engine = Engine(
            api=api,
            http=http
            or httpx.Client(
                timeout=httpx.Timeout(30.0, write=120.0),
                limits=httpx.Limits(max_connections=self._parallel * 2),
            ),
            journal=journal or Journal.memory(),
            retry=retry or RetryPolicy(),
            subscribers=subscribers,
            cancel=self._cancel,
            parts_in_flight=self._parallel,
        )
        self._hash_workers = max(1, min(self._parallel, os.cpu_count() or 1, 4))
        self._preparer = Preparer(
            self._engine,
            cancel=self._cancel,
            threshold=self._threshold,
            part_size=self._part_size,
            device=self._device,
            received_dir=self._received_dir,
            workers=self._hash_workers,
        )

    @property
    def journal(self) -> Journal:
        return self._engine.journal

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop soon (thread-safe): parts in flight finish, nothing new starts.

        `upload()` then returns with the unfinished files `cancelled`; a later run (of a new
        Uploader on the same journal) carries on from the last completed part.
        """
        self._cancel.set()

    def close(self) -> None:
        """Close the HTTP client this uploader made (not the API client or journal)."""
        if self._owns_http:
            self._engine.http.close()

    # The run ---------------------------------------------------------------------------
    def upload(self, paths: Iterable[Path]) -> UploadSummary:
        """Back up each file (files only; see `discover` for folders); never raises for one."""
        run = Run.begin(self._engine, paths)
        e = self._engine
        futures: list[Future[FileResult]] = []
        twins: list[tuple[Prepared, Path]] = []
        inflight = _InFlight()
        with (
            ThreadPoolExecutor(self._parallel, thread_name_prefix="upload") as transfers,
            ThreadPoolExecutor(self._hash_workers, thread_name_prefix="hash") as hashers,
            ThreadPoolExecutor(MULTIPART_FILES_AT_ONCE, thread_name_prefix="parts") as jobs,
        ):
            e.transfers = transfers
            try:
                for outcomes in self._preparer.batches(run, hashers, _ramped(run.todo)):
                    if self._cancel.is_set():
                        break
                    singles: list[Prepared] = []
                    # The journal only spares the hashing: whether a file is backed up is
                    # always the current deployment's ledger's answer.
                    for p in run.firsts(outcomes, twins):
                        if p.hash.part_size is not None:
                            futures.append(jobs.submit(MultipartJob(e, p).run))
                        else:
                            singles.append(p)
                    if singles:
                        # Keep at most about one batch waiting for a connection.
                        inflight.wait_below(MAX_BATCH, self._cancel)
                        futures.extend(self._send_batch(singles, inflight))
                for future in futures:
                    result = future.result()
                    run.results[result.path] = result
                for twin, first in twins:  # same bytes as a file of this run: answered after it
                    run.finish(_twin_result(twin, first, run.results.get(first)))
            finally:
                for future in futures:  # on an unexpected error, still end cleanly
                    future.cancel()
                e.transfers = None
        return run.summary(never_reached="stopped before it started")

    def dry_run(self, paths: Iterable[Path]) -> UploadSummary:
        """What `upload` would do, without sending or reserving anything.

        Each file is hashed (the journal's cached hash when the file is unchanged; a new
        hash is remembered, so the real run does not hash again) and the ledger is asked,
        100 files per call and `LOOKUPS_IN_FLIGHT` calls at a time, which contents it has
        (only of those the journal keeps no up-to-date answer of; a first run of many files
        reads the member's list of contents instead: `LedgerMirror`); capture times are not
        read (nothing is sent). Results: `would_upload`, `duplicate`
        (backed up; or the same content as an earlier file of the run, named in `reason`)
        or `failed` (unreadable).
        """
        run = Run.begin(self._engine, paths)
        e = self._engine
        mirror = LedgerMirror(e.api, e.journal)
        if run.todo:
            e.phase(READING_LEDGER)
            mirror.catch_up(files=len(run.todo))
            e.phase(HASHING)
        asked: deque[tuple[list[Prepared], dict[str, Lookup], Future[dict[str, Any]] | None]]
        asked = deque()
        # Preparing a small file is mostly Python holding the GIL (opening, reading, checking
        # and describing it: tens of microseconds; hashing 20 KB: a few more, without the
        # GIL): a second hashing thread mostly waits for the first and for the thread that
        # answers, and each hand-over of the GIL is a futex call. B9's 20,000 files of
        # 20 KB: hashed in 2.3 s on one thread, 3.1 s on two.
        small = run.todo_bytes < SMALL_FILES * len(run.todo)
        with (
            ThreadPoolExecutor(
                1 if small else self._hash_workers, thread_name_prefix="hash"
            ) as hashers,
            ThreadPoolExecutor(LOOKUPS_IN_FLIGHT, thread_name_prefix="lookup") as lookups,
        ):
            batches = chunked(run.todo, MAX_BATCH)
            for described in self._preparer.batches(run, hashers, batches, describe=False):
                if self._cancel.is_set():
                    break
                twins: list[tuple[Prepared, Path]] = []
                prepared = list(run.firsts(described, twins))
                for twin, first in twins:
                    run.finish(
                        replace(
                            _result(twin, DUPLICATE),
                            reason=f"same content as {first.name}",
                            copy_of=first,
                        )
                    )
                known = mirror.known([p.hash.sha256 for p in prepared])
                ask = [p.hash.sha256 for p in prepared if p.hash.sha256 not in known]
                answer = lookups.submit(e.call, mirror.ask, ask) if ask else None
                asked.append((prepared, known, answer))
                while len(asked) > LOOKUPS_IN_FLIGHT:
                    self._answer_dry_run(run, *asked.popleft())
            while asked:
                self._answer_dry_run(run, *asked.popleft())
        if not self._cancel.is_set():
            mirror.finish()
        return run.summary(never_reached="stopped before it was looked at")

    def _answer_dry_run(
        self,
        run: Run,
        prepared: list[Prepared],
        known: dict[str, Lookup],
        answer: Future[dict[str, Any]] | None,
    ) -> None:
        try:
            known = known | (answer.result() if answer is not None else {})
        except MobileBackupError as exc:
            for p in prepared:
                if p.hash.sha256 in known:
                    self._answer_one(run, p, known[p.hash.sha256])
                else:
                    run.finish(self._engine.failed(p, exc))
            return
        for p in prepared:
            self._answer_one(run, p, known.get(p.hash.sha256))

    @staticmethod
    def _answer_one(run: Run, p: Prepared, found: Lookup | None) -> None:
        if found is not None and found.backed_up:
            where = "on the PC" if found.on_pc else "in the cloud, not on a PC yet"
            run.finish(_result(p, DUPLICATE, reason=f"already backed up, {where}"))
        else:
            run.finish(_result(p, WOULD_UPLOAD))

    # Small files ---------------------------------------------------------------------
    def _send_batch(self, batch: list[Prepared], inflight: _InFlight) -> list[Future[FileResult]]:
        e = self._engine
        try:
            tickets = e.call(e.api.request_uploads, [p.request for p in batch])
        except MobileBackupError as exc:
            return [_done_future(e.finish(e.failed(p, exc))) for p in batch]
        received = time.monotonic()
        crash_point("client.presigned")
        e.journal.mark_presigned(
            (p.hash.sha256, p.path, p.size)
            for p, t in zip(batch, tickets, strict=True)
            if t.status != DUPLICATE
        )
        futures: list[Future[FileResult]] = []
        for p, ticket in zip(batch, tickets, strict=True):
            if ticket.status == DUPLICATE:
                e.journal.mark_done(p.hash.sha256, path=p.path, size=p.size)
                futures.append(_done_future(e.finish(_result(p, DUPLICATE))))
            else:
                inflight.add(1)
                futures.append(e.pool().submit(self._put_single, p, ticket, received, inflight))
        return futures

    def _put_single(
        self, p: Prepared, ticket: UploadTicket, received: float, inflight: _InFlight
    ) -> FileResult:
        e = self._engine
        try:
            result = self._put_single_replanning(p, ticket, received)
        except (MobileBackupError, OSError) as exc:
            result = e.failed(p, exc)
        finally:
            inflight.done()
        return e.finish(result)

    def _put_single_replanning(
        self, p: Prepared, ticket: UploadTicket, received: float
    ) -> FileResult:
        e = self._engine
        current: UploadTicket | None = ticket
        for replan in range(MAX_REPLANS + 1):
            if current is None or (
                current.upload is not None
                and time.monotonic() >= fresh_until(current.upload.url, received=received)
            ):
                (current,) = e.call(e.api.request_uploads, [p.request])
                received = time.monotonic()
                if current.status == DUPLICATE:
                    e.journal.mark_done(p.hash.sha256, path=p.path, size=p.size)
                    return _result(p, DUPLICATE)
            try:
                e.call(self._put_once, p, current)
            except UrlRejectedError:
                if replan == MAX_REPLANS:
                    raise
                log.info("%s: upload URL refused, asking for a new one", p.path.name)
                current = None
                continue
            crash_point("client.put")
            e.journal.mark_done(p.hash.sha256, path=p.path, size=p.size)
            crash_point("client.done")
            return _result(p, UPLOADED, bytes_sent=p.size)
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_once(self, p: Prepared, ticket: UploadTicket) -> None:
        e = self._engine
        if e.cancel.is_set():
            raise CancelledError("stopped")
        upload = ticket.upload
        if upload is None:
            raise UploadError("the API returned no upload URL")
        body = RangeBody(
            p.path,
            offset=0,
            length=p.size,
            stamp=p.hash.stamp,
            on_chunk=lambda n: e.progress(p.path, n),
        )
        try:
            put_range(e.http, url=upload.url, headers=upload.headers, body=body)
        except BaseException:
            e.progress(p.path, -body.sent)  # a retried attempt starts from byte 0 again
            raise


def _ramped(paths: list[Path]) -> Iterator[list[Path]]:
    """`paths` in presign batches: `FIRST_BATCH` files, then each batch twice the one
    before, up to `MAX_BATCH`. A batch is presigned while the one before is sent; the API
    answers in time proportional to a batch's size, so a batch twice as big is ready
    before the link runs dry (a jump from 10 to 100 left it idle for most of a second)."""
    start, size = 0, FIRST_BATCH
    while start < len(paths):
        yield paths[start : start + size]
        start, size = start + size, min(MAX_BATCH, 2 * size)


def _result(
    p: Prepared, status: str, *, bytes_sent: int = 0, reason: str | None = None
) -> FileResult:
    return FileResult(
        p.path,
        status,
        p.size,
        p.hash.sha256,
        reason=reason,
        seconds=time.monotonic() - p.queued_at,
        bytes_sent=bytes_sent,
    )


def _twin_result(twin: Prepared, first: Path, outcome: FileResult | None) -> FileResult:
    """A file with the same bytes as `first`, sent once as `first`: it shares its fate."""
    same = f"same content as {first.name}"
    if outcome is None or outcome.status == CANCELLED:
        status, reason = CANCELLED, f"{same}, which was not sent yet"
    elif outcome.status == FAILED:
        status, reason = FAILED, f"{same}, which failed: {outcome.reason}"
    else:
        status, reason = DUPLICATE, same
    return replace(_result(twin, status), reason=reason, copy_of=first)


def _done_future(result: FileResult) -> Future[FileResult]:
    future: Future[FileResult] = Future()
    future.set_result(result)
    return future
