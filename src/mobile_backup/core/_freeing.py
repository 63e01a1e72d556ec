"""When may a phone delete its copy? The one rule, for the API, the CLI and the app alike.

Only when a PC holds the very bytes and has checked again since: the ledger has that PC's
receipt for this content (the PC re-hashed, fsynced and placed it), the PC's audit found it
still there (no `missing@PC` flag), and that PC finished a complete audit after the receipt
was written, within `VERIFIED_WITHIN`. Anything else keeps the file, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mobile_backup.core._models import FileRecord, FileStatus

VERIFIED_WITHIN = timedelta(days=7)
"""How recent a PC's audit must be for its receipt to let a phone delete a file."""

NOT_BACKED_UP = "not backed up yet"
NOT_ON_A_PC = "in the cloud, not on a PC yet"


@dataclass(frozen=True, slots=True)
class FreeVerdict:
    """Whether the phone may delete its copy, and the reason in a person's words."""

    deletable: bool
    reason: str


def may_free(
    record: FileRecord | None, audited: Mapping[str, datetime | None], *, now: datetime
) -> FreeVerdict:
    """The rule (module docstring) for one ledger entry of the caller's, at `now`;
    `audited` is when each PC (by name) last started a complete audit."""
    if record is None or record.status in (FileStatus.PENDING, FileStatus.FAILED):
        return FreeVerdict(False, NOT_BACKED_UP)
    if record.status != FileStatus.DOWNLOADED or not record.receipts:
        return FreeVerdict(False, NOT_ON_A_PC)
    reasons: list[str] = []
    for name, receipt in sorted(record.receipts.items()):
        missing = record.missing_on.get(name)
        audited_at = audited.get(name)
        if missing is not None:
            reasons.append(f"missing on PC {name} (found by its audit on {missing:%Y-%m-%d})")
        elif audited_at is None or audited_at < receipt.at:
            reasons.append(
                f"on PC {name} but not re-verified since {receipt.at:%Y-%m-%d %H:%M} UTC "
                "(its next audit will)"
            )
        elif now - audited_at > VERIFIED_WITHIN:
            reasons.append(f"on PC {name}, last verified {audited_at:%Y-%m-%d} (too long ago)")
        else:
            return FreeVerdict(True, f"on PC {name}, verified {audited_at:%Y-%m-%d %H:%M} UTC")
    return FreeVerdict(False, "; ".join(reasons))
