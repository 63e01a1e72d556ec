"""The two-step receipts shown in the history: in the cloud, then on your PC.

A file is safe to delete from the phone only once the PC agent has written its receipt:
the bytes were re-hashed on the PC, fsynced and placed. The ledger record says which step a
file has reached; this module turns that into the words the history shows.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mobile_backup.app._errors import sentence
from mobile_backup.app._format import human_ago, human_bytes, human_date
from mobile_backup.core import NOT_BACKED_UP, NOT_ON_A_PC, FileStatus
from mobile_backup.core.wire import CheckResponse, FileView

CLOUD_DONE = "in the cloud ✓ (checksum verified by S3)"
CLOUD_WAITING = "not in the cloud yet (upload not finished)"
PC_WAITING = "waiting for your PC…"
PC_NOT_YET = "not on your PC yet"
# How the receipt's capture source reads in the detail sheet.
SOURCE_WORDS = {
    "exif": "from the photo's EXIF",
    "video": "from the video's header",
    "live_photo": "from its Live Photo's photo",
    "filename": "from the file's name",
    "file_time": "the phone's file time",
    "upload": "upload time: no capture time was found",
}


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
    deletable: bool = False
    """The ledger's verdict (`core.may_free`): the rule free-up applies, and only that."""
    record: FileView | None = field(default=None, compare=False, repr=False)
    """The ledger record itself (the detail sheet shows all of it)."""

    @property
    def failed(self) -> bool:
        return self.failed_text is not None

    @property
    def is_video(self) -> bool:
        """By the content type the ledger recorded (else guessed from the name)."""
        kind = self.record.content_type if self.record else mimetypes.guess_type(self.filename)[0]
        return (kind or "").startswith("video/")

    @property
    def filed_at(self) -> datetime:
        """The date the PC files it by (its receipt's capture time), else the phone's."""
        receipt = self.record.receipt if self.record else None
        if receipt is not None and receipt.captured_at is not None:
            return receipt.captured_at
        return self.taken_at or self.created_at

    @property
    def pcs(self) -> tuple[str, ...]:
        """The PCs holding it, by name (a receipt from before PC names counts as `main`)."""
        if not self.on_pc or self.record is None:
            return ()
        return tuple(sorted(self.record.receipts)) or ("main",)

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
        parts = [f"{self.total:,} {'file' if self.total == 1 else 'files'}"]
        parts.append(f"{self.in_cloud:,} in the cloud")
        parts.append(f"{self.on_pc:,} on your PC")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
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
        deletable=record.deletable,
        record=record,
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


class Filter(StrEnum):
    """What the gallery shows."""

    ALL = "All"
    NOT_ON_PC = "Not on the PC yet"
    FAILED = "Failed"

    def keeps(self, e: HistoryEntry) -> bool:
        match self:
            case Filter.NOT_ON_PC:
                return not e.on_pc and not e.failed
            case Filter.FAILED:
                return e.failed
            case _:
                return True


@dataclass(frozen=True, slots=True)
class Month:
    """One month of the gallery: its title and its files, newest first."""

    title: str
    entries: tuple[HistoryEntry, ...]


def by_month(entries: Iterable[HistoryEntry], keep: Filter = Filter.ALL) -> list[Month]:
    """The entries `keep` allows, grouped by the month the PC files them under, newest
    month first; failed files (which have no such month yet) come first, as they need action."""
    kept = [e for e in entries if keep.keeps(e)]
    failed = [e for e in kept if e.failed]
    months: dict[tuple[int, int], list[HistoryEntry]] = {}
    for e in kept:
        if not e.failed:
            when = e.filed_at
            months.setdefault((when.year, when.month), []).append(e)
    out = [Month("Failed", tuple(failed))] if failed else []
    for (year, month), group in sorted(months.items(), reverse=True):
        group.sort(key=lambda e: e.filed_at.replace(tzinfo=None), reverse=True)
        out.append(Month(datetime(year, month, 1).strftime("%B %Y"), tuple(group)))
    return out


def household_pcs(entries: Iterable[HistoryEntry]) -> tuple[str, ...]:
    """Every PC that has written a receipt for any of these files."""
    return tuple(sorted({pc for e in entries for pc in e.pcs}))


def steps_text(e: HistoryEntry, pcs: Sequence[str]) -> str:
    """The two steps in words: 'in the cloud, on your PC' (per PC when there are several)."""
    if e.failed:
        return "failed"
    cloud = "in the cloud" if e.in_cloud else "not in the cloud yet"
    if not e.on_pc:
        return f"{cloud}, not on your PC yet"
    if len(pcs) <= 1:
        return f"{cloud}, on your PC"
    missing = [pc for pc in pcs if pc not in e.pcs]
    held = f"{cloud}, on PC {' and '.join(e.pcs)}"
    return held + (f", not yet on {' and '.join(missing)}" if missing else "")


def badge_text(e: HistoryEntry, pcs: Sequence[str]) -> str:
    """The tile's name for a screen reader: the file, then its two steps."""
    return f"{e.filename}: {steps_text(e, pcs)}"


