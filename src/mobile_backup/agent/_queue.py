"""The downloads queue from the agent's side: heartbeats, batched acknowledgements, release.

- `VisibilityKeeper` extends the visibility timeout of every message being worked on, in
  batches, so a 2 GiB video that takes longer than the queue's timeout is not handed to a
  second worker (or, after `maxReceiveCount`, to the dead-letter queue) while it downloads.
- `Acknowledger` deletes finished messages ten at a time (DeleteMessageBatch).
- `DownloadsQueue.release` makes messages visible again at once (visibility 0): what a
  stopping agent does with work it has received but not finished.

Every SQS failure here is logged, never raised: a lost heartbeat or acknowledgement only
means a redelivery, which placement makes harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobile_backup.aws import AwsFailure, Handle, Queue
from mobile_backup.core import SQS_BATCH, chunked
from mobile_backup.instrument import crash_point

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tracked:
    handle: str
    extended_at: float


class VisibilityKeeper:
    """Keeps messages invisible while they are being worked on.

    Args:
        timeout: the visibility (seconds) each heartbeat sets; the queue's own timeout.
        interval: seconds between heartbeats for one message (a third of `timeout`).
    """

    def __init__(
        self,
        queue: Queue,
        *,
        timeout: int,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._timeout = max(1, timeout)
        self._interval = interval if interval is not None else max(0.5, self._timeout / 3)
        self._clock = clock
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}
        self.heartbeats = 0
        """Visibility extensions sent (for tests and the log)."""

    def track(self, message_id: str, handle: str) -> None:
        with self._lock:
            self._tracked[message_id] = _Tracked(handle, self._clock())

    def untrack(self, message_id: str) -> None:
        with self._lock:
            self._tracked.pop(message_id, None)

    def beat(self) -> int:
        """Extend every message due for it; returns how many were extended."""
        now = self._clock()
        with self._lock:
            due = [
                (mid, t.handle)
                for mid, t in self._tracked.items()
                if now - t.extended_at >= self._interval
            ]
            for mid, _ in due:
                self._tracked[mid].extended_at = now
        if not due:
            return 0
        extended = _visibility(self._queue, due, self._timeout)
        self.heartbeats += extended
        logger.debug("extended the visibility of %d message(s)", extended)
        return extended

    def run(self, stop: threading.Event) -> None:
        """Beat until `stop` is set (a daemon thread of the agent)."""
        tick = min(1.0, self._interval / 2)
        while not stop.wait(tick):
            self.beat()


class Acknowledger:
    """Deletes finished messages in batches of up to ten.

    `ack` queues a message; a batch goes out when ten are waiting or `linger` seconds after
    the first, and `flush` sends whatever waits (the agent calls it before it stops). A
    queued message stays invisible meanwhile (its visibility timeout runs for minutes), and
    one that comes back after a crash finds its file placed and its receipt written.
    `before` runs before each batch is deleted (the agent writes its gathered counts).
    """

    def __init__(
        self, queue: Queue, *, linger: float = 0.25, before: Callable[[], None] | None = None
    ) -> None:
        self._queue = queue
        self._linger = linger
        self._before = before
        self._cond = threading.Condition()
        self._pending: list[tuple[str, str]] = []
        self._first_at: float | None = None
        self.deleted = 0

    def ack(self, message_id: str, handle: str) -> None:
        with self._cond:
            self._pending.append((message_id, handle))
            if self._first_at is None:
                self._first_at = time.monotonic()
            self._cond.notify()

    def flush(self) -> int:
        with self._cond:
            items, self._pending, self._first_at = self._pending, [], None
        return self._delete(items)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._cond:
                if not self._pending:
                    self._cond.wait(0.5)
                    continue
                assert self._first_at is not None
                wait = self._first_at + self._linger - time.monotonic()
                if len(self._pending) < SQS_BATCH and wait > 0:
                    self._cond.wait(wait)
                    continue
                items = self._pending[:SQS_BATCH]
                del self._pending[:SQS_BATCH]
                self._first_at = time.monotonic() if self._pending else None
            self._delete(items)
        self.flush()

    def _delete(self, items: list[tuple[str, str]]) -> int:
        if items and self._before is not None:
            try:
                self._before()
            except Exception:  # counts are made good by the next whole count
                logger.exception("could not write the counts before an acknowledgement")
        ok = 0
        for batch in chunked(items, SQS_BATCH):
            try:
                result = self._queue.delete_batch(batch)
            except AwsFailure as exc:
                # Harmless: the messages come back and find their files already placed.
                logger.warning("%s", exc)
                continue
            crash_point("agent.acked")
            ok += result.ok
            for message in result.refused:
                logger.warning("delete refused: %s", message)
        self.deleted += ok
        return ok


class DownloadsQueue:
    """The downloads queue as the agent uses it: receive, delete, put back, hide.

    While the service loop runs, `keeper` keeps every received message invisible until it
    is finished (acknowledged or put back).
    """

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.keeper: VisibilityKeeper | None = None

    @property
    def url(self) -> str:
        return self.queue.url

    def receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        """Up to `count` (at most ten) messages; AwsServiceError if SQS cannot answer."""
        messages = self.queue.receive(
            max(1, min(count, SQS_BATCH)), wait_s=wait_seconds, receive_count=True
        )
        if messages:
            crash_point("agent.received")
        keeper = self.keeper
        if keeper is not None:
            for msg in messages:
                keeper.track(msg.get("MessageId", "?"), msg.get("ReceiptHandle", ""))
        return messages

    def delete(self, message_id: str, handle: str) -> bool:
        """Delete one finished message now; False (logged) if SQS refused."""
        try:
            self.queue.delete(handle)
        except AwsFailure as exc:
            # Harmless: the message comes back and finds the file already placed.
            logger.warning("could not delete message %s: %s", message_id, exc)
            return False
        return True

    def release(self, handles: Iterable[Handle]) -> int:
        """Make (id, handle) pairs visible again now."""
        return _visibility(self.queue, handles, 0)

    def hide(self, handles: Iterable[Handle], seconds: int) -> int:
        """Keep (id, handle) pairs invisible for `seconds` (a retry's or a pause's wait)."""
        return _visibility(self.queue, handles, seconds)

    def visibility_timeout(self) -> int:
        """The queue's own visibility timeout (300 s if it cannot be read)."""
        try:
            attrs = self.queue.attributes("VisibilityTimeout")
        except AwsFailure as exc:
            logger.warning("could not read the queue's visibility timeout: %s", exc)
            return 300
        return int(attrs.get("VisibilityTimeout", "300"))


def _visibility(queue: Queue, handles: Iterable[Handle], seconds: int) -> int:
    """Set the visibility of messages; returns how many SQS accepted (the rest: logged,
    harmless: a message that comes back finds its file placed)."""
    result = queue.change_visibility(handles, seconds)
    for refusal in result.refused:
        logger.warning("visibility change refused: %s", refusal)
    return result.ok
