"""What a folder scan backs up, decided file by file, with a reason for every file it leaves.

A file is backed up when its name says it is a photo or video (the extension is a hint:
`x.jpg.` and `y.jpg ` count, as phones and Windows copies make them) or when its first bytes
say so (`nul` holding a JPEG). Nothing is dropped silently: every file a scan does not back
up comes back as a `Skipped` with one of the reasons below, for the summary to count and
`--json` to list.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mobile_backup.media import media_suffix, sniff

HIDDEN = "hidden"
PHONE_TRASH = "in the phone's trash or still being written"
NOT_MEDIA = "not a photo or video"
UNREADABLE = "unreadable"
VANISHED = "vanished while scanning"
NOT_A_FILE = "not a regular file"
LINKED_FOLDER = "a link to a folder (not followed)"
BROKEN_LINK = "a link to nothing (what it pointed to is gone)"
SKIP_REASONS = (
    HIDDEN, PHONE_TRASH, NOT_MEDIA, UNREADABLE, VANISHED, NOT_A_FILE, LINKED_FOLDER, BROKEN_LINK,
)  # fmt: skip

# Android moves deleted photos to `.trashed-<expiry>-<name>` and writes new ones as
# `.pending-<expiry>-<name>`; desktops keep deleted files in these folders.
_TRASH_PREFIXES = (".trashed-", ".pending-")
_TRASH_FOLDERS = frozenset({".trash", ".trashes", "$recycle.bin", ".thumbnails"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file a scan found and did not back up, and why (one of `SKIP_REASONS`)."""

    path: Path
    reason: str
    detail: str | None = None


@dataclass(slots=True)
class Scan:
    """What a scan found: the files to back up, in order, and the ones left with a reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def group_skipped(skipped: Iterable[Skipped]) -> dict[str, list[Skipped]]:
    """Skipped files by reason, the biggest group first."""
    groups: dict[str, list[Skipped]] = {}
    for item in skipped:
        groups.setdefault(item.reason, []).append(item)
    order = Counter({reason: len(items) for reason, items in groups.items()})
    return {reason: groups[reason] for reason, _ in order.most_common()}


def _parts_under(path: Path, root: Path) -> tuple[str, ...]:
    """`path.relative_to(root).parts`, by string when `path` was made under `root` (a
    walk's files: pathlib's parsing is most of the cost of a folder of years)."""
    text, base = str(path), str(root).rstrip(os.sep)
    if base and text.startswith(base + os.sep):
        return tuple(text[len(base) + 1 :].split(os.sep))
    return path.relative_to(root).parts


def _trash(parts: tuple[str, ...]) -> bool:
    return any(p.lower().startswith(_TRASH_PREFIXES) or p.lower() in _TRASH_FOLDERS for p in parts)


def classify(path: Path, root: Path) -> Skipped | None:
    """None when a file found under `root` is to be backed up, else why it is not."""
    parts = _parts_under(path, root)
    if _trash(parts):
        return Skipped(path, PHONE_TRASH)
    if any(p.startswith(".") for p in parts):
        return Skipped(path, HIDDEN)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Skipped(path, BROKEN_LINK if path.is_symlink() else VANISHED)
    except OSError as exc:
        return Skipped(path, UNREADABLE, exc.strerror or str(exc))
    if not stat.S_ISREG(mode):
        return Skipped(path, NOT_A_FILE)
    if media_suffix(path.name):
        return None
    try:
        kind = sniff(path)
    except FileNotFoundError:
        return Skipped(path, VANISHED)
    except OSError as exc:
        return Skipped(path, UNREADABLE, exc.strerror or str(exc))
    return None if kind is not None else Skipped(path, NOT_MEDIA)


def walk(root: Path) -> Iterator[Path | Skipped]:
    """Every file under `root`, sorted, plus a `Skipped` for folders it cannot enter.

    Symbolic links to files are files; links to folders are reported, not followed (they can
    loop, or lead out of the folder the user named).
    """
    failures: list[OSError] = []
    for folder, dirs, names in os.walk(root, onerror=failures.append):
        here = Path(folder)
        while failures:
            exc = failures.pop()
            where = Path(exc.filename) if exc.filename else here
            yield Skipped(where, UNREADABLE, exc.strerror or str(exc))
        dirs.sort()
        for d in list(dirs):
            if (here / d).is_symlink():
                dirs.remove(d)
                yield Skipped(here / d, LINKED_FOLDER)
        for name in sorted(names):
            yield here / name
    while failures:  # the root itself, or the last folder walked
        exc = failures.pop()
        yield Skipped(Path(exc.filename or root), UNREADABLE, exc.strerror or str(exc))


def scan_folder(root: Path) -> Scan:
    """Classify every file under `root` (see `classify`)."""
    result = Scan()
    for entry in walk(root):
        if isinstance(entry, Skipped):
            result.skipped.append(entry)
            continue
        skipped = classify(entry, root)
        if skipped is None:
            result.files.append(entry)
        else:
            result.skipped.append(skipped)
    return result