def detail_lines(e: HistoryEntry) -> list[tuple[str, str]]:
    """The detail sheet: (label, value) pairs, every date labelled."""
    r = e.record
    lines: list[tuple[str, str]] = []
    receipt = r.receipt if r else None
    if receipt is not None and receipt.captured_at is not None:
        source = SOURCE_WORDS.get(receipt.capture_source or "", receipt.capture_source or "")
        lines.append(("Taken", f"{human_date(receipt.captured_at)} ({source})".replace(" ()", "")))
    elif e.taken_at is not None:
        source = SOURCE_WORDS.get((r.taken_at_source if r else None) or "", "")
        lines.append(("Taken", f"{human_date(e.taken_at)} ({source})".replace(" ()", "")))
    else:
        lines.append(("Taken", "unknown: the PC files it by its upload time"))
    uploaded = r.uploaded_at if r else None
    lines.append(("Uploaded", human_date(uploaded or e.created_at)))
    lines.append(("Size", human_bytes(e.size)))
    if e.failed_text is not None:
        lines.append(("Problem", e.failed_text))
        return lines
    lines.append(("Cloud", "✓ checksum verified by S3" if e.in_cloud else e.cloud_text))
    if r is not None and e.on_pc:
        receipts = r.receipts or ({"main": receipt} if receipt else {})
        for pc, rc in sorted(receipts.items()):
            if rc is None:
                continue
            lines.append((f"PC {pc}", f"✓ saved and checked, {human_date(rc.at)}"))
            lines.append(("Saved as", rc.path))
    else:
        lines.append(("PC", e.pc_text))
    if e.safe_to_delete:
        lines.append(("This phone", "You can delete it here: your PC has it and checked it again."))
    elif r is not None and r.free_reason:
        lines.append(("This phone", plain_keep_reason(r.free_reason)))
    return lines


def offers_check(e: HistoryEntry) -> bool:
    """Whether the detail sheet offers "Check now": a PC holds the file, and only its next
    check of its copies stands between the file and "you can delete it here"."""
    return e.on_pc and not e.failed and not e.safe_to_delete


def check_answer(answer: CheckResponse) -> str:
    """What "Check now" did, in a parent's words: which PCs will check, and which are off."""
    if not answer.pcs:
        return "No PC has collected your backups yet: start the agent on your PC first."
    now = answer.requested_at
    on = [pc.name for pc in answer.pcs if pc.running]
    said = []
    if on:
        names = " and ".join(f"PC {name}" for name in on)
        said.append(
            f"Asked {names} to check {'its' if len(on) == 1 else 'their'} copies now: this takes "
            "a few minutes. Open this file again to see the result."
        )
    for pc in answer.pcs:
        if pc.name in on:
            continue
        seen = f" (last seen {human_ago(pc.seen_at, now)})" if pc.seen_at else ""
        said.append(f"PC {pc.name} is not running{seen}: it checks when it next runs.")
    return " ".join(said)


_DAY = r"(\d{4}-\d{2}-\d{2})"
# The free-up rule's reasons (core.may_free), in a parent's words and the app's one date
# format; a reason not listed here is shown as it is.
_KEEP_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"missing on PC (\S+) \(found by its audit on {_DAY}\)"),
     "Keep it: PC {0} no longer has its copy (noticed {1})."),
    (re.compile(r"on PC (\S+) but not re-verified since .*"),
     "Keep it for now: PC {0} checks its copies every few hours; after its next check this "
     "one can go."),
    (re.compile(rf"on PC (\S+), last verified {_DAY} \(too long ago\)"),
     "Keep it for now: PC {0} last checked its copy on {1}; it can go after its next check."),
    (re.compile(re.escape(NOT_BACKED_UP)), "Keep it: it is not backed up yet."),
    (re.compile(re.escape(NOT_ON_A_PC)), "Keep it: it is in the cloud, not on your PC yet."),
)  # fmt: skip


def plain_keep_reason(reason: str) -> str:
    """Why a file should stay on the phone, said plainly."""
    said = []
    for part in reason.split("; "):
        for pattern, words in _KEEP_WORDS:
            found = pattern.fullmatch(part)
            if found:
                values = [_day(v) for v in found.groups()]
                said.append(words.format(*values))
                break
        else:
            said.append(f"Keep it for now: {part}.")
    return " ".join(said)


def _day(value: str) -> str:
    """`2026-12-03` in the app's date format (`03 Dec 2026`); anything else as it is."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").strftime("%d %b %Y")
    except ValueError:
        return value


def last_collected(entries: Iterable[HistoryEntry]) -> dict[str, datetime]:
    """When each PC last wrote a receipt for one of these files (the ledger's word)."""
    latest: dict[str, datetime] = {}
    for e in entries:
        if e.record is None:
            continue
        receipts = dict(e.record.receipts)
        if not receipts and e.record.receipt is not None:
            receipts = {e.record.receipt.pc or "main": e.record.receipt}
        for pc, rc in receipts.items():
            if pc not in latest or rc.at > latest[pc]:
                latest[pc] = rc.at
    return latest
