"""One message's journey, a straight line of steps: parse, place (found, or downloaded,
verified and placed), write the receipt and tag the cloud copy (on the batched paths, the
tag is noted for a quiet moment: `tag_waiting`), then settle the message (`_settle.py`:
acknowledge, or put it back with a backoff). A step that cannot go on
becomes an `Outcome` (`_failures.py` says which) and the walk goes straight to settling.
Nothing here raises for a bad file, a bad object or a full disk: the queue's redelivery
(then its dead-letter queue) does the rest.
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

from pydantic import ValidationError

from mobile_backup.agent._capture import choose_capture, phone_capture, set_file_time
from mobile_backup.agent._config import AgentConfig
from mobile_backup.agent._failures import Failures
from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._placement import FileState, Library, Placement
from mobile_backup.agent._queue import DownloadsQueue
from mobile_backup.agent._settle import Settlement
from mobile_backup.agent._state import PlacedFile, StateDB
from mobile_backup.agent._transfer import Downloader
from mobile_backup.agent.exceptions import MalformedMessageError, NotMediaError
from mobile_backup.aws import AwsFailure, Bucket
from mobile_backup.core import (
    Capture,
    DownloadMessage,
    MobileBackupError,
    ObjectState,
    Receipt,
    ServiceError,
)
from mobile_backup.instrument import crash_point
from mobile_backup.ledger import Ledger, Tally
from mobile_backup.media import media_verdict

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)


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
        self._gate = gate
        self._clock = clock
        self._config = config
        self._failures = Failures(s3=s3, ledger=ledger, state=state, gate=gate, clock=clock)
        self._settlement = Settlement(queue=queue, gate=gate, config=config, on_outcome=on_outcome)
        self.owner = False
        self._key_locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        self._key_locks_guard = threading.Lock()
        self._count_lock = threading.Lock()
        self.receipts_written = 0
        """Receipts written to the ledger since start (benchmarks wait for these)."""
        self.tally = Tally()
        """The counts of receipts whose messages wait for a batched acknowledgement: the
        acknowledger writes them (`write_counts`) before it deletes a batch."""

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
            self._settlement.retry_later(message_id, handle, attempt)
            return self._settlement.told(
                Outcome(OutcomeKind.MALFORMED, message_id, detail=str(exc))
            )
        item = message
        placed = self._deliver_file(item, message_id=message_id, cancel=cancel)
        if isinstance(placed, Outcome):
            return self._settlement.settle(placed, handle, attempt, ack)
        placement = placed

        # A batched acknowledgement writes the counts with it (one ADD per batch and member).
        tally = self.tally if ack is not None else None

        def finish() -> Outcome:
            outcome = self._receipt(item, message_id=message_id, placement=placement, tally=tally)
            return self._settlement.settle(outcome, handle, attempt, ack)

        if defer is None:
            return finish()
        defer(finish)
        kind = OutcomeKind.ALREADY_PLACED if placement.already_present else OutcomeKind.PLACED
        return Outcome(kind, message_id, placement=placement, detail="receipt pending")

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
        except (OSError, MobileBackupError) as exc:
            return self._failures.outcome_of(exc, item, message_id)

    def write_counts(self) -> None:
        """Write the counts gathered in `tally` (before their messages are acknowledged)."""
        self.ledger.write_tally(self.tally)

    def tag_waiting(self, *, cancel: threading.Event | None = None) -> bool:
        """Tag the cloud copies whose receipts were written on a batched path (their tags
        wait for a quiet moment); False when S3 refused one (the rest wait)."""
        return self._failures.tag_waiting(cancel=cancel)

    def recount_after_a_kill(self) -> None:
        """The last run was killed (it never said it stopped): counts in its tally may be
        lost, so the next `status` of each member with files here counts whole."""
        members = self.state.users()
        logger.info("the last run did not stop cleanly: recounting %d member(s)", len(members))
        for user_sub in members:
            self.ledger.recount_later(user_sub)

    def _receipt(
        self,
        item: DownloadMessage,
        *,
        message_id: str,
        placement: Placement,
        tally: Tally | None = None,
    ) -> Outcome:
        """Write the receipt of a placed file (then tag or delete the cloud copy); its count
        goes to `tally` when one is given, else to the ledger now."""
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
            self.ledger.mark_downloaded(item.user_sub, item.sha256, receipt, tally=tally)
        except ServiceError as exc:
            # The file is safely placed; the redelivered message will find it and retry this.
            logger.warning("placed %s but could not write its receipt: %s", placement.path, exc)
            return Outcome(OutcomeKind.ERROR, message_id, placement=placement, detail=str(exc))
        crash_point("agent.receipt")
        with self._count_lock:
            self.receipts_written += 1
        self._after_receipt(item, later=tally is not None)
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

    @property
    def visibility_timeout(self) -> int:
        """The queue's own timeout: no backoff is longer (set once the agent is prepared)."""
        return self._settlement.visibility_timeout

    @visibility_timeout.setter
    def visibility_timeout(self, seconds: int) -> None:
        self._settlement.visibility_timeout = seconds

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

    def _after_receipt(self, item: DownloadMessage, *, later: bool) -> None:
        """Tag the cloud copy for expiry (or delete it); best effort, untagged is safe.
        `later` (the batched paths): the tag waits for `tag_waiting`."""
        if not self._config.delete_after_download or not self._every_pc_has(item):
            if later:
                self._failures.tag_later(item, ObjectState.DOWNLOADED)
            else:
                self._failures.tag(item, ObjectState.DOWNLOADED)
            return
        try:
            Bucket(self.s3, item.bucket).delete(item.key)
        except AwsFailure as exc:
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
