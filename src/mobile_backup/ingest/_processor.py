"""Turn one S3 event notification into ledger updates and download messages.

The processor is idempotent: S3 and SQS deliver at least once (moto even sends two events for
one PUT), so every step is safe to replay.

For each created object the order is *mark uploaded → send → mark announced*. A crash
between the send and the mark re-sends the message on redelivery; the agent tolerates
duplicates (same content → one file), whereas the opposite order could lose a message for
good. Two concurrent deliveries of the same event can likewise both send; that too only
costs the agent a duplicate it ignores.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import (
    AwsFailure,
    Bucket,
    Queue,
    dynamodb_client,
    s3_client,
    sqs_client,
)
from mobile_backup.core import (
    DownloadMessage,
    FileRecord,
    FileStatus,
    InvalidKeyError,
    LazyPool,
    ObjectKey,
    ObjectState,
    Settings,
    decode_event_key,
    parse_object_key,
    utcnow,
)
from mobile_backup.ingest.exceptions import AnnounceError, MalformedEventError
from mobile_backup.ledger import (
    MAIN_PC,
    PC_ATTRIBUTE,
    Ledger,
    PcQueue,
    PcRegistry,
    UnreservedUploadError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

TEST_EVENT = "s3:TestEvent"
CREATED_PREFIX = "ObjectCreated:"


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What one message body led to; keys are decoded S3 keys."""

    announced: tuple[str, ...] = ()
    """Objects for which a download message was sent."""
    duplicates: tuple[str, ...] = ()
    """Media objects that were already announced or downloaded: nothing sent."""
    ignored: tuple[str, ...] = ()
    """Keys outside the media scheme, and events other than ObjectCreated."""
    quarantined: tuple[str, ...] = ()
    """Objects the API never presigned (no ledger entry): tagged, never filed."""
    test_event: bool = False
    """The body was the `s3:TestEvent` S3 sends when notifications are configured."""


@dataclass(frozen=True, slots=True)
class _CreatedObject:
    bucket: str
    key: ObjectKey
    size: int


class _Batch:
    """What the records of one batch share: the PC registry, being read since it began."""

    def __init__(self, reading: Future[list[PcQueue]] | None) -> None:
        self.lock = threading.Lock()
        self.reading = reading
        self.targets: list[PcQueue] | None = None


# Reads the registry beside each batch's first ledger writes: one thread on Lambda (a batch
# at a time); the local poller runs several batches at once, each with its own read.
_registry_pool = LazyPool(8, "pc-registry")


