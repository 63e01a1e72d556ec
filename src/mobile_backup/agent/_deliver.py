"""One message's journey: parse, place (found, or downloaded, verified and placed), write
the receipt, tag the cloud copy, then settle the message (acknowledge, or put it back with a
backoff). Nothing here raises for a bad file, a bad object or a full disk: the `Outcome`
says what happened, and the queue's redelivery (then its dead-letter queue) does the rest.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mobile_backup.agent._capture import choose_capture, phone_capture, set_file_time
from mobile_backup.agent._config import AgentConfig
from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._placement import FileState, Library, Placement
from mobile_backup.agent._queue import DownloadsQueue
from mobile_backup.agent._state import PlacedFile, StateDB
from mobile_backup.agent._transfer import Downloader
from mobile_backup.agent.exceptions import (
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    MalformedMessageError,
    NotMediaError,
    ObjectMissingError,
)
from mobile_backup.core import (
    STATE_TAG,
    CancelledError,
    Capture,
    DownloadMessage,
    FileStatus,
    Ledger,
    MobileBackupError,
    ObjectState,
    Receipt,
    ServiceError,
    crash_point,
    state_tagging,
)
from mobile_backup.media import media_verdict

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

# Errors that mean "this disk or folder will not take the file now": wait, do not fail it.
_BLOCKING_ERRNOS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "read_only",
}


class Delivery:
    """Delivers messages into the library; the collaborators it holds are public so the
    reconciler can use the same ones.

    `owner` (this process holds the library: stable staging names, resumable downloads)
    and `visibility_timeout` (the queue's) are set by the agent once it is prepared.
    """

    def __init__(
        self,
        *,
        bucket: str | None,
        s3: S3Client,
        ledger: Ledger,
        library: Library,
        state: StateDB,
        downloader: Downloader,
        queue: DownloadsQueue,
        gate: PauseGate,
        host: str,
        clock: Callable[[], datetime],
        config: AgentConfig,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.bucket = bucket
        self.s3 = s3
        self.ledger = ledger
        self.library = library
        self.state = state
        self.host = host
        self.pc_name = config.pc_name
        self._downloader = downloader
        self._queue = queue
        self._gate = gate
        self._clock = clock
        self._config = config
        self._on_outcome = on_outcome
        self.owner = False
        self.visibility_timeout = 300
        self._key_locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        self._key_locks_guard = threading.Lock()
        self._count_lock = threading.Lock()
        self.receipts_written = 0
        """Receipts written to the ledger since start (benchmarks wait for these)."""

    def handle(
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
            message = self.parse(msg.get("Body", ""))
        except MalformedMessageError as exc:
            logger.error(
                "message %s is not a download message (left for the DLQ): %s", message_id, exc
            )
            self._retry_later(message_id, handle, attempt)
            return self._told(Outcome(OutcomeKind.MALFORMED, message_id, detail=str(exc)))
        item = message
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
        settled = (OutcomeKind.PLACED, OutcomeKind.ALREADY_PLACED, OutcomeKind.STALE,
                   OutcomeKind.REFUSED)  # fmt: skip
        if outcome.kind in settled:
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
            self._queue.release([(message_id, handle)])
        elif outcome.kind == OutcomeKind.BLOCKED:
            self._queue.hide([(message_id, handle)], int(self._gate.seconds_left()))
            self._gate.hold([(message_id, handle)])  # visible again as soon as space returns
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
        except CancelledError as exc:
            return Outcome(OutcomeKind.RELEASED, message_id, detail=str(exc))
        except DownloadIntegrityError as exc:
            if isinstance(exc, ContentMismatchError):
                self._tag(item, ObjectState.CORRUPT)  # proven garbage: a lifecycle rule expires it
            return self._fail(message_id, item, f"integrity: {exc}")
        except NotMediaError as exc:
            return self._refuse(message_id, item, str(exc))
        except ObjectMissingError as exc:
            return self._missing(message_id, item, exc)
        except DownloadError as exc:
            return self._transient(message_id, item, exc)
        except OSError as exc:
            reason = _BLOCKING_ERRNOS.get(exc.errno or 0)
            if reason is not None:
                detail = self._gate.block(item.key, reason, exc, needed_bytes=item.size)
                return Outcome(OutcomeKind.BLOCKED, message_id, detail=detail)
            return self._transient(message_id, item, exc)
        except MobileBackupError as exc:
            return self._transient(message_id, item, exc)

    def _receipt(self, item: DownloadMessage, *, message_id: str, placement: Placement) -> Outcome:
        """Write the receipt of a placed file (then tag or delete the cloud copy)."""
        kind = OutcomeKind.ALREADY_PLACED if placement.already_present else OutcomeKind.PLACED
        capture = placement.capture
        receipt = Receipt(
            host=self.host,
            path=placement.relative.as_posix(),
            sha256=item.sha256,
            at=self._clock(),
            captured_at=capture.when if capture else None,
            capture_source=capture.source if capture else None,
            pc=self._config.pc_name,
        )
        try:
            self.ledger.mark_downloaded(item.user_sub, item.sha256, receipt)
        except ServiceError as exc:
            # The file is safely placed; the redelivered message will find it and retry this.
            logger.warning("placed %s but could not write its receipt: %s", placement.path, exc)
            return Outcome(OutcomeKind.ERROR, message_id, placement=placement, detail=str(exc))
        crash_point("agent.receipt")
        with self._count_lock:
            self.receipts_written += 1
        self._after_receipt(item)
        crash_point("agent.tagged")
        self._gate.clear()
        logger.info("%s %s → %s", kind, item.key, placement.relative)
        return Outcome(kind, message_id, placement=placement)

    # Steps -----------------------------------------------------------------------------
    def parse(self, body: str) -> DownloadMessage:
        # The message validates its own shape, hash, user and key (core DownloadMessage);
        # the bucket must also be ours, so a stray message cannot make us read anything else.
        try:
            message = DownloadMessage.from_json(body)
        except ValidationError as exc:
            raise MalformedMessageError(_first_error(exc)) from exc
        if self.bucket and message.bucket != self.bucket:
            raise MalformedMessageError(f"bucket {message.bucket!r} is not {self.bucket!r}")
        return message

    def _place(self, item: DownloadMessage, cancel: threading.Event | None) -> Placement:
        """The file in place: found already there, or downloaded, verified and placed."""
        with self._key_lock(item.user_sub, item.sha256):
            known = self.state.placed(item.user_sub, item.sha256)
            if known is not None:
                found = self._intact(known, sha256=item.sha256, size=item.size)
                if found is not None:
                    return found  # a redelivery: no need to pay for the download again
                logger.warning(
                    "%s was placed at %s but is missing or altered there; fetching it again",
                    item.key,
                    known.path,
                )
            phone = phone_capture(item)
            if phone is not None:
                guess = self._render(item, phone)
                existing = self.library.find(guess, sha256=item.sha256, size=item.size)
                if existing is not None and known is None:
                    self._remember(item, existing)
                    return existing  # placed before the state file knew (e.g. a new file)
            name = self._staging_name(item)
            try:
                staged = self._downloader.fetch(
                    bucket=item.bucket,
                    key=item.key,
                    sha256=item.sha256,
                    size=item.size,
                    name=name,
                    cancel=cancel,
                )
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    self._drop_partial(name)
                raise
            try:
                verdict = media_verdict(staged, item.filename)
                if not verdict.ok:
                    raise NotMediaError(f"{item.filename!r} is {verdict.reason}")
                capture = choose_capture(item, staged)
                set_file_time(staged, capture)
                relative = self._render(item, capture)
                placement = self.library.place(staged, relative, sha256=item.sha256, size=item.size)
                placement = dataclasses.replace(placement, capture=capture)
            finally:
                staged.unlink(missing_ok=True)
                if self.owner and item.size >= self._config.transfer.threshold:
                    self.state.end_download(name)
            self._remember(item, placement)
            crash_point("agent.remembered")
            return placement

    def now(self) -> datetime:
        """The agent's clock (receipts, audits)."""
        return self._clock()

    @property
    def paused(self) -> bool:
        """Whether the library refuses files just now (a reconcile pass waits it out)."""
        return self._gate.paused

    def _drop_partial(self, name: str) -> None:
        """A download the disk could not hold: its staging file goes now (the space is what
        the library lacks; a sparse file of the whole size would hold it until the next
        start), and the parts it had are fetched again when the file comes back."""
        try:
            (self.library.staging / name).unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not remove the partial download %s: %s", name, exc)
        if self.owner:
            try:
                self.state.end_download(name)
            except MobileBackupError as exc:
                logger.warning("could not forget the partial download %s: %s", name, exc)

    def _render(self, item: DownloadMessage, capture: Capture) -> PurePosixPath:
        return self._config.path_template.render(
            user_sub=item.user_sub,
            user_name=item.owner_name,
            when=capture.when,
            filename=item.filename,
            sha256=item.sha256,
        )

    def _staging_name(self, item: DownloadMessage) -> str:
        if self.owner:
            # Stable per user and content, so a restarted owner resumes the same file.
            return f"{item.sha256}-{item.user_sub}.part"
        return f"guest-{uuid.uuid4().hex}.part"

    def _remember(self, item: DownloadMessage, placement: Placement) -> None:
        st = placement.path.lstat()
        self.state.record_placed(
            user_sub=item.user_sub,
            sha256=item.sha256,
            path=placement.relative,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            at=self._clock(),
            new_file=not placement.already_present,
        )

    def holds(self, item: DownloadMessage) -> bool:
        """Whether this library holds `item`'s content, intact, where the agent placed it."""
        known = self.state.placed(item.user_sub, item.sha256)
        return (
            known is not None
            and self._intact(known, sha256=item.sha256, size=item.size) is not None
        )

    def _intact(self, known: PlacedFile, *, sha256: str, size: int) -> Placement | None:
        """The placement recorded in `known` if the file there still holds this content."""
        check = self.library.check(known.path, sha256=sha256, size=size, mtime_ns=known.mtime_ns)
        if check.state != FileState.OK or check.path is None:
            return None
        return Placement(path=check.path, relative=known.path, already_present=True)

    def _after_receipt(self, item: DownloadMessage) -> None:
        """Tag the cloud copy for expiry (or delete it); best effort, untagged is safe."""
        if not self._config.delete_after_download or not self._every_pc_has(item):
            self._tag(item, ObjectState.DOWNLOADED)
            return
        try:
            self.s3.delete_object(Bucket=item.bucket, Key=item.key)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not delete %s after its receipt: %s", item.key, exc)

    def _every_pc_has(self, item: DownloadMessage) -> bool:
        """Whether every registered PC has written its receipt (so deleting the cloud copy
        leaves no PC without the file); any doubt answers no, and the copy is only tagged."""
        try:
            record = self.ledger.get(item.user_sub, item.sha256)
            names = {pc.name for pc in self.ledger.pc_registry().all()} | {self.pc_name}
        except MobileBackupError as exc:
            logger.info("keeping %s in the cloud for now: %s", item.key, exc)
            return False
        return record is not None and names <= set(record.receipts)

    def _tag(self, item: DownloadMessage, state: ObjectState) -> None:
        """Tag the cloud copy's `state` (lifecycle rules expire each tagged state); best
        effort: an untagged object is only kept longer, never lost."""
        try:
            self.s3.put_object_tagging(
                Bucket=item.bucket, Key=item.key, Tagging=state_tagging(state)
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not tag %s as %s=%s: %s", item.key, STATE_TAG, state, exc)

    def _refuse(self, message_id: str, item: DownloadMessage, reason: str) -> Outcome:
        """Bytes that are not a photo or video: kept out of the library for good, the ledger
        says why, the cloud copy expires, and the message is settled (no retry can help)."""
        logger.warning("%s kept out of the library: %s", item.key, reason)
        self._note_error("not_media", f"{item.key}: {reason}")
        self._tag(item, ObjectState.REFUSED)
        try:
            self.ledger.mark_failed(item.user_sub, item.sha256, reason=reason, now=self._clock())
        except ServiceError as exc:
            logger.warning("could not record why %s was refused: %s", item.key, exc)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(exc))
        return Outcome(OutcomeKind.REFUSED, message_id, detail=reason)

    def _fail(self, message_id: str, item: DownloadMessage, reason: str) -> Outcome:
        logger.error("%s cannot be delivered (kept for retry/DLQ): %s", item.key, reason)
        self._note_error("delivery_failed", f"{item.key}: {reason}")
        try:
            self.ledger.mark_failed(item.user_sub, item.sha256, reason=reason, now=self._clock())
        except ServiceError as exc:
            logger.warning("could not record the failure of %s: %s", item.key, exc)
        return Outcome(OutcomeKind.FAILED, message_id, detail=reason)

    def _missing(self, message_id: str, item: DownloadMessage, exc: DownloadError) -> Outcome:
        # An object that is gone after a receipt (e.g. expired by lifecycle) means this is
        # an old duplicate of a delivered message: acknowledge it instead of failing.
        try:
            record = self.ledger.get(item.user_sub, item.sha256)
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

    def _note_error(self, code: str, message: str) -> None:
        try:
            self.state.record_error(code=code, message=message, at=self._clock())
        except MobileBackupError as exc:
            logger.warning("could not update the state file: %s", exc)

    def _acknowledge(
        self, message_id: str, handle: str, ack: Callable[[str, str], None] | None
    ) -> bool:
        if ack is not None:
            ack(message_id, handle)
            return True
        return self._queue.delete(message_id, handle)

    def _retry_later(self, message_id: str, handle: str, attempt: int) -> None:
        """Back off before the next try, never longer than the queue's own timeout."""
        backoff = self._config.retry_backoff
        delay = min(backoff[min(attempt, len(backoff)) - 1], self.visibility_timeout)
        if delay != self.visibility_timeout:
            self._queue.hide([(message_id, handle)], delay)

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


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg')}"
