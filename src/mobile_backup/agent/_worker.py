"""The agent's loop: take download messages, fetch, verify, place, write the receipt, ack.

A message is deleted only after its file is placed, fsynced and verified and the receipt is
in the ledger; anything short of that leaves the message on the queue, to come back after
its visibility timeout and, after the queue's maxReceiveCount, to land in the dead-letter
queue. Redelivery is harmless: the same content is never written twice.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mobile_backup.agent._paths import relative_path
from mobile_backup.agent._placement import Library, Placement, Readable
from mobile_backup.agent.exceptions import (
    DownloadError,
    DownloadIntegrityError,
    MalformedMessageError,
)
from mobile_backup.core import (
    ConfigError,
    DownloadMessage,
    FileStatus,
    InvalidKeyError,
    Ledger,
    MobileBackupError,
    Receipt,
    ServiceError,
    Settings,
    dynamodb_client,
    object_key,
    s3_client,
    sqs_client,
    utcnow,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

MAX_BATCH = 10
DEFAULT_WAIT_SECONDS = 20
ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)
# The lifecycle rule expires objects carrying this tag (infra/template.yaml).
DOWNLOADED_TAG = ("state", "downloaded")
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
OBJECT_MISSING = "object_missing"


class OutcomeKind(enum.StrEnum):
    """What became of one message."""

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
    """Something transient (network, ledger, disk); the message will come back."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of `Agent.process_message`."""

    kind: OutcomeKind
    message_id: str
    acknowledged: bool = False
    """True when the message was deleted from the queue."""
    placement: Placement | None = None
    detail: str | None = None


