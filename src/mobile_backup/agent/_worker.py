"""The agent: take download messages, fetch, verify, place, write the receipt, acknowledge.

A message is deleted only after its file is placed, fsynced and verified and the receipt is
in the ledger; anything short of that leaves the message on the queue, to come back (after a
backoff set through its visibility) and, after the queue's `maxReceiveCount`, to land in the
dead-letter queue. Redelivery is harmless: the state file maps each user's content hash to
the file placed for it, so the same content is never written twice.

`run` is the service loop: one receiver long-polls in batches of up to ten (two more
receive without waiting while batches keep coming), a pool of workers downloads, verifies
and places files, receipt threads then write each placed file's receipt (so the next
download does not wait for the ledger), a heartbeat thread keeps in-flight messages
invisible and an acknowledger deletes finished ones in batches. Disk full or permission
denied pauses the loop (messages are put back, not failed); stopping releases work that
has not started and gives work in flight a grace period before interrupting it
(resumable, released); every file already placed gets its receipt before `run` returns.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import shutil
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mobile_backup.agent._capture import media_capture_time
from mobile_backup.agent._lock import LOCK_FILE, LibraryLock
from mobile_backup.agent._paths import ensure_inside
from mobile_backup.agent._placement import STAGING_DIR, Library, Placement
from mobile_backup.agent._queue import Acknowledger, VisibilityKeeper, change_visibility, release
from mobile_backup.agent._state import STATE_FILE, PlacedFile, StateDB
from mobile_backup.agent._template import DEFAULT_TEMPLATE, PathTemplate
from mobile_backup.agent._transfer import OBJECT_MISSING, Downloader, TransferConfig
from mobile_backup.agent.exceptions import (
    Cancelled,
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    MalformedMessageError,
    UnsafePathError,
)
from mobile_backup.core import (
    ConfigError,
    DownloadMessage,
    FileStatus,
    Ledger,
    MobileBackupError,
    Receipt,
    ServiceError,
    Settings,
    crash_point,
    dynamodb_client,
    s3_client,
    sha256_file,
    sqs_client,
    utcnow,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

MAX_BATCH = 10
# A long poll cannot be interrupted, so this bounds how long a stop waits for it; at 5 s an
# idle agent makes ~0.5 M receives a month, inside SQS's free tier.
DEFAULT_WAIT_SECONDS = 5
ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)
# The lifecycle rule expires objects carrying this tag (infra/template.yaml).
DOWNLOADED_TAG = ("state", "downloaded")
CORRUPT_TAG = ("state", "corrupt")  # the template's lifecycle rule expires these
HIDDEN_DIR = PurePosixPath(STAGING_DIR.parts[0])
# Errors that mean "this disk or folder will not take the file now": wait, do not fail it.
_BLOCKING_ERRNOS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "read_only",
}
_ALIVE_EVERY = 5.0


class OutcomeKind(enum.StrEnum):
    """What became of one message (or one reconciled ledger entry)."""

    PLACED = "placed"
    """A new file is in the library; receipt written."""
    ALREADY_PLACED = "already_placed"
    """The same content was already there (redelivery); receipt written."""
    STALE = "stale"
    """The object is gone and the ledger already has a receipt: an old duplicate."""
    FAILED = "failed"
    """The object is missing or its bytes are wrong; the ledger says why."""
    MALFORMED = "malformed"
    """Not a download message; left for the dead-letter queue."""
    ERROR = "error"
    """Something transient (network, ledger); the message will come back."""
    BLOCKED = "blocked"
    """The library refused the file (disk full, permission denied): paused, put back."""
    RELEASED = "released"
    """The agent is stopping; the message was put back for later."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of processing one message or ledger entry."""

    kind: OutcomeKind
    message_id: str
    acknowledged: bool = False
    """True when the message was deleted from the queue (or queued for a batch delete)."""
    placement: Placement | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """How the agent works; every field has a sensible default."""

    workers: int = 8
    """Messages processed at the same time."""
    prefetch: int = MAX_BATCH
    """Messages received ahead of free workers (released at once on stop)."""
    receivers: int = 3
    """Receive calls in flight while messages keep coming (one long poll when idle)."""
    transfer: TransferConfig = field(default_factory=TransferConfig)
    path_template: PathTemplate = field(default_factory=PathTemplate.parse)
    delete_after_download: bool = False
    """Delete the cloud copy once the receipt is written (instead of tagging it)."""
    shutdown_grace: float = 10.0
    """Seconds work in flight may take to finish after a stop before it is interrupted."""
    retry_backoff: tuple[int, ...] = (10, 30, 60, 120, 300)
    """Visibility (s) before the n-th retry of a failed message, capped by the queue's."""
    pause_backoff: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
    """Pauses (s) after consecutive disk-full / permission-denied failures."""
    reconcile_interval: float | None = None
    """Seconds between reconcile passes inside `run` (None: only on demand)."""

    def __post_init__(self) -> None:
        if self.workers < 1 or self.prefetch < 0 or self.receivers < 1:
            raise ConfigError(
                "the agent needs at least one worker and one receiver, and a non-negative prefetch"
            )


