"""The app's "Free up space": the CLI's free-up over the folders chosen for automatic backup.

The same two steps and the same rule as `mobile-backup free-up` (`client/_freeing.py`,
`core.may_free`): a preview the person reads, then, once they confirm, only the files that
were eligible in that preview and have not changed since go to the trash.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mobile_backup.client import (
    FREE,
    FreedFile,
    FreeItem,
    UploadSession,
    free_planned,
    plan_free_up,
)

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def can_touch_files(*, web: bool, client_ip: str | None) -> bool:
    """Whether the app may read and delete this device's files: every installed build, and
    a browser on the very computer that serves `app --web` (its files are that computer's);
    never a browser elsewhere (a phone on the LAN: its files are out of reach)."""
    return not web or (client_ip or "").split("%")[0] in LOOPBACK


@dataclass(frozen=True, slots=True)
class FreePreview:
    """What free-up would do over the chosen folders."""

    items: tuple[FreeItem, ...] = ()
    kept_reasons: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @property
    def eligible(self) -> list[FreeItem]:
        return [i for i in self.items if i.action == FREE]

    @property
    def size(self) -> int:
        return sum(i.size for i in self.eligible)


def preview(session: UploadSession, folders: tuple[str, ...]) -> FreePreview:
    """Re-hash and ask the ledger (raises if it cannot be reached: nothing is eligible)."""
    existing = [Path(f) for f in folders if Path(f).is_dir()]
    if not existing:
        return FreePreview()
    items = plan_free_up(session.api, existing, journal=session.journal)
    kept = Counter(i.reason for i in items if i.action != FREE)
    return FreePreview(items=tuple(items), kept_reasons=tuple(kept.most_common()))


def free(plan: FreePreview) -> list[FreedFile]:
    """Move the previewed eligible files to the trash (each only if unchanged since)."""
    return free_planned(list(plan.items))
