"""The downloads queue from the agent's side: heartbeats, batched acknowledgements, release.

- `VisibilityKeeper` extends the visibility timeout of every message being worked on, in
  batches, so a 2 GiB video that takes longer than the queue's timeout is not handed to a
  second worker (or, after `maxReceiveCount`, to the dead-letter queue) while it downloads.
- `Acknowledger` deletes finished messages ten at a time (DeleteMessageBatch).
- `release` makes messages visible again at once (visibility 0): what a stopping agent does
  with work it has received but not finished.

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

from botocore.exceptions import BotoCoreError, ClientError

from mobile_backup.core import SQS_BATCH, ServiceError, chunked, crash_point, delete_messages

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tracked:
    handle: str
    extended_at: float


def change_visibility(
    sqs: SQSClient, queue_url: str, handles: Iterable[tuple[str, str]], seconds: int
) -> int:
    """Set the visibility of (id, receipt handle) pairs; returns how many SQS accepted."""
    ok = 0
    for batch in chunked(list(handles), SQS_BATCH):
        try:
            resp = sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                    for i, (_, handle) in enumerate(batch)
                ],
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not change the visibility of %d message(s): %s", len(batch), exc)
            continue
        ok += len(resp.get("Successful", []))
        for failure in resp.get("Failed", []):
            logger.warning("visibility change refused: %s", failure.get("Message"))
    return ok


def release(sqs: SQSClient, queue_url: str, handles: Iterable[tuple[str, str]]) -> int:
    """Make messages visible again now (unstarted or interrupted work); returns the count."""
    return change_visibility(sqs, queue_url, handles, 0)


class VisibilityKeeper:
    """Keeps messages invisible while they are being worked on.

    Args:
        timeout: the visibility (seconds) each heartbeat sets; the queue's own timeout.
        interval: seconds between heartbeats for one message (a third of `timeout`).
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        timeout: int,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
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
        extended = change_visibility(self._sqs, self._queue_url, due, self._timeout)
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
    """

    def __init__(self, sqs: SQSClient, queue_url: str, *, linger: float = 0.25) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._linger = linger
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
        ok = 0
        for batch in chunked(items, SQS_BATCH):
            try:
                deleted, refused = delete_messages(
                    self._sqs, self._queue_url, batch, what=f"delete {len(batch)} message(s)"
                )
            except ServiceError as exc:
                # Harmless: the messages come back and find their files already placed.
                logger.warning("%s", exc)
                continue
            crash_point("agent.acked")
            ok += deleted
            for message in refused:
                logger.warning("delete refused: %s", message)
        self.deleted += ok
        return ok


class DownloadsQueue:
    """The downloads queue as the agent uses it: receive, delete, put back, hide.

    While the service loop runs, `keeper` keeps every received message invisible until it
    is finished (acknowledged or put back).
    """

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.keeper: VisibilityKeeper | None = None

    def receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        """Up to `count` (at most ten) messages; raises ServiceError if SQS cannot answer."""
        try:
            resp = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(count, SQS_BATCH)),
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceError(f"could not receive from the downloads queue: {exc}") from exc
        messages = resp.get("Messages", [])
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
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
        except (BotoCoreError, ClientError) as exc:
            # Harmless: the message comes back and finds the file already placed.
            logger.warning("could not delete message %s: %s", message_id, exc)
            return False
        return True

    def release(self, handles: Iterable[tuple[str, str]]) -> int:
        """Make (id, handle) pairs visible again now."""
        return release(self.sqs, self.url, handles)

    def hide(self, handles: Iterable[tuple[str, str]], seconds: int) -> int:
        """Keep (id, handle) pairs invisible for `seconds` (a retry's or a pause's wait)."""
        return change_visibility(self.sqs, self.url, handles, seconds)

    def visibility_timeout(self) -> int:
        """The queue's own visibility timeout (300 s if it cannot be read)."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["VisibilityTimeout"]
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not read the queue's visibility timeout: %s", exc)
            return 300
        return int(attrs.get("Attributes", {}).get("VisibilityTimeout", "300"))
