"""The agent's service loop: receivers, workers, receipt threads, heartbeats, acks, stop.

One receiver long-polls in batches of up to ten (the others receive without waiting while
batches keep coming), a pool of workers downloads, verifies and places files, receipt
threads then write each placed file's receipt (so the next download does not wait for the
ledger), a heartbeat thread keeps in-flight messages invisible and an acknowledger deletes
finished ones in batches. A full disk pauses receiving (the `PauseGate`). Stopping releases
work not yet started and gives work in flight a grace period before interrupting it
(resumable, released); every file already placed gets its receipt before `run` returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from mobile_backup.agent._config import AgentConfig
from mobile_backup.agent._deliver import Delivery
from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._outcome import Outcome
from mobile_backup.agent._queue import Acknowledger, DownloadsQueue, VisibilityKeeper
from mobile_backup.agent._reconcile import Reconciler
from mobile_backup.agent._state import StateDB
from mobile_backup.core import SQS_BATCH, MobileBackupError, ServiceError
from mobile_backup.ledger import HEARTBEAT_EVERY, PcRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)
# A receiver waits (this long at most) for enough workers to free up to fill a batch of ten
# while at least LOW_WATER received messages still wait for a worker: one ReceiveMessage
# for ten files instead of one for each (its CPU, ours and SQS's, is per call, and SQS
# bills per call). Below LOW_WATER it receives at once, so workers are never starved.
FILL_WAIT_SECONDS = 0.25
LOW_WATER = 3
_ALIVE_EVERY = 5.0
# Tags wait for a quiet queue, or until this many wait (checked every TAG_CHECK_SECONDS).
TAG_BACKLOG = 500
TAG_CHECK_SECONDS = 10.0
TAG_RETRY_MAX_SECONDS = 600.0  # the longest pause after passes that S3 refused


HEARTBEAT_SECONDS = HEARTBEAT_EVERY.total_seconds()


class ServiceLoop:
    """Runs an agent's delivery until stopped (see the module's docstring)."""

    def __init__(
        self,
        *,
        delivery: Delivery,
        queue: DownloadsQueue,
        gate: PauseGate,
        state: StateDB,
        config: AgentConfig,
        clock: Callable[[], datetime],
        wait_seconds: int,
        reconciler: Callable[[], Reconciler],
        heartbeat: Callable[[], PcRecord | None] | None = None,
    ) -> None:
        self._heartbeat = heartbeat
        self._beat_at = time.monotonic()
        # A member's "Check now": the request the heartbeat last saw, and the signal that
        # starts a reconcile pass (with its audit) before the next one is due.
        self._check_seen: datetime | None = None
        self._check_asked = threading.Event()
        self._delivery = delivery
        self._queue = queue
        self._gate = gate
        self._state = state
        self._config = config
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._reconciler = reconciler
        self._alive_at = 0.0
        self._quiet = threading.Event()
        """Set when a long poll found the queue empty: time to set the waiting tags."""

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, then release or finish what is in flight.

        Errors are logged and retried with a backoff; nothing here raises on a bad file.
        """
        cfg = self._config
        d = self._delivery
        try:
            # A run clears its pid when it stops; one still there was killed.
            killed = self._state.value("pid") is not None
            self._state.set_values(pid=os.getpid(), host=d.host, started_at=self._clock())
        except MobileBackupError as exc:  # a full disk: `agent status` learns it later
            logger.warning("could not update the state file: %s", exc)
        else:
            if killed:
                try:
                    d.recount_after_a_kill()
                except MobileBackupError as exc:  # the state file: the weekly count will do
                    logger.warning("could not ask for a whole count: %s", exc)
        logger.info(
            "agent on %s filing into %s (%d workers, template %s)",
            d.host,
            d.library.root,
            cfg.workers,
            cfg.path_template,
        )
        run = _Run(self, stop)
        background = threading.Event()
        helpers = [
            threading.Thread(
                target=run.keeper.run, args=(background,), name="heartbeat", daemon=True
            ),
            threading.Thread(target=run.acker.run, args=(background,), name="acks", daemon=True),
        ]
        helpers.append(
            threading.Thread(
                target=self._tag_when_quiet, args=(background,), name="tags", daemon=True
            )
        )
        # Without periodic passes the thread still answers a member's "Check now".
        helpers.append(
            threading.Thread(
                target=self._reconcile_loop,
                args=(stop, cfg.reconcile_interval or None),
                name="reconcile",
                daemon=True,
            )
        )
        for t in helpers:
            t.start()
        self._queue.keeper = run.keeper
        try:
            run.receive_all()
        finally:
            run.shut_down()
            background.set()
            self._quiet.set()  # wakes the tags thread, which sees `background` and ends
            for t in helpers:
                t.join(timeout=5)
            self._queue.keeper = None
            try:
                self._state.set_values(pid=None, alive_at=None)
            except MobileBackupError as exc:
                logger.warning("could not update the state file: %s", exc)
            logger.info("agent stopped")

    def _tag_when_quiet(self, stop: threading.Event) -> None:
        """Set the tags the receipts left waiting (`Delivery.tag_waiting`) whenever the queue
        reads empty, or once TAG_BACKLOG wait even while files keep coming: a download
        never waits for a tag, and a tag (the copy's expiry, days away) never waits long."""
        failed = 0  # passes in a row that ended in a refusal or an error
        while not stop.is_set():
            quiet = self._quiet.wait(TAG_CHECK_SECONDS)
            if stop.is_set():
                return
            try:
                if quiet or self._state.untagged_count() >= TAG_BACKLOG:
                    self._quiet.clear()
                    failed = 0 if self._delivery.tag_waiting(cancel=stop) else failed + 1
            except MobileBackupError as exc:
                logger.warning("could not tag the downloaded copies: %s", exc)
                failed += 1
            except Exception:  # the tags wait in the state file; this thread must go on
                logger.exception("unexpected error while tagging the downloaded copies")
                failed += 1
            if failed:  # S3 keeps refusing (a role without the grant?): ask less and less
                stop.wait(min(TAG_RETRY_MAX_SECONDS, TAG_CHECK_SECONDS * 2 ** min(failed, 10)))

    def _reconcile_loop(self, stop: threading.Event, interval: float | None) -> None:
        """A pass at start and every `interval` seconds, and one whenever a member asks
        for a check; with no `interval`, only the ones members ask for."""
        if interval is None and not self._wait_for_pass(stop, None):
            return
        while not stop.is_set():
            self._check_asked.clear()  # this pass answers any request made before it
            try:
                reconciler = self._reconciler()
                report = reconciler.fetch_awaiting(cancel=stop)
                if not stop.is_set():
                    reconciler.sweep_dead_letters(report)
                if not stop.is_set():
                    # The audit that lets a phone free space (core/_freeing.py): every
                    # placed file looked at again, missing ones flagged and fetched anew.
                    reconciler.audit(report=report)
                logger.info("reconcile: %s", report.summary())
            except MobileBackupError as exc:
                logger.warning("reconcile pass failed: %s", exc)
            if not self._wait_for_pass(stop, interval):
                return

    def _wait_for_pass(self, stop: threading.Event, interval: float | None) -> bool:
        """Until the next pass is due (False: stopped first): after `interval`, at once
        after a pause (a full disk) ends, as what a pass could not place meanwhile is on
        no queue, or when a member asks for a check."""
        deadline = None if interval is None else time.monotonic() + interval
        while not stop.wait(
            1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
        ):
            if self._check_asked.is_set():
                return True
            if deadline is not None and (time.monotonic() >= deadline or self._gate.take_rerun()):
                return True
        return False

    def beat_alive(self) -> None:
        """Tell `agent status` the loop is alive (every few seconds at most), and the
        ledger that this library still collects its PC's queue (every minute)."""
        now = time.monotonic()
        if self._heartbeat is not None and now - self._beat_at >= HEARTBEAT_SECONDS:
            self._beat_at = now
            try:
                record = self._heartbeat()
            except MobileBackupError as exc:
                logger.warning("could not renew this PC's claim on its queue: %s", exc)
            else:
                if record is not None:
                    self._notice_check_request(record)
        if now - self._alive_at >= _ALIVE_EVERY:
            self._alive_at = now
            try:
                self._state.set_values(alive_at=self._clock())
            except MobileBackupError as exc:
                logger.warning("could not update the state file: %s", exc)

    def _notice_check_request(self, record: PcRecord) -> None:
        """Start a check now if a member asked for one since this agent last looked.

        Each request is acted on once, by its value: a PC whose clock lags the cloud's
        would otherwise find every request newer than its own last check, forever. The
        first request seen after a start counts only if this PC's last complete check
        began before it (the start's own pass usually answers it).
        """
        asked = record.check_requested_at
        if asked is None or asked == self._check_seen:
            return
        first, self._check_seen = self._check_seen is None, asked
        if first and record.audited_at is not None and record.audited_at >= asked:
            return
        logger.info("a member asked for a check (%s UTC): checking now", f"{asked:%H:%M}")
        self._check_asked.set()