class Agent:
    """Consume the downloads queue into a library folder.

    Args:
        settings: supplies `downloads_queue_url` and, when set, the one `bucket` to read.
        s3: reads objects (and tags or deletes them once received). Any S3 endpoint.
        sqs: receives, extends and deletes download messages.
        ledger: where receipts and failures are recorded.
        library: the library root folder, or a `Library` (to inject its filesystem seams).
        host: this machine's name, recorded in receipts.
        clock: returns the current time (timezone-aware, UTC).
        wait_seconds: the long-poll wait used by `run`.
        config: workers, transfer sizes, path template, retention, backoffs.
        state: the state file (default: `{library}/.mobile-backup/agent.sqlite3`).
        on_outcome: told how each message ended (from worker threads), e.g. to show it.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        s3: S3Client,
        sqs: SQSClient,
        ledger: Ledger,
        library: Path | Library,
        host: str,
        clock: Callable[[], datetime] = utcnow,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        config: AgentConfig | None = None,
        state: StateDB | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._on_outcome = on_outcome
        self._queue_url = settings.require("downloads_queue_url")
        self._bucket = settings.bucket
        self._s3 = s3
        self._sqs = sqs
        self._ledger = ledger
        self._library = library if isinstance(library, Library) else Library(library)
        self._host = host
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._config = config or AgentConfig()
        hidden = self._library.root / HIDDEN_DIR
        self._state = state or StateDB(hidden / STATE_FILE)
        self._lock = LibraryLock(hidden / LOCK_FILE)
        self._owner = False
        self._downloader = Downloader(
            s3, library=self._library, state=self._state, config=self._config.transfer
        )
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._visibility_timeout = 300
        self._key_locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        self._key_locks_guard = threading.Lock()
        self._pause_lock = threading.Lock()
        self._paused_until = 0.0
        self._blocked_streak = 0
        self._keeper: VisibilityKeeper | None = None
        self._alive_at = 0.0
        self._count_lock = threading.Lock()
        self.receipts_written = 0
        """Receipts written to the ledger since start (benchmarks wait for these)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        library: Path | None = None,
        host: str | None = None,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        config: AgentConfig | None = None,
        s3: S3Client | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Agent:
        """An agent with clients built from `settings`; `library` defaults to the setting.

        The path template and retention come from the settings unless `config` is given.
        """
        root = library or settings.library
        if root is None:
            raise ConfigError(
                f"no library folder configured for profile {settings.profile!r} "
                "(set MOBILE_BACKUP_LIBRARY or pass one)"
            )
        if config is None:
            config = config_from_settings(settings)
        return cls(
            settings=settings,
            s3=s3 or s3_client(settings),
            sqs=sqs_client(settings),
            ledger=Ledger(dynamodb_client(settings), settings.require("table")),
            library=root.expanduser(),
            host=host or socket.gethostname() or "pc",
            wait_seconds=wait_seconds,
            config=config,
            on_outcome=on_outcome,
        )

    # Properties ------------------------------------------------------------------------
    @property
    def library(self) -> Library:
        return self._library

    @property
    def state(self) -> StateDB:
        return self._state

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def downloader(self) -> Downloader:
        return self._downloader

    @property
    def host(self) -> str:
        return self._host

    @property
    def bucket(self) -> str | None:
        return self._bucket

    @property
    def s3(self) -> S3Client:
        return self._s3

    @property
    def sqs(self) -> SQSClient:
        return self._sqs

    @property
    def queue_url(self) -> str:
        return self._queue_url

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def owner(self) -> bool:
        """True when this process owns the library (cleans staging, resumes downloads)."""
        return self._owner

    def prepare(self) -> None:
        """Take the library (or be a guest), clean staging leftovers, learn the queue's
        visibility timeout; done once, before the first file."""
        with self._prepare_lock:
            if self._prepared:
                return
            self._owner = self._lock.acquire()
            if self._owner:
                self._library.prepare(keep=self._state.resumable())
            else:
                logger.info("another agent owns %s; working as a guest", self._library.root)
                self._library.staging.mkdir(parents=True, exist_ok=True)
            self._visibility_timeout = self._queue_visibility_timeout()
            self._prepared = True

    def close(self) -> None:
        """Release the library and the transfer threads."""
        self._downloader.close()
        self._lock.release()
        with self._prepare_lock:
            self._prepared = False

    # The service loop ------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, then release or finish what is in flight.

        Errors are logged and retried with a backoff; nothing here raises on a bad file.
        """
        self.prepare()
        cfg = self._config
        self._state.set_values(pid=os.getpid(), host=self._host, started_at=self._clock())
        logger.info(
            "agent on %s filing into %s (%d workers, template %s)",
            self._host,
            self._library.root,
            cfg.workers,
            cfg.path_template,
        )
        background = threading.Event()
        keeper = VisibilityKeeper(self._sqs, self._queue_url, timeout=self._visibility_timeout)
        acker = Acknowledger(self._sqs, self._queue_url)
        self._keeper = keeper
        helpers = [
            threading.Thread(target=keeper.run, args=(background,), name="heartbeat", daemon=True),
            threading.Thread(target=acker.run, args=(background,), name="acks", daemon=True),
        ]
        if cfg.reconcile_interval:
            helpers.append(
                threading.Thread(
                    target=self._reconcile_loop,
                    args=(stop, cfg.reconcile_interval),
                    name="reconcile",
                    daemon=True,
                )
            )
        for t in helpers:
            t.start()
        pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="worker")
        slots = threading.BoundedSemaphore(cfg.workers + cfg.prefetch)
        unstarted: dict[str, MessageTypeDef] = {}
        unstarted_lock = threading.Lock()
        in_flight: set[str] = set()
        idle = threading.Condition(unstarted_lock)
        cancel = threading.Event()

        # Receipts (a ledger write, a tag, then the acknowledgement) run on their own
        # threads so a worker goes on to the next download as soon as its file is placed;
        # at most `receipt_slots` wait, which holds the workers back when the ledger lags.
        finisher = ThreadPoolExecutor(cfg.workers, thread_name_prefix="receipt")
        receipt_slots = threading.BoundedSemaphore(2 * cfg.workers)

        def finish(mid: str, step: Callable[[], Outcome]) -> None:
            try:
                step()
            except Exception:
                logger.exception("unexpected error finishing message %s", mid)
            finally:
                keeper.untrack(mid)  # tracked (kept invisible) until acknowledged
                receipt_slots.release()

        def work(msg: MessageTypeDef) -> None:
            mid = msg.get("MessageId", "?")
            deferred = False

            def defer(step: Callable[[], Outcome]) -> None:
                nonlocal deferred
                receipt_slots.acquire()
                try:
                    finisher.submit(finish, mid, step)
                except BaseException:
                    receipt_slots.release()
                    raise
                deferred = True

            try:
                with unstarted_lock:
                    if stop.is_set() or mid not in unstarted:
                        return  # stopping: left for (or already given) release, not started
                    del unstarted[mid]
                    in_flight.add(mid)
                self._handle(msg, cancel=cancel, ack=acker.ack, defer=defer)
            except Exception:  # one bad message must never stop the others
                logger.exception("unexpected error on message %s", mid)
            finally:
                if not deferred:
                    keeper.untrack(mid)
                with unstarted_lock:
                    in_flight.discard(mid)
                    idle.notify_all()
                slots.release()

        # One receiver long-polls; while batches keep coming (`busy`), the others receive
        # too (without waiting), so workers are not starved by one receive's round trip
        # and an idle agent still makes one long poll at a time.
        busy = threading.Event()
        receiving = threading.Event()
        receiving.set()

        def receive_loop(primary: bool) -> None:
            errors = 0
            while receiving.is_set() and not stop.is_set():
                if primary:
                    self._beat_alive()
                elif not busy.wait(0.5):
                    continue
                elif self._probing():
                    stop.wait(0.5)  # one receiver probes a paused library, not three
                    continue
                if self._wait_out_pause(stop):
                    continue
                if not slots.acquire(timeout=0.5):
                    continue
                free = 1
                while free < MAX_BATCH and slots.acquire(blocking=False):
                    free += 1
                if self._probing():
                    # After a pause, one message tells whether the disk takes files again.
                    for _ in range(free - 1):
                        slots.release()
                    free = 1
                try:
                    messages = self._receive(free, self._wait_seconds if primary else 0)
                except ServiceError as exc:
                    for _ in range(free):
                        slots.release()
                    busy.clear()
                    delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                    errors += 1
                    logger.error("%s; retrying in %.0f s", exc, delay)
                    self._state.record_error(code=exc.code, message=str(exc), at=self._clock())
                    if primary:  # the others wait for it to succeed again (`busy`)
                        stop.wait(delay)
                    continue
                errors = 0
                if messages:
                    busy.set()
                else:
                    busy.clear()
                for _ in range(free - len(messages)):
                    slots.release()
                for msg in messages:
                    mid = msg.get("MessageId", "?")
                    keeper.track(mid, msg.get("ReceiptHandle", ""))
                    with unstarted_lock:
                        unstarted[mid] = msg
                    pool.submit(work, msg)

        extra = [
            threading.Thread(target=receive_loop, args=(False,), name=f"receive-{i}", daemon=True)
            for i in range(1, cfg.receivers)
        ]
        try:
            for t in extra:
                t.start()
            receive_loop(True)
        finally:
            receiving.clear()
            busy.set()  # wake the extra receivers so they see that receiving is over
            for t in extra:
                if t.is_alive():
                    t.join()
            self._shut_down(pool, unstarted, unstarted_lock, in_flight, idle, cancel)
            finisher.shutdown(wait=True)  # every placed file gets its receipt before we go
            acker.flush()
            background.set()
            for t in helpers:
                t.join(timeout=5)
            self._keeper = None
            self._state.set_values(pid=None, alive_at=None)
            logger.info("agent stopped")

    def _shut_down(
        self,
        pool: ThreadPoolExecutor,
        unstarted: dict[str, MessageTypeDef],
        lock: threading.Lock,
        in_flight: set[str],
        idle: threading.Condition,
        cancel: threading.Event,
    ) -> None:
        with lock:
            waiting = [(mid, m.get("ReceiptHandle", "")) for mid, m in unstarted.items()]
            unstarted.clear()
        if waiting:
            released = release(self._sqs, self._queue_url, waiting)
            logger.info("stopping: released %d message(s) not yet started", released)
        deadline = time.monotonic() + self._config.shutdown_grace
        with idle:
            while in_flight and time.monotonic() < deadline:
                idle.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if in_flight:
                logger.info("stopping: interrupting %d download(s) in flight", len(in_flight))
                cancel.set()
        pool.shutdown(wait=True)

    def _reconcile_loop(self, stop: threading.Event, interval: float) -> None:
        from mobile_backup.agent._reconcile import Reconciler

        while not stop.is_set():
            try:
                report = Reconciler(self).fetch_awaiting(cancel=stop)
                logger.info("reconcile: %s", report.summary())
            except MobileBackupError as exc:
                logger.warning("reconcile pass failed: %s", exc)
            stop.wait(interval)

    def _beat_alive(self) -> None:
        now = time.monotonic()
        if now - self._alive_at >= _ALIVE_EVERY:
            self._alive_at = now
            try:
                self._state.set_values(alive_at=self._clock())
            except MobileBackupError as exc:
                logger.warning("could not update the state file: %s", exc)

    # One batch, synchronously (tests, the local demo) ------------------------------------
    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive up to 10 messages, process them concurrently, delete the finished ones
        in one batch; returns how many were received."""
        self.prepare()
        messages = self._receive(MAX_BATCH, wait_seconds)
        if not messages:
            return 0
        acker = Acknowledger(self._sqs, self._queue_url)
        workers = min(self._config.workers, len(messages))
        with ThreadPoolExecutor(workers, thread_name_prefix="worker") as pool:
            for future in [pool.submit(self._handle, m, ack=acker.ack) for m in messages]:
                try:
                    future.result()
                except Exception:
                    logger.exception("unexpected error while processing a message")
        acker.flush()
        return len(messages)

    def process_message(self, msg: MessageTypeDef) -> Outcome:
        """Download, verify and place one message's file; delete the message when done."""
        self.prepare()
        return self._handle(msg, ack=None)

    # One message -----------------------------------------------------------------------
    def _handle(
        self,
        msg: MessageTypeDef,
        *,
        cancel: threading.Event | None = None,
        ack: Callable[[str, str], None] | None,
        defer: Callable[[Callable[[], Outcome]], None] | None = None,
    ) -> Outcome:
        """Process one message. With `defer`, the receipt and acknowledgement of a placed
        file are handed to it (to run on another thread) so this one can take the next
        download; they are created only after the file is fsynced, verified and placed."""
        message_id = msg.get("MessageId", "?")
        handle = msg.get("ReceiptHandle", "")
        attempt = int(msg.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            message = self._parse(msg.get("Body", ""))
        except MalformedMessageError as exc:
            logger.error(
                "message %s is not a download message (left for the DLQ): %s", message_id, exc
            )
            self._retry_later(message_id, handle, attempt)
            return self._told(Outcome(OutcomeKind.MALFORMED, message_id, detail=str(exc)))
        item = message
        self.prepare()
        placed = self._deliver_file(item, message_id=message_id, cancel=cancel)
        if isinstance(placed, Outcome):
            return self._settle(placed, handle, attempt, ack)
        placement = placed

        def finish() -> Outcome:
            outcome = self._receipt(item, message_id=message_id, placement=placement)
            return self._settle(outcome, handle, attempt, ack)

        if defer is None:
            return finish()
        defer(finish)
        kind = OutcomeKind.ALREADY_PLACED if placement.already_present else OutcomeKind.PLACED
        return Outcome(kind, message_id, placement=placement, detail="receipt pending")

    def _settle(
        self,
        outcome: Outcome,
        handle: str,
        attempt: int,
        ack: Callable[[str, str], None] | None,
    ) -> Outcome:
        """Acknowledge a delivered message, or put back / back off one that was not."""
        message_id = outcome.message_id
        if outcome.kind in (OutcomeKind.PLACED, OutcomeKind.ALREADY_PLACED, OutcomeKind.STALE):
            acknowledged = self._acknowledge(message_id, handle, ack)
            return self._told(
                Outcome(
                    outcome.kind,
                    message_id,
                    acknowledged=acknowledged,
                    placement=outcome.placement,
                    detail=outcome.detail,
                )
            )
        if outcome.kind == OutcomeKind.RELEASED:
            release(self._sqs, self._queue_url, [(message_id, handle)])
        elif outcome.kind == OutcomeKind.BLOCKED:
            change_visibility(
                self._sqs, self._queue_url, [(message_id, handle)], int(self._pause_for())
            )
        else:
            self._retry_later(message_id, handle, attempt)
        return self._told(outcome)

    def _told(self, outcome: Outcome) -> Outcome:
        """Pass a message's final outcome to `on_outcome` (its failure never stops us)."""
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:
                logger.exception("on_outcome failed for message %s", outcome.message_id)
        return outcome

    def deliver(
        self,
        item: DownloadMessage,
        *,
        message_id: str = "-",
        cancel: threading.Event | None = None,
    ) -> Outcome:
        """Bring one file into the library and write its receipt; never raises for a bad
        file, a bad object or a full disk: the outcome says what happened."""
        self.prepare()
        placed = self._deliver_file(item, message_id=message_id, cancel=cancel)
        if isinstance(placed, Outcome):
            return placed
        return self._receipt(item, message_id=message_id, placement=placed)

    def _deliver_file(
        self, item: DownloadMessage, *, message_id: str, cancel: threading.Event | None
    ) -> Placement | Outcome:
        """The placement (file fsynced, verified, in place), or the outcome saying why not."""
        try:
            return self._place(item, cancel)
        except Cancelled as exc:
            return Outcome(OutcomeKind.RELEASED, message_id, detail=str(exc))
        except DownloadIntegrityError as exc:
            if isinstance(exc, ContentMismatchError):
                self._tag(item, CORRUPT_TAG)  # proven garbage: expired by a lifecycle rule
            return self._fail(message_id, item, f"integrity: {exc}")
        except DownloadError as exc:
            if exc.code == OBJECT_MISSING:
                return self._missing(message_id, item, exc)
            return self._transient(message_id, item, exc)
        except OSError as exc:
            reason = _BLOCKING_ERRNOS.get(exc.errno or 0)
            if reason is not None:
                return self._blocked(message_id, item, reason, exc)
            return self._transient(message_id, item, exc)
        except MobileBackupError as exc:
            return self._transient(message_id, item, exc)

    def _receipt(self, item: DownloadMessage, *, message_id: str, placement: Placement) -> Outcome:
        """Write the receipt of a placed file (then tag or delete the cloud copy)."""
        kind = OutcomeKind.ALREADY_PLACED if placement.already_present else OutcomeKind.PLACED
        receipt = Receipt(
            host=self._host,
            path=placement.relative.as_posix(),
            sha256=item.sha256,
            at=self._clock(),
        )
        try:
            self._ledger.mark_downloaded(item.user_sub, item.sha256, receipt)
        except ServiceError as exc:
            # The file is safely placed; the redelivered message will find it and retry this.
            logger.warning("placed %s but could not write its receipt: %s", placement.path, exc)
            return Outcome(OutcomeKind.ERROR, message_id, placement=placement, detail=str(exc))
        crash_point("agent.receipt")
        with self._count_lock:
            self.receipts_written += 1
        self._after_receipt(item)
        crash_point("agent.tagged")
        self._unblocked()
        logger.info("%s %s → %s", kind, item.key, placement.relative)
        return Outcome(kind, message_id, placement=placement)

    # Steps -----------------------------------------------------------------------------
    def _parse(self, body: str) -> DownloadMessage:
        # The message validates its own shape, hash, user and key (core DownloadMessage);
        # the bucket must also be ours, so a stray message cannot make us read anything else.
        try:
            message = DownloadMessage.from_json(body)
        except ValidationError as exc:
            raise MalformedMessageError(_first_error(exc)) from exc
        if self._bucket and message.bucket != self._bucket:
            raise MalformedMessageError(f"bucket {message.bucket!r} is not {self._bucket!r}")
        return message

    def _place(self, item: DownloadMessage, cancel: threading.Event | None) -> Placement:
        """The file in place: found already there, or downloaded, verified and placed."""
        with self._key_lock(item.user_sub, item.sha256):
            known = self._state.placed(item.user_sub, item.sha256)
            if known is not None:
                found = self._intact(known, sha256=item.sha256, size=item.size)
                if found is not None:
                    return found  # a redelivery: no need to pay for the download again
                logger.warning(
                    "%s was placed at %s but is missing or altered there; fetching it again",
                    item.key,
                    known.path,
                )
            template = self._config.path_template
            if item.taken_at is not None:
                guess = template.render(
                    user_sub=item.user_sub,
                    when=item.taken_at,
                    filename=item.filename,
                    sha256=item.sha256,
                )
                existing = self._library.find(guess, sha256=item.sha256, size=item.size)
                if existing is not None and known is None:
                    self._remember(item, existing)
                    return existing  # placed before the state file knew (e.g. a new file)
            name = self._staging_name(item)
            staged = self._downloader.fetch(
                bucket=item.bucket,
                key=item.key,
                sha256=item.sha256,
                size=item.size,
                name=name,
                cancel=cancel,
            )
            try:
                when = (
                    item.taken_at
                    or media_capture_time(staged, content_type=item.content_type)
                    or item.uploaded_at
                )
                relative = template.render(
                    user_sub=item.user_sub, when=when, filename=item.filename, sha256=item.sha256
                )
                placement = self._library.place(
                    staged, relative, sha256=item.sha256, size=item.size
                )
            finally:
                staged.unlink(missing_ok=True)
                if self._owner and item.size >= self._config.transfer.threshold:
                    self._state.end_download(name)
            self._remember(item, placement)
            crash_point("agent.remembered")
            return placement

    def _staging_name(self, item: DownloadMessage) -> str:
        if self._owner:
            # Stable per user and content, so a restarted owner resumes the same file.
            return f"{item.sha256}-{item.user_sub}.part"
        return f"guest-{uuid.uuid4().hex}.part"

    def _remember(self, item: DownloadMessage, placement: Placement) -> None:
        st = placement.path.lstat()
        self._state.record_placed(
            user_sub=item.user_sub,
            sha256=item.sha256,
            path=placement.relative,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            at=self._clock(),
            new_file=not placement.already_present,
        )

    def _intact(self, known: PlacedFile, *, sha256: str, size: int) -> Placement | None:
        """The placement recorded in `known` if the file there still holds this content.

        Size and modification time unchanged is taken as unchanged (hashing every
        redelivered video would cost a full read); a touched file is hashed.
        """
        try:
            path = ensure_inside(self._library.root, known.path)
            st = path.lstat()
        except (OSError, UnsafePathError):
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        if st.st_mtime_ns != known.mtime_ns and sha256_file(path) != sha256:
            return None
        return Placement(path=path, relative=known.path, already_present=True)

    def _after_receipt(self, item: DownloadMessage) -> None:
        """Tag the cloud copy for expiry (or delete it); best effort, untagged is safe."""
        if not self._config.delete_after_download:
            self._tag(item, DOWNLOADED_TAG)
            return
        try:
            self._s3.delete_object(Bucket=item.bucket, Key=item.key)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not delete %s after its receipt: %s", item.key, exc)

    def _tag(self, item: DownloadMessage, tag: tuple[str, str]) -> None:
        """Tag the cloud copy (`state=downloaded|corrupt`, which lifecycle rules expire);
        best effort: an untagged object is only kept longer, never lost."""
        try:
            self._s3.put_object_tagging(
                Bucket=item.bucket,
                Key=item.key,
                Tagging={"TagSet": [{"Key": tag[0], "Value": tag[1]}]},
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not tag %s as %s=%s: %s", item.key, *tag, exc)

    def _fail(self, message_id: str, item: DownloadMessage, reason: str) -> Outcome:
        logger.error("%s cannot be delivered (kept for retry/DLQ): %s", item.key, reason)
        self._note_error("delivery_failed", f"{item.key}: {reason}")
        try:
            self._ledger.mark_failed(item.user_sub, item.sha256, reason=reason, now=self._clock())
        except ServiceError as exc:
            logger.warning("could not record the failure of %s: %s", item.key, exc)
        return Outcome(OutcomeKind.FAILED, message_id, detail=reason)

    def _missing(self, message_id: str, item: DownloadMessage, exc: DownloadError) -> Outcome:
        # An object that is gone after a receipt (e.g. expired by lifecycle) means this is
        # an old duplicate of a delivered message: acknowledge it instead of failing.
        try:
            record = self._ledger.get(item.user_sub, item.sha256)
        except ServiceError as lookup:
            logger.warning("could not check the ledger for %s: %s", item.key, lookup)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(lookup))
        if record is not None and record.status == FileStatus.DOWNLOADED:
            logger.info("%s was already delivered; dropping a stale message", item.key)
            return Outcome(OutcomeKind.STALE, message_id)
        return self._fail(message_id, item, str(exc))

    def _transient(self, message_id: str, item: DownloadMessage, exc: Exception) -> Outcome:
        logger.warning("could not deliver %s (will retry): %s", item.key, exc)
        code = exc.code if isinstance(exc, MobileBackupError) else type(exc).__name__
        self._note_error(code, f"{item.key}: {exc}")
        return Outcome(OutcomeKind.ERROR, message_id, detail=str(exc))

    def _blocked(
        self, message_id: str, item: DownloadMessage, reason: str, exc: OSError
    ) -> Outcome:
        with self._pause_lock:
            delay = self._config.pause_backoff[
                min(self._blocked_streak, len(self._config.pause_backoff) - 1)
            ]
            self._blocked_streak += 1
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
        free = _disk_free(self._library.root)
        message = (
            f"{reason.replace('_', ' ')} in {self._library.root} "
            f"({exc.strerror or exc}; {free} bytes free); pausing {delay:.0f} s, nothing is lost"
        )
        logger.error("cannot write %s: %s", item.key, message)
        try:
            self._state.record_error(code=reason, message=message, at=self._clock())
            self._state.set_values(
                paused_until=self._clock() + timedelta(seconds=delay), pause_reason=reason
            )
        except MobileBackupError as state_exc:
            logger.warning("could not update the state file: %s", state_exc)
        return Outcome(OutcomeKind.BLOCKED, message_id, detail=message)

    def _unblocked(self) -> None:
        with self._pause_lock:
            was_blocked = self._blocked_streak > 0
            self._blocked_streak = 0
            self._paused_until = 0.0
        if was_blocked:
            logger.info("the library takes files again; resuming")
            try:
                self._state.set_values(paused_until=None, pause_reason=None)
            except MobileBackupError as exc:
                logger.warning("could not update the state file: %s", exc)

    def _pause_for(self) -> float:
        with self._pause_lock:
            return max(1.0, self._paused_until - time.monotonic())

    def _probing(self) -> bool:
        with self._pause_lock:
            return self._blocked_streak > 0

    def _wait_out_pause(self, stop: threading.Event) -> bool:
        """Sleep through a pause; True if one was waited out."""
        with self._pause_lock:
            remaining = self._paused_until - time.monotonic()
        if remaining <= 0:
            return False
        stop.wait(min(remaining, 1.0))
        return True

    def _note_error(self, code: str, message: str) -> None:
        try:
            self._state.record_error(code=code, message=message, at=self._clock())
        except MobileBackupError as exc:
            logger.warning("could not update the state file: %s", exc)

    # Queue -----------------------------------------------------------------------------
    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        try:
            resp = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=max(1, min(count, MAX_BATCH)),
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceError(f"could not receive from the downloads queue: {exc}") from exc
        messages = resp.get("Messages", [])
        if messages:
            crash_point("agent.received")
        keeper = self._keeper
        if keeper is not None:
            for msg in messages:
                keeper.track(msg.get("MessageId", "?"), msg.get("ReceiptHandle", ""))
        return messages

    def _acknowledge(
        self, message_id: str, handle: str, ack: Callable[[str, str], None] | None
    ) -> bool:
        if ack is not None:
            ack(message_id, handle)
            return True
        try:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=handle)
        except (BotoCoreError, ClientError) as exc:
            # Harmless: the message comes back and finds the file already placed.
            logger.warning("could not delete message %s: %s", message_id, exc)
            return False
        return True

    def _retry_later(self, message_id: str, handle: str, attempt: int) -> None:
        """Back off before the next try, never longer than the queue's own timeout."""
        backoff = self._config.retry_backoff
        delay = min(backoff[min(attempt, len(backoff)) - 1], self._visibility_timeout)
        if delay != self._visibility_timeout:
            change_visibility(self._sqs, self._queue_url, [(message_id, handle)], delay)

    def _queue_visibility_timeout(self) -> int:
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["VisibilityTimeout"]
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not read the queue's visibility timeout: %s", exc)
            return 300
        return int(attrs.get("Attributes", {}).get("VisibilityTimeout", "300"))

    @contextmanager
    def _key_lock(self, user_sub: str, sha256: str) -> Iterator[None]:
        """One worker at a time per (user, content): three copies of one message in one
        batch must not download three times or race for the name."""
        key = (user_sub, sha256)
        with self._key_locks_guard:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._key_locks_guard:
                lock, users = self._key_locks[key]
                if users <= 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)


def config_from_settings(settings: Settings, **overrides: object) -> AgentConfig:
    """The agent's config from the profile (path template validated here, at load)."""
    values: dict[str, object] = {
        "path_template": PathTemplate.parse(settings.path_template or DEFAULT_TEMPLATE),
        "delete_after_download": settings.delete_after_download,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AgentConfig(**values)  # type: ignore[arg-type]


def _disk_free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg')}"
