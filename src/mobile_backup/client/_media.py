"""Finding the photos and videos to back up, and what can be said about them up front."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from mobile_backup.client._scan import Scan, Skipped, group_skipped, scan_folder
from mobile_backup.client.exceptions import NoFilesError
from mobile_backup.core import Capture, CaptureSource, plausible
from mobile_backup.media import media_suffix, read_capture, sniff

log = logging.getLogger(__name__)

_EXTRA_TYPES = {".heic": "image/heic", ".heif": "image/heif", ".dng": "image/x-adobe-dng"}


def is_media(path: Path) -> bool:
    """Whether a folder scan backs the file up by its name alone (see `client/_scan.py`)."""
    return media_suffix(path.name) and not path.name.startswith(".")


def discover(paths: Iterable[Path]) -> Scan:
    """Files named explicitly are taken as they are; folders are scanned (`scan_folder`).

    Raises NoFilesError naming the paths that do not exist, or when there is nothing to back
    up (saying what was found instead).
    """
    found: dict[Path, None] = {}
    skipped: list[Skipped] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            folder = scan_folder(path)
            found.update((p, None) for p in _resolved(path, folder.files))
            skipped.extend(folder.skipped)
        elif path.exists():  # named explicitly: whatever it is (unreadable: reported as failed)
            found[path.resolve()] = None
        else:
            missing.append(str(raw))
    if missing:
        raise NoFilesError(f"no such file or folder: {', '.join(missing)}")
    if not found:
        counts = ", ".join(f"{len(v)} {k}" for k, v in group_skipped(skipped).items())
        raise NoFilesError(
            "no photos or videos found in the given paths" + (f" ({counts})" if counts else "")
        )
    return Scan(files=list(found), skipped=skipped)


def _resolved(root: Path, files: list[Path]) -> Iterator[Path]:
    """`p.resolve()` of each file a walk of `root` found, resolving `root` once: the walk
    enters no linked folder, so only a file that is itself a link needs resolving (one
    `lstat` each instead of one per folder of its path)."""
    base, real = str(root).rstrip(os.sep) + os.sep, root.resolve()
    for path in files:
        text = str(path)
        if len(base) < 2 or not text.startswith(base) or os.path.islink(text):
            yield path.resolve()
        else:
            yield real / text[len(base) :]


def content_type(path: Path) -> str:
    name = path.name.rstrip(". ") or path.name
    suffix = Path(name).suffix.lower()
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    if guessed is None or not media_suffix(name):
        # No photo or video extension (`nul`, `IMG_1`): the first bytes may say.
        with contextlib.suppress(OSError):
            guessed = sniff(path) or guessed
    return guessed or "application/octet-stream"


_LIVE_PHOTO_SUFFIXES = (".heic", ".heif", ".jpg", ".jpeg")


def capture_of(path: Path, *, content_type: str, file_time: bool = True) -> Capture | None:
    """The best capture time the client has for a file, tagged with its source.

    A Live Photo's video (`IMG_5000.MOV` beside `IMG_5000.HEIC`) takes its photo's time, so
    the PC files the pair side by side; otherwise what the file says (EXIF, the video's
    header), a date in its name, else its modification time (skipped with `file_time=False`,
    for a copy whose time says only when it was copied). Times without an offset are sent
    as UTC, which is how the API and the PC read a wall-clock time.
    """
    found: Capture | None = None
    if content_type.startswith("video/"):
        photo = _live_photo_of(path)
        if photo is not None:
            taken = _own_capture(photo, content_type="image/heic", file_time=file_time)
            if taken is not None:
                found = Capture(taken.when, CaptureSource.LIVE_PHOTO)
    found = found or _own_capture(path, content_type=content_type, file_time=file_time)
    if found is None:
        return None
    when = found.when
    return Capture(when if when.tzinfo else when.replace(tzinfo=UTC), found.source)


def _own_capture(path: Path, *, content_type: str, file_time: bool) -> Capture | None:
    found = read_capture(path, filename=path.name, content_type=content_type)
    if found is None and file_time:
        with contextlib.suppress(OSError, ValueError, OverflowError):
            when = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            if plausible(when):
                found = Capture(when, CaptureSource.FILE_TIME)
    return found


def _live_photo_of(video: Path) -> Path | None:
    """The photo of a Live Photo pair: same folder, same name, a photo's extension."""
    for suffix in _LIVE_PHOTO_SUFFIXES:
        for candidate in (video.with_suffix(suffix), video.with_suffix(suffix.upper())):
            with contextlib.suppress(OSError, ValueError):
                if candidate != video and candidate.is_file():
                    return candidate
    return None