class _Run:
    """One run of the loop: its receivers, workers, receipt threads and their bookkeeping.

    A message is `unstarted` from its receipt until a worker takes it (a stop releases
    those at once), then `in_flight` until its file is placed or it failed; a placed file's
    receipt and acknowledgement run on the `finisher` (at most `receipt_slots` wait, which
    holds the workers back when the ledger lags). `slots` bounds the messages held (workers
    plus prefetch).
    """

    def __init__(self, loop: ServiceLoop, stop: threading.Event) -> None:
        cfg = loop._config
        queue = loop._queue
        self._loop = loop
        self._stop = stop
        self._gate = loop._gate
        self._queue = queue
        self._delivery = loop._delivery
        self._grace = cfg.shutdown_grace
        self._receivers = cfg.receivers
        self.keeper = VisibilityKeeper(queue.queue, timeout=loop._delivery.visibility_timeout)
        self.acker = Acknowledger(queue.queue, before=loop._delivery.write_counts)
        self._pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="worker")
        self._slots = threading.BoundedSemaphore(cfg.workers + cfg.prefetch)
        self._finisher = ThreadPoolExecutor(cfg.workers, thread_name_prefix="receipt")
        self._receipt_slots = threading.BoundedSemaphore(2 * cfg.workers)
        self._lock = threading.Lock()
        self._unstarted: dict[str, MessageTypeDef] = {}
        self._in_flight: set[str] = set()
        self._idle = threading.Condition(self._lock)
        self._cancel = threading.Event()
        # One receiver long-polls; while batches keep coming (`busy`), the others receive
        # too (without waiting), so workers are not starved by one receive's round trip
        # and an idle agent still makes one long poll at a time.
        self._busy = threading.Event()
        self._filling = threading.Lock()  # one receiver gathers slots at a time
        self._receiving = threading.Event()
        self._receiving.set()
        self._extra: list[threading.Thread] = []

    # Receiving ---------------------------------------------------------------------------
    def receive_all(self) -> None:
        """The primary receiver on this thread, the others on their own, until stopped."""
        self._extra = [
            threading.Thread(target=self._receive, args=(False,), name=f"receive-{i}", daemon=True)
            for i in range(1, self._receivers)
        ]
        for t in self._extra:
            t.start()
        self._receive(True)

    def _receive(self, primary: bool) -> None:
        stop, gate, slots = self._stop, self._gate, self._slots
        errors = 0
        while self._receiving.is_set() and not stop.is_set():
            if primary:
                self._loop.beat_alive()
            elif not self._busy.wait(0.5):
                continue
            elif gate.probing:
                stop.wait(0.5)  # one receiver probes a paused library, not three
                continue
            if gate.wait_out(stop):
                continue
            free = self._take_slots()
            if not free:
                continue
            if gate.probing:
                # After a pause, one message tells whether the disk takes files again.
                for _ in range(free - 1):
                    slots.release()
                free = 1
            try:
                messages = self._queue.receive(free, self._loop._wait_seconds if primary else 0)
            except ServiceError as exc:
                for _ in range(free):
                    slots.release()
                self._busy.clear()
                delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                errors += 1
                logger.error("%s; retrying in %.0f s", exc, delay)
                self._loop._state.record_error(
                    code=exc.code, message=str(exc), at=self._loop._clock()
                )
                if primary:  # the others wait for it to succeed again (`busy`)
                    stop.wait(delay)
                continue
            errors = 0
            self._note_batch(bool(messages), primary)
            for _ in range(free - len(messages)):
                slots.release()
            for msg in messages:
                mid = msg.get("MessageId", "?")
                self.keeper.track(mid, msg.get("ReceiptHandle", ""))
                with self._lock:
                    self._unstarted[mid] = msg
                self._pool.submit(self._work, msg)

    def _note_batch(self, got: bool, primary: bool) -> None:
        """Batches keep coming (the other receivers join in), or the long poll found the
        queue empty (the waiting tags may go now)."""
        if got:
            self._busy.set()
            return
        self._busy.clear()
        if primary:
            self._loop._quiet.set()

    def _take_slots(self) -> int:
        """Slots for one receive (0 if none came free within half a second): all that are
        free, and up to a full batch while the workers still have LOW_WATER messages
        queued, waiting at most FILL_WAIT_SECONDS for them."""
        slots = self._slots
        with self._filling:
            if not slots.acquire(timeout=0.5):
                return 0
            free = 1
            deadline = time.monotonic() + FILL_WAIT_SECONDS
            while free < SQS_BATCH:
                if slots.acquire(blocking=False):
                    free += 1
                    continue
                with self._lock:
                    queued = len(self._unstarted)
                left = deadline - time.monotonic()
                if queued < LOW_WATER or left <= 0 or self._stop.is_set():
                    break
                if slots.acquire(timeout=min(0.02, left)):
                    free += 1
            return free

    # Working -----------------------------------------------------------------------------
    def _work(self, msg: MessageTypeDef) -> None:
        mid = msg.get("MessageId", "?")
        deferred: list[bool] = []

        def defer(step: Callable[[], Outcome]) -> None:
            self._receipt_slots.acquire()
            try:
                self._finisher.submit(self._finish, mid, step)
            except BaseException:
                self._receipt_slots.release()
                raise
            deferred.append(True)

        try:
            with self._lock:
                if self._stop.is_set() or mid not in self._unstarted:
                    return  # stopping: left for (or already given) release, not started
                del self._unstarted[mid]
                self._in_flight.add(mid)
            self._delivery.handle(msg, cancel=self._cancel, ack=self.acker.ack, defer=defer)
        except Exception:  # one bad message must never stop the others
            logger.exception("unexpected error on message %s", mid)
        finally:
            if not deferred:
                self.keeper.untrack(mid)
            with self._lock:
                self._in_flight.discard(mid)
                self._idle.notify_all()
            self._slots.release()

    def _finish(self, mid: str, step: Callable[[], Outcome]) -> None:
        try:
            step()
        except Exception:
            logger.exception("unexpected error finishing message %s", mid)
        finally:
            self.keeper.untrack(mid)  # tracked (kept invisible) until acknowledged
            self._receipt_slots.release()

    # Stopping ----------------------------------------------------------------------------
    def shut_down(self) -> None:
        """Release what was not started, give work in flight its grace period (then
        interrupt it), write every placed file's receipt, flush the acknowledgements."""
        self._receiving.clear()
        self._busy.set()  # wake the extra receivers so they see that receiving is over
        for t in self._extra:
            if t.is_alive():
                t.join()
        with self._lock:
            waiting = [(mid, m.get("ReceiptHandle", "")) for mid, m in self._unstarted.items()]
            self._unstarted.clear()
        if waiting:
            released = self._queue.release(waiting)
            logger.info("stopping: released %d message(s) not yet started", released)
        deadline = time.monotonic() + self._grace
        with self._idle:
            while self._in_flight and time.monotonic() < deadline:
                self._idle.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if self._in_flight:
                count = len(self._in_flight)
                logger.info("stopping: interrupting %d download(s) in flight", count)
                self._cancel.set()
        self._pool.shutdown(wait=True)
        self._finisher.shutdown(wait=True)  # every placed file gets its receipt before we go
        self.acker.flush()
