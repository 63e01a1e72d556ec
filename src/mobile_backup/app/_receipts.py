"""The two-step receipts shown in the history: in the cloud, then on your PC.

A file is safe to delete from the phone only once the PC agent has written its receipt:
the bytes were re-hashed on the PC, fsynced and placed. The ledger record says which step a
file has reached; this module turns that into the words the history shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mobile_backup.app._errors import sentence
from mobile_backup.core import FileStatus
from mobile_backup.core.wire import FileView

CLOUD_DONE = "in the cloud ✓ (checksum verified by S3)"
CLOUD_WAITING = "not in the cloud yet (upload not finished)"
PC_WAITING = "waiting for your PC…"
PC_NOT_YET = "not on your PC yet"


def pc_done(path: str) -> str:
    return f"on your PC ✓ (verified, {path})"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One file of the history, ready to display."""

    sha256: str
    filename: str
    size: int
    taken_at: datetime | None
    created_at: datetime
    status: FileStatus
    in_cloud: bool
    on_pc: bool
    cloud_text: str
    pc_text: str
    failed_text: str | None = None
    host: str | None = None
    pc_lines: tuple[str, ...] = ()
    """One line per PC that has the file (several PCs), else just `pc_text`."""
    deletable: bool = False
    """The ledger's verdict (`core.may_free`): the rule free-up applies, and only that."""

    @property
    def failed(self) -> bool:
        return self.failed_text is not None

    @property
    def safe_to_delete(self) -> bool:
        """True once a PC holds the file and its audit has re-verified it since: exactly
        what `free-up` deletes."""
        return self.on_pc and self.deletable


@dataclass(frozen=True, slots=True)
class HistoryCounts:
    total: int = 0
    in_cloud: int = 0
    on_pc: int = 0
    failed: int = 0

    @property
    def waiting_for_pc(self) -> int:
        return self.in_cloud - self.on_pc

    def summary(self) -> str:
        parts = [f"{self.total} {'file' if self.total == 1 else 'files'}"]
        parts.append(f"{self.in_cloud} in the cloud")
        parts.append(f"{self.on_pc} on your PC")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " · ".join(parts)


def history_entry(record: FileView) -> HistoryEntry:
    """What the history says about one ledger record."""
    status = record.status
    in_cloud = status in (FileStatus.UPLOADED, FileStatus.DOWNLOADED)
    # Only a receipt proves the PC has the file: a status alone is not enough.
    on_pc = status == FileStatus.DOWNLOADED and record.receipt is not None
    failed_text = None
    if status == FileStatus.FAILED:
        failed_text = sentence(f"Failed: {record.failed_reason or 'no reason was recorded'}")
    if on_pc and record.receipt is not None:
        pc_text = pc_done(record.receipt.path)
    elif in_cloud:
        pc_text = PC_WAITING
    else:
        pc_text = PC_NOT_YET
    pc_lines: tuple[str, ...] = (pc_text,)
    if on_pc and len(record.receipts) > 1:
        pc_lines = tuple(
            f"on PC {name} ✓ (verified, {r.path})" for name, r in sorted(record.receipts.items())
        )
    return HistoryEntry(
        sha256=record.sha256,
        filename=record.filename,
        size=record.size,
        taken_at=record.taken_at,
        created_at=record.created_at,
        status=status,
        in_cloud=in_cloud,
        on_pc=on_pc,
        cloud_text=CLOUD_DONE if in_cloud else CLOUD_WAITING,
        pc_text=pc_text,
        failed_text=failed_text,
        host=record.receipt.host if record.receipt else None,
        pc_lines=pc_lines,
        deletable=record.deletable,
    )


def history(records: Iterable[FileView]) -> list[HistoryEntry]:
    """Every record as an entry, newest first (failed ones first of all: they need action)."""
    entries = [history_entry(r) for r in records]
    entries.sort(key=lambda e: e.created_at, reverse=True)
    entries.sort(key=lambda e: not e.failed)
    return entries


def count(entries: Iterable[HistoryEntry]) -> HistoryCounts:
    total = in_cloud = on_pc = failed = 0
    for e in entries:
        total += 1
        in_cloud += e.in_cloud
        on_pc += e.on_pc
        failed += e.failed
    return HistoryCounts(total=total, in_cloud=in_cloud, on_pc=on_pc, failed=failed)
