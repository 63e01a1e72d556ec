"""The downloads dead-letter queue, shared by every PC: sending letters home, clearing stale ones.

Every PC's queue dead-letters into the one downloads DLQ (its alarm says "a file is stuck").
The ingest names the PC each download message is for (the `pc` message attribute, which SQS
keeps when it moves a message to the DLQ), so that:

- `agent redrive` sends each letter back to the queue of the PC it was for (it used to send
  every letter to the first PC's queue, where a laptop's letter helped nobody);
- a PC clears its own letters for content it already holds (`sweep`, after each reconcile):
  an agent killed again and again just after receiving a message dead-letters it, and the
  file then arrives through the reconcile; the letter would keep the alarm ringing for
  work that is done. What is left in the DLQ is really stuck.

A letter is removed from the DLQ only after it was sent on (or proven stale): a crash in
between duplicates a message (harmless: the agent files each content once), never loses one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mobile_backup.aws import Queue
from mobile_backup.core import DownloadMessage, MobileBackupError
from mobile_backup.ledger import MAIN_PC, PC_ATTRIBUTE, PcRegistry

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

MAX_LETTERS = 1000
"""Letters looked at in one sweep or redrive (a DLQ that holds more is a problem to report)."""
HOLD_SECONDS = 60
"""How long a letter received here stays hidden from others, at most."""


def letter_pc(message: MessageTypeDef) -> str:
    """The PC a letter was for (letters from before PCs were named are the first PC's)."""
    attributes: dict[str, Any] = dict(message.get("MessageAttributes", {}))
    value = attributes.get(PC_ATTRIBUTE, {}).get("StringValue")
    return str(value) if value else MAIN_PC


@dataclass(slots=True)
class RedriveReport:
    """What `agent redrive` did: letters sent home, by PC, and letters it could not place."""

    moved: dict[str, int] = field(default_factory=dict)
    unknown_pcs: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.moved.values())


class DeadLetters:
    """The downloads DLQ, and where each PC's queue is (`registry`)."""

    def __init__(self, dlq: Queue, registry: PcRegistry) -> None:
        self._dlq = dlq
        self._registry = registry

    def redrive(self, *, limit: int | None = None) -> RedriveReport:
        """Send letters back to the queue of the PC each was for; returns what moved."""
        report = RedriveReport()
        queues: dict[str, str | None] = {}
        held: list[MessageTypeDef] = []
        try:
            for letter in self._letters(limit):
                pc = letter_pc(letter)
                if pc not in queues:
                    queues[pc] = self._queue_of(pc)
                url = queues[pc]
                if url is None:
                    report.unknown_pcs[pc] = report.unknown_pcs.get(pc, 0) + 1
                    held.append(letter)
                    continue
                Queue(self._dlq.sqs, url).send_as_is(letter)
                self._delete([letter])
                report.moved[pc] = report.moved.get(pc, 0) + 1
        finally:
            self._release(held)
        return report

    def sweep(self, pc_name: str, holds: Callable[[DownloadMessage], bool]) -> int:
        """Delete this PC's letters whose content it already holds; returns how many.

        Letters for other PCs, and this PC's letters for what it does not hold (really
        stuck), are made visible again at once.
        """
        cleared = 0
        others: list[MessageTypeDef] = []
        try:
            for letter in self._letters(MAX_LETTERS):
                if letter_pc(letter) != pc_name or not self._stale(letter, holds):
                    others.append(letter)
                    continue
                self._delete([letter])
                cleared += 1
        finally:
            self._release(others)
        return cleared

    # Steps -----------------------------------------------------------------------------
    def _stale(self, letter: MessageTypeDef, holds: Callable[[DownloadMessage], bool]) -> bool:
        try:
            item = DownloadMessage.from_json(letter.get("Body", ""))
        except ValidationError:
            return False  # not a download message: a person should look at it
        if not holds(item):
            return False
        logger.info(
            "cleared a dead letter for %s (%s): this PC already holds that file",
            item.key,
            item.filename,
        )
        return True

    def _queue_of(self, pc: str) -> str | None:
        try:
            return self._registry.queue_url(pc)
        except MobileBackupError as exc:
            logger.warning("a dead letter is for PC %r, which has no queue: %s", pc, exc)
            return None

    def _letters(self, limit: int | None) -> Iterator[MessageTypeDef]:
        """Every visible letter once (each stays hidden while this pass runs)."""
        seen = 0
        while limit is None or seen < limit:
            want = 10 if limit is None else max(1, min(10, limit - seen))
            messages = self._dlq.receive(want, visibility_s=HOLD_SECONDS, message_attributes=True)
            if not messages:
                return
            seen += len(messages)
            yield from messages

    def _delete(self, letters: list[MessageTypeDef]) -> None:
        handles = [(str(i), m.get("ReceiptHandle", "")) for i, m in enumerate(letters)]
        self._dlq.delete_batch(handles)

    def _release(self, letters: list[MessageTypeDef]) -> None:
        """Make letters this pass did not settle visible again at once (best effort: they
        come back by themselves after `HOLD_SECONDS`)."""
        handles = [(str(i), m.get("ReceiptHandle", "")) for i, m in enumerate(letters)]
        refused = self._dlq.change_visibility(handles, 0).refused
        if refused:
            logger.info("%d dead letter(s) will reappear in %d s", len(refused), HOLD_SECONDS)
