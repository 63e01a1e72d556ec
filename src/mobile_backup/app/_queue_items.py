"""The queue's items and snapshots: what the queue screen draws, as plain values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.app._format import human_bytes, human_rate


class ItemState(enum.StrEnum):
    RECEIVING = "receiving"  # web mode: the browser is still sending the file to the app
    WAITING = "waiting"
    CHECKING = "checking"  # taken by the runner: hashing and asking for an upload URL
    UPLOADING = "uploading"
    DONE = "done"
    SKIPPED = "skipped"  # the cloud already had these bytes
    NOT_MEDIA = "not_media"  # not a photo or video: passed over, as the CLI's scan does
    FAILED = "failed"


FINISHED = frozenset({ItemState.DONE, ItemState.SKIPPED, ItemState.NOT_MEDIA, ItemState.FAILED})
SUCCEEDED = frozenset({ItemState.DONE, ItemState.SKIPPED})
SETTLED = SUCCEEDED | {ItemState.NOT_MEDIA}
"""Nothing more to do for these: never retried, never saved for the next start."""
NOT_MEDIA_TEXT = "skipped: not a photo or video"


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One file in the queue, as the screen shows it."""

    path: Path
    name: str
    size: int
    state: ItemState = ItemState.WAITING
    sent: int = 0
    received: float = 0.0
    error: str | None = None

    @property
    def fraction(self) -> float:
        if self.state in SETTLED:
            return 1.0
        if self.state == ItemState.RECEIVING:
            return 0.0
        return min(1.0, self.sent / self.size) if self.size else 0.0

    @property
    def status_text(self) -> str:
        match self.state:
            case ItemState.RECEIVING:
                return f"receiving from the browser… {round(self.received * 100)} %"
            case ItemState.WAITING:
                return "waiting"
            case ItemState.CHECKING:
                return "checking…"
            case ItemState.UPLOADING:
                return f"{human_bytes(self.sent)} of {human_bytes(self.size)}"
            case ItemState.DONE:
                return "backed up ✓"
            case ItemState.SKIPPED:
                return "already backed up ✓"
            case ItemState.NOT_MEDIA:
                return NOT_MEDIA_TEXT
            case ItemState.FAILED:
                return self.error or "failed"
        return str(self.state)  # pragma: no cover


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """An immutable view of the whole queue at one instant."""

    items: tuple[QueueItem, ...]
    paused: bool
    speed: float
    version: int

    def count(self, *states: ItemState) -> int:
        return sum(1 for i in self.items if i.state in states)

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.items)

    @property
    def done_bytes(self) -> int:
        return sum(i.size if i.state in FINISHED else min(i.sent, i.size) for i in self.items)

    @property
    def finished(self) -> int:
        return self.count(*FINISHED)

    @property
    def failed(self) -> int:
        return self.count(ItemState.FAILED)

    @property
    def not_media(self) -> int:
        return self.count(ItemState.NOT_MEDIA)

    @property
    def active(self) -> bool:
        """Something is still to do (waiting, receiving or in flight)."""
        return self.finished < len(self.items)

    @property
    def fraction(self) -> float:
        if not self.items:
            return 0.0
        if not self.active:
            return 1.0
        total = self.total_bytes
        if total == 0:
            return self.finished / len(self.items)
        return min(self.done_bytes / total, 0.999)  # 100 % means every file has finished

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)

    def headline(self) -> str:
        if not self.items:
            return "Nothing to back up right now"
        if not self.active:
            if self.failed:
                return f"{self.failed} of {len(self.items)} files need attention"
            if self.not_media == len(self.items):
                return "Nothing to back up: not photos or videos"
            if self.not_media:
                return f"All photos and videos backed up · {self.not_media} skipped"
            return "All files backed up"
        if self.paused:
            return "Paused"
        if all(
            i.state in FINISHED or (i.state == ItemState.UPLOADING and i.sent >= i.size)
            for i in self.items
        ):
            return "Finishing…"  # every byte is sent; the cloud is confirming the last
        return "Backing up…"

    def detail(self) -> str:
        return (
            f"{self.finished} of {len(self.items)} files · "
            f"{human_bytes(self.done_bytes)} of {human_bytes(self.total_bytes)}"
        )

    def rate(self) -> str:
        """The speed while something is moving ('' otherwise), never split across lines."""
        if self.active and not self.paused and self.speed > 0:
            return human_rate(self.speed)
        return ""
