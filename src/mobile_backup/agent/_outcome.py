"""What became of one download message (or one reconciled ledger entry)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mobile_backup.agent._placement import Placement


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
    REFUSED = "refused"
    """Not a photo or video by its content: kept out of the library, the ledger says why."""
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
