"""What a delivery that did not place its file becomes: one `Outcome` per kind of failure.

Each error of the place step maps to an outcome here, and the bookkeeping that goes with
it happens here too: the ledger says why a file failed or was refused, the state file keeps
the last error for `agent status`, and the cloud copy is tagged for its lifecycle rule.
Nothing here raises: a failure to record a failure is logged and the outcome stays.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._state import StateDB
from mobile_backup.agent.exceptions import (
    ContentMismatchError,
    DownloadError,
    DownloadIntegrityError,
    NotMediaError,
    ObjectMissingError,
)
from mobile_backup.aws import AwsFailure, AwsNotFoundError, Bucket
from mobile_backup.core import (
    STATE_TAG,
    CancelledError,
    DownloadMessage,
    FileStatus,
    MobileBackupError,
    ObjectState,
    ServiceError,
)
from mobile_backup.ledger import Ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

TAG_THREADS = 4
"""Tags set at once by `tag_waiting` (each is one round trip to S3)."""

# Errors that mean "this disk or folder will not take the file now": wait, do not fail it.
BLOCKING_ERRNOS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "read_only",
}


class Failures:
    """Turns the place step's errors into outcomes, recording each as it should be."""

    def __init__(
        self,
        *,
        s3: S3Client,
        ledger: Ledger,
        state: StateDB,
        gate: PauseGate,
        clock: Callable[[], datetime],
    ) -> None:
        self._s3 = s3
        self._ledger = ledger
        self._state = state
        self._gate = gate
        self._clock = clock

    def outcome_of(self, exc: Exception, item: DownloadMessage, message_id: str) -> Outcome:
        """The outcome of a place step that raised `exc` (re-raised if it is not ours)."""
        if isinstance(exc, CancelledError):
            return Outcome(OutcomeKind.RELEASED, message_id, detail=str(exc))
        if isinstance(exc, DownloadIntegrityError):
            if isinstance(exc, ContentMismatchError):
                self.tag(item, ObjectState.CORRUPT)  # proven garbage: a lifecycle rule expires it
            return self._fail(message_id, item, f"integrity: {exc}")
        if isinstance(exc, NotMediaError):
            return self._refuse(message_id, item, str(exc))
        if isinstance(exc, ObjectMissingError):
            return self._missing(message_id, item, exc)
        if isinstance(exc, OSError):
            reason = BLOCKING_ERRNOS.get(exc.errno or 0)
            if reason is not None:
                detail = self._gate.block(item.key, reason, exc, needed_bytes=item.size)
                return Outcome(OutcomeKind.BLOCKED, message_id, detail=detail)
        if isinstance(exc, OSError | MobileBackupError):  # DownloadError among them
            return self._transient(message_id, item, exc)
        raise exc

    def tag(self, item: DownloadMessage, state: ObjectState) -> None:
        """Tag the cloud copy's `state` (lifecycle rules expire each tagged state); best
        effort: an untagged object is only kept longer, never lost."""
        try:
            Bucket(self._s3, item.bucket).tag(item.key, state)
        except AwsFailure as exc:
            logger.warning("could not tag %s as %s=%s: %s", item.key, STATE_TAG, state, exc)

    def tag_later(self, item: DownloadMessage, state: ObjectState) -> None:
        """Tag the cloud copy at the next quiet moment (`tag_waiting`), so that tagging
        never holds up a download; tagged now if the state file cannot remember it."""
        try:
            self._state.tag_later(item.bucket, item.key, state)
        except MobileBackupError as exc:
            logger.warning("could not note %s for tagging, tagging it now: %s", item.key, exc)
            self.tag(item, state)

    def tag_waiting(self, *, cancel: threading.Event | None = None) -> bool:
        """Set every tag `tag_later` noted, TAG_THREADS at a time. False when S3 refused one:
        the pass ends there (a few calls, not one per waiting tag) and the rest wait for the
        next. A copy already gone (another PC deleted it, or it expired) needs no tag."""
        with ThreadPoolExecutor(TAG_THREADS, thread_name_prefix="tag") as pool:
            while cancel is None or not cancel.is_set():
                rows = self._state.untagged(TAG_THREADS)
                if not rows:
                    return True
                if not all(list(pool.map(self._tag_row, rows))):
                    return False
        return True

    def _tag_row(self, row: tuple[str, str, str]) -> bool:
        """Tag one waiting copy and forget it; False (kept for later) when S3 said no."""
        bucket, key, state = row
        known = state in ObjectState.__members__.values()
        try:
            if known:
                Bucket(self._s3, bucket).tag(key, ObjectState(state))
            else:  # not a state this version knows: there is nothing it could set
                logger.warning("dropping the tag %s=%r noted for %s", STATE_TAG, state, key)
        except AwsNotFoundError:
            logger.info("%s is no longer in the cloud: nothing to tag", key)
        except AwsFailure as exc:
            logger.warning("could not tag %s as %s=%s (will retry): %s", key, STATE_TAG, state, exc)
            return False
        self._state.tagged(bucket, key, state)
        return True

    def _refuse(self, message_id: str, item: DownloadMessage, reason: str) -> Outcome:
        """Bytes that are not a photo or video: kept out of the library for good, the ledger
        says why, the cloud copy expires, and the message is settled (no retry can help)."""
        logger.warning("%s kept out of the library: %s", item.key, reason)
        self._note_error("not_media", f"{item.key}: {reason}")
        self.tag(item, ObjectState.REFUSED)
        try:
            self._ledger.mark_failed(item.user_sub, item.sha256, reason=reason, now=self._clock())
        except ServiceError as exc:
            logger.warning("could not record why %s was refused: %s", item.key, exc)
            return Outcome(OutcomeKind.ERROR, message_id, detail=str(exc))
        return Outcome(OutcomeKind.REFUSED, message_id, detail=reason)

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

    def _note_error(self, code: str, message: str) -> None:
        try:
            self._state.record_error(code=code, message=message, at=self._clock())
        except MobileBackupError as exc:
            logger.warning("could not update the state file: %s", exc)
