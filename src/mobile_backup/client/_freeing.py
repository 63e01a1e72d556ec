"""Free up space: delete from this device only what a PC has verified (`core.may_free`).

Two steps, so that nothing uncertain is ever deleted:

1. `plan_free_up` looks at every photo and video under the given paths, re-hashes each one
   now (never a cached hash: the bytes on this device are what must match) and asks the
   ledger of the current deployment, which applies the one rule. A file that is new, still
   being written, changed while it was read, changed since it was backed up or unknown to
   the ledger stays, with the reason. If the ledger cannot be reached, nothing is planned.
2. `free_planned` deletes the planned files one at a time (to the platform's trash, or for
   good), each only if its size and modification time are still the ones that were hashed.
   Each deletion is one rename or unlink, so a kill at any instant leaves every file either
   in place or gone, and only eligible ones gone; running again finishes the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.client._api import ApiClient
from mobile_backup.client._journal import Journal
from mobile_backup.client._media import discover
from mobile_backup.client._parts import FileStamp, hash_file
from mobile_backup.client._scan import Scan
from mobile_backup.core import NOT_BACKED_UP, MobileBackupError, chunked
from mobile_backup.instrument import crash_point
from mobile_backup.media import is_photo_or_video

LOOKUP_BATCH = 100
SETTLE_SECONDS = 60.0
"""A file modified this recently may still be being written: it stays."""

FREE = "free"
KEEP = "keep"


@dataclass(frozen=True, slots=True)
class FreeItem:
    """One file and what free-up does with it."""

    path: Path
    size: int
    action: str
    """`free` (eligible) or `keep`."""
    reason: str
    sha256: str | None = None
    stamp: FileStamp | None = None


@dataclass(frozen=True, slots=True)
class FreedFile:
    """What happened to one planned file."""

    path: Path
    size: int
    freed: bool
    reason: str


def plan_free_up(
    api: ApiClient,
    paths: Iterable[Path],
    *,
    journal: Journal | None = None,
    keep_days: float = 0.0,
    now: float | None = None,
    on_file: Callable[[Path], None] | None = None,
    scan: Scan | None = None,
) -> list[FreeItem]:
    """Every photo and video under `paths`, with what free-up would do with it and why.

    `scan` is `discover(paths)` when the caller has already made it (to count the files).

    Raises whatever the ledger lookup raises (unreachable, signed out): then nothing at all
    is eligible, and the caller deletes nothing.
    """
    now = time.time() if now is None else now
    given = [Path(p).expanduser() for p in paths]
    # Only files under what was named are ever deleted: a link in the folder to a photo
    # elsewhere (or a named link) would otherwise delete that other file.
    roots = [p.resolve() for p in given if not p.is_symlink()]
    items: list[FreeItem] = []
    hashed: list[FreeItem] = []
    for path in (scan or discover(given)).files:
        if not any(path == root or path.is_relative_to(root) for root in roots):
            items.append(FreeItem(path, 0, KEEP, "reached through a link: not deleted"))
            continue
        if not _media(path):  # named on the command line: free-up only removes what it backs up
            items.append(FreeItem(path, 0, KEEP, NOT_MEDIA))
            continue
        item = _hash_now(path, keep_days=keep_days, now=now)
        if on_file is not None:
            on_file(path)
        (hashed if item.sha256 else items).append(item)
    answers = {}
    for batch in chunked(sorted({i.sha256 for i in hashed if i.sha256}), LOOKUP_BATCH):
        answers.update(api.lookup(batch))
    for item in hashed:
        assert item.sha256 is not None
        answer = answers.get(item.sha256)
        if answer is not None and answer.deletable:
            items.append(_with(item, FREE, answer.reason))
            continue
        reason = answer.reason if answer is not None else NOT_BACKED_UP
        if reason == NOT_BACKED_UP and journal is not None:
            earlier = journal.backed_up_from(item.path) - {item.sha256}
            if earlier:
                reason = "changed since it was backed up"
        items.append(_with(item, KEEP, reason))
    items.sort(key=lambda i: str(i.path))
    return items


def free_planned(
    items: Sequence[FreeItem],
    *,
    permanently: bool = False,
    on_freed: Callable[[FreedFile], None] | None = None,
) -> list[FreedFile]:
    """Delete the eligible files of a plan (to the trash, or for good with `permanently`)."""
    done: list[FreedFile] = []
    for item in items:
        if item.action != FREE or item.stamp is None:
            continue
        result = _free_one(item, permanently=permanently)
        done.append(result)
        if on_freed is not None:
            on_freed(result)
    return done


NOT_MEDIA = "not a photo or video (free-up removes only photos and videos)"


def _media(path: Path) -> bool:
    try:
        return is_photo_or_video(path)
    except OSError:
        return True  # unreadable: said when it is hashed


def _hash_now(path: Path, *, keep_days: float, now: float) -> FreeItem:
    try:
        before = FileStamp.of(path)
    except OSError as exc:
        return FreeItem(path, 0, KEEP, f"cannot be read: {exc.strerror or exc}")
    age = now - before.mtime_ns / 1e9
    if age < SETTLE_SECONDS:
        return FreeItem(path, before.size, KEEP, "changed in the last minute (may be in use)")
    if keep_days and age < keep_days * 86400:
        days = f"{keep_days:g} day{'' if keep_days == 1 else 's'}"
        return FreeItem(path, before.size, KEEP, f"newer than {days}")
    try:
        digest = hash_file(path)
        after = FileStamp.of(path)
    except (OSError, MobileBackupError) as exc:
        return FreeItem(path, before.size, KEEP, f"cannot be read: {exc}")
    if after != before or digest.stamp != before:
        return FreeItem(path, before.size, KEEP, "changed while it was being checked")
    return FreeItem(path, before.size, KEEP, "", sha256=digest.sha256, stamp=before)


def _with(item: FreeItem, action: str, reason: str) -> FreeItem:
    return FreeItem(item.path, item.size, action, reason, item.sha256, item.stamp)


def _free_one(item: FreeItem, *, permanently: bool) -> FreedFile:
    try:
        if FileStamp.of(item.path) != item.stamp:
            return FreedFile(item.path, item.size, False, "changed since it was checked: kept")
        crash_point("freeup.delete")  # its own group: the torture run draws client.*
        if permanently:
            os.unlink(item.path)
        else:
            from send2trash import send2trash

            send2trash(item.path)
    except FileNotFoundError:
        return FreedFile(item.path, item.size, False, "already gone")
    except OSError as exc:
        return FreedFile(item.path, item.size, False, f"could not delete: {exc}")
    except Exception as exc:  # send2trash's own errors (no trash on this volume, ...)
        return FreedFile(item.path, item.size, False, f"could not move to the trash: {exc}")
    return FreedFile(item.path, item.size, True, "deleted" if permanently else "moved to trash")