class Agent:
    """Consume the downloads queue into a library folder.

    Args:
        settings: supplies `downloads_queue_url` and, when set, the one `bucket` to read.
        s3: reads objects (and tags them once received).
        sqs: receives and deletes download messages.
        ledger: where receipts and failures are recorded.
        library: the library root folder.
        host: this machine's name, recorded in receipts.
        clock: returns the current time (timezone-aware, UTC).
        wait_seconds: the long-poll wait used by `run`.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        s3: S3Client,
        sqs: SQSClient,
        ledger: Ledger,
        library: Path,
        host: str,
        clock: Callable[[], datetime] = utcnow,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self._queue_url = settings.require("downloads_queue_url")
        self._bucket = settings.bucket
        self._s3 = s3
        self._sqs = sqs
        self._ledger = ledger
        self._library = Library(library)
        self._host = host
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._prepared = False
        self._prepare_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        library: Path | None = None,
        host: str | None = None,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
    ) -> Agent:
        """An agent with clients built from `settings`; `library` defaults to the setting."""
        root = library or settings.library
        if root is None:
            raise ConfigError(
                f"no library folder configured for profile {settings.profile!r} "
                "(set MOBILE_BACKUP_LIBRARY or pass one)"
            )
        return cls(
            settings=settings,
            s3=s3_client(settings),
            sqs=sqs_client(settings),
            ledger=Ledger(dynamodb_client(settings), settings.require("table")),
            library=root,
            host=host or socket.gethostname() or "pc",
            wait_seconds=wait_seconds,
        )

    @property
    def library(self) -> Library:
        return self._library

    def prepare(self) -> None:
        """Create the library and clear staging leftovers; done once, before the first file."""
        with self._prepare_lock:
            if not self._prepared:
                self._library.prepare()
                self._prepared = True

    def run(self, stop: threading.Event) -> None:
        """Long-poll until `stop` is set. Errors are logged and retried with a backoff."""
        self.prepare()
        logger.info("agent on %s filing into %s", self._host, self._library.root)
        errors = 0
        while not stop.is_set():
            try:
                self.poll_once(wait_seconds=self._wait_seconds)
            except Exception:
                delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                errors += 1
                logger.exception("polling the downloads queue failed; retrying in %.0f s", delay)
                stop.wait(delay)
            else:
                errors = 0

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive up to 10 messages and process each; returns how many were received."""
        self.prepare()
        try:
            resp = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=MAX_BATCH,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceError(f"could not receive from the downloads queue: {exc}") from exc
        messages = resp.get("Messages", [])
        for message in messages:
            try:
                self.process_message(message)
            except Exception:
                # One bad message must never stop the others; it will come back.
                logger.exception("unexpected error on message %s", message.get("MessageId"))
        return len(messages)

    def process_message(self, msg: MessageTypeDef) -> Outcome:
        """Download, verify and place one message's file; delete the message when done."""
        self.prepare()
        message_id = msg.get("MessageId", "?")
        try:
            message = self._parse(msg.get("Body", ""))
        except MalformedMessageError as exc:
            logger.error(
                "message %s is not a download message (left for the DLQ): %s", message_id, exc
            )
            return Outcome(OutcomeKind.MALFORMED, message_id, detail=str(exc))
        try:
            placement = self._deliver(message)
        except DownloadIntegrityError as exc:
            return self._fail(message_id, message, f"integrity: {exc}")
        except DownloadError as exc:
            if exc.code == OBJECT_MISSING:
                return self._missing(msg, message, exc)
            logger.warning("could not download %s: %s", message.key, exc)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(exc))
        except (MobileBackupError, OSError) as exc:
            logger.warning("could not place %s: %s", message.key, exc)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(exc))
        kind = OutcomeKind.ALREADY_PLACED if placement.already_present else OutcomeKind.PLACED
        receipt = Receipt(
            host=self._host,
            path=placement.relative.as_posix(),
            sha256=message.sha256,
            at=self._clock(),
        )
        try:
            self._ledger.mark_downloaded(message.user_sub, message.sha256, receipt)
        except ServiceError as exc:
            # The file is safely placed; the redelivered message will find it and retry this.
            logger.warning("placed %s but could not write its receipt: %s", placement.path, exc)
            return Outcome(OutcomeKind.ERROR, message_id, placement=placement, detail=str(exc))
        self._tag_downloaded(message)
        acknowledged = self._delete(msg)
        logger.info("%s %s → %s", kind, message.key, placement.relative)
        return Outcome(kind, message_id, acknowledged=acknowledged, placement=placement)

    # Steps -----------------------------------------------------------------------------
    def _parse(self, body: str) -> DownloadMessage:
        try:
            message = DownloadMessage.from_json(body)
        except ValidationError as exc:
            raise MalformedMessageError(_first_error(exc)) from exc
        if message.v != 1:
            raise MalformedMessageError(f"unknown message version {message.v}")
        try:
            expected_key = object_key(message.user_sub, message.sha256)
        except InvalidKeyError as exc:
            raise MalformedMessageError(str(exc)) from exc
        # The message names the object; it must be exactly the one its user and hash imply,
        # in our bucket, so a stray message cannot make the agent read anything else.
        if message.key != expected_key:
            raise MalformedMessageError(f"key {message.key!r} is not {expected_key!r}")
        if self._bucket and message.bucket != self._bucket:
            raise MalformedMessageError(f"bucket {message.bucket!r} is not {self._bucket!r}")
        if message.size < 0:
            raise MalformedMessageError(f"negative size {message.size}")
        return message

    def _deliver(self, message: DownloadMessage) -> Placement:
        """The file in place: found already there, or downloaded, verified and placed."""
        relative = relative_path(
            user_sub=message.user_sub,
            when=message.taken_at or message.uploaded_at,
            filename=message.filename,
        )
        existing = self._library.find(relative, sha256=message.sha256, size=message.size)
        if existing is not None:
            return existing  # a redelivery: no need to pay for the download again
        try:
            resp = self._s3.get_object(Bucket=message.bucket, Key=message.key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING_CODES:
                raise DownloadError(
                    f"{message.key} is not in the bucket", code=OBJECT_MISSING
                ) from exc
            raise DownloadError(f"could not get {message.key}: {exc}") from exc
        except BotoCoreError as exc:
            raise DownloadError(f"could not get {message.key}: {exc}") from exc
        body = resp["Body"]
        try:
            return self._library.store(
                _TranslatingStream(body, message.key),
                relative,
                sha256=message.sha256,
                size=message.size,
            )
        finally:
            body.close()

    def _fail(self, message_id: str, message: DownloadMessage, reason: str) -> Outcome:
        logger.error("%s cannot be delivered (message kept for retry/DLQ): %s", message.key, reason)
        try:
            self._ledger.mark_failed(
                message.user_sub, message.sha256, reason=reason, now=self._clock()
            )
        except ServiceError as exc:
            logger.warning("could not record the failure of %s: %s", message.key, exc)
        return Outcome(OutcomeKind.FAILED, message_id, detail=reason)

    def _missing(
        self, msg: MessageTypeDef, message: DownloadMessage, exc: DownloadError
    ) -> Outcome:
        message_id = msg.get("MessageId", "?")
        # An object that is gone after a receipt (e.g. expired by lifecycle) means this is
        # an old duplicate of a delivered message: acknowledge it instead of failing.
        try:
            record = self._ledger.get(message.user_sub, message.sha256)
        except ServiceError as lookup:
            logger.warning("could not check the ledger for %s: %s", message.key, lookup)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(lookup))
        if record is not None and record.status == FileStatus.DOWNLOADED:
            logger.info("%s was already delivered; dropping a stale message", message.key)
            acknowledged = self._delete(msg)
            return Outcome(OutcomeKind.STALE, message_id, acknowledged=acknowledged)
        return self._fail(message_id, message, str(exc))

    def _tag_downloaded(self, message: DownloadMessage) -> None:
        """Let the lifecycle rule expire the cloud copy; best effort (untagged is safe)."""
        try:
            self._s3.put_object_tagging(
                Bucket=message.bucket,
                Key=message.key,
                Tagging={"TagSet": [{"Key": DOWNLOADED_TAG[0], "Value": DOWNLOADED_TAG[1]}]},
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not tag %s as downloaded: %s", message.key, exc)

    def _delete(self, msg: MessageTypeDef) -> bool:
        try:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=msg["ReceiptHandle"])
        except (BotoCoreError, ClientError) as exc:
            # Harmless: the message comes back and finds the file already placed.
            logger.warning("could not delete message %s: %s", msg.get("MessageId"), exc)
            return False
        return True


class _TranslatingStream:
    """S3's response body, with network errors mid-download turned into DownloadError."""

    def __init__(self, body: Readable, key: str) -> None:
        self._body = body
        self._key = key

    def read(self, size: int, /) -> bytes:
        try:
            return self._body.read(size)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise DownloadError(f"download of {self._key} broke off: {exc}") from exc


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg')}"