class IngestProcessor:
    """Process S3 notification bodies taken from the events queue.

    Args:
        ledger: the ledger repository.
        sqs: an SQS client able to send to the downloads queues.
        downloads_queue_url: where download messages go (the first PC's queue).
        clock: returns the current time (timezone-aware, UTC).
        pcs: the PC registry: each registered PC's own queue gets every message too.
        s3: tags objects the API never presigned `state=quarantined` (see `_quarantine`).
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        sqs: SQSClient,
        downloads_queue_url: str,
        clock: Callable[[], datetime],
        pcs: PcRegistry | None = None,
        s3: S3Client | None = None,
    ) -> None:
        self._ledger = ledger
        self._s3 = s3
        self._sqs = sqs
        self._queue_url = downloads_queue_url
        self._clock = clock
        self._pcs = pcs
        # The batch being processed (see `batch`): a context variable, so that the threads
        # that process one batch's records share it and batches run side by side (the
        # local poller) do not.
        self._batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
            f"ingest-batch-{id(self)}", default=None
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> IngestProcessor:
        """A processor on the deployment `settings` describe (table, downloads queue)."""
        db = dynamodb_client(settings, component="ingest")
        queue = settings.require("downloads_queue_url")
        return cls(
            ledger=Ledger(db, settings.require("table")),
            sqs=sqs_client(settings, component="ingest"),
            downloads_queue_url=queue,
            clock=clock,
            pcs=PcRegistry(db, settings.require("table"), downloads_queue_url=queue),
            s3=s3_client(settings, component="ingest"),
        )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Process one batch of events: the PC registry is read once for all of them.

        Read as the batch begins, after it was received, so a PC that `agent register`
        added before a file was uploaded gets that file: its event cannot be in a batch
        received before the registration (a minute-long cache used to send the files of a
        new PC's first minute only through its next reconcile). The read runs beside the
        records' first ledger writes, so that sending the first download message does not
        wait for it (one round trip less per batch). Threads that run the batch's records
        in a copy of this context share it; the batch ends only once it has ended.
        """
        reading = None if self._pcs is None else _registry_pool().submit(self._pcs.queue_targets)
        token = self._batch.set(_Batch(reading))
        try:
            yield
        finally:
            self._batch.reset(token)
            if reading is not None:
                reading.exception()  # waits, never raises: no read outlives its batch

    def queue_targets(self) -> list[PcQueue]:
        """Every PC's queue: read from the registry (strongly consistent), once per batch."""
        if self._pcs is None:
            return [PcQueue(MAIN_PC, self._queue_url)]
        batch = self._batch.get()
        if batch is None:
            return self._pcs.queue_targets()
        with batch.lock:  # the batch's records run on threads: one read for all of them
            if batch.targets is None:
                read, batch.reading = batch.reading, None
                if read is not None and read.exception() is None:
                    batch.targets = read.result()
                else:  # not read ahead, or that read failed: read (again) now
                    batch.targets = self._pcs.queue_targets()
            return batch.targets

    def process_body(self, body: str) -> IngestOutcome:
        """Handle one SQS message body (an S3 event notification).

        Raises:
            MalformedEventError: the body is not a notification; nothing was changed.
            AnnounceError: the download message could not be sent; safe to retry.
            ServiceError: the ledger could not be updated; safe to retry.
        """
        event = _parse_body(body)
        if event.get("Event") == TEST_EVENT:
            logger.info("ignoring the S3 test event for bucket %s", event.get("Bucket"))
            return IngestOutcome(test_event=True)
        # Validate every record before touching anything, so a malformed body changes nothing.
        created: list[_CreatedObject] = []
        ignored: list[str] = []
        for record in _records(event):
            outcome = _classify(record)
            if isinstance(outcome, _CreatedObject):
                created.append(outcome)
            else:
                ignored.append(outcome)
        announced: list[str] = []
        duplicates: list[str] = []
        quarantined: list[str] = []
        for obj in created:
            try:
                sent = self._ingest(obj)
            except UnreservedUploadError as exc:
                self._quarantine(obj, exc)
                quarantined.append(str(obj.key))
                continue
            (announced if sent else duplicates).append(str(obj.key))
        return IngestOutcome(
            announced=tuple(announced),
            duplicates=tuple(duplicates),
            ignored=tuple(ignored),
            quarantined=tuple(quarantined),
        )

    def _quarantine(self, obj: _CreatedObject, exc: UnreservedUploadError) -> None:
        """An object no member's upload asked for: written straight into the bucket (by
        anyone with write access, under any key). Never filed, tagged for the owner to look
        at (a lifecycle rule expires it after 30 days); the caller counts it (a metric)."""
        logger.warning("quarantined %s: %s", obj.key, exc)
        if self._s3 is None:
            return
        try:
            Bucket(self._s3, obj.bucket).tag(str(obj.key), ObjectState.QUARANTINED)
        except AwsFailure as tag_error:  # untagged is kept, never filed: safe
            logger.warning("%s (left untagged: still never filed)", tag_error)

    def _ingest(self, obj: _CreatedObject) -> bool:
        """Record the upload and announce it once; True if a message was sent."""
        key = obj.key
        record = self._ledger.mark_uploaded(
            key.user_sub, key.sha256, size=obj.size, now=self._clock()
        )
        if record.status != FileStatus.UPLOADED or record.announced_at is not None:
            logger.info("%s is already %s; nothing to announce", key, _state(record))
            return False
        message = DownloadMessage.for_record(record, bucket=obj.bucket).to_json()
        try:
            # Every PC gets every file. A failure part-way re-sends to all on retry: a PC
            # that already has the message ignores the duplicate. Each message names its
            # PC: the name stays with it in the dead-letter queue (agent/_dead_letters.py).
            for target in self.queue_targets():
                Queue(self._sqs, target.url).send(message, attributes={PC_ATTRIBUTE: target.name})
        except AwsFailure as exc:
            raise AnnounceError(f"could not send the download message for {key}: {exc}") from exc
        self._ledger.mark_announced(key.user_sub, key.sha256, now=self._clock())
        logger.info("announced %s (%d bytes) to the agent", key, obj.size)
        return True


def _state(record: FileRecord) -> str:
    if record.status == FileStatus.UPLOADED:
        return "announced"
    return str(record.status)


def _parse_body(body: str) -> Mapping[str, Any]:
    try:
        event = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedEventError(f"message body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise MalformedEventError("message body is not a JSON object")
    return event


def _records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    records = event.get("Records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise MalformedEventError("message body has no S3 `Records` list")
    return records


def _classify(record: Mapping[str, Any]) -> _CreatedObject | str:
    """A created media object, or the (decoded) key or event name to ignore."""
    name = record.get("eventName")
    if not isinstance(name, str):
        raise MalformedEventError("S3 record without an eventName")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        raw_key = s3["object"]["key"]
        size = s3["object"].get("size")
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEventError(f"S3 record without bucket or object: {exc!r}") from exc
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        raise MalformedEventError("S3 record with a non-string bucket or key")
    key = decode_event_key(raw_key)
    if not name.startswith(CREATED_PREFIX):
        logger.info("ignoring %s event for %s", name, key)
        return key
    try:
        parsed = parse_object_key(key)
    except InvalidKeyError as exc:
        # Not ours (someone put a file by hand): retrying could never succeed.
        logger.warning("ignoring object outside the media scheme: %s", exc)
        return key
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MalformedEventError(f"S3 record for {key} has an invalid size: {size!r}")
    return _CreatedObject(bucket=bucket, key=parsed, size=size)
