"""Finding the photos and videos to back up, and what can be said about them up front."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mobile_backup.client._scan import (
    Scan,
    Skipped,
    group_skipped,
    media_suffix,
    scan_folder,
    sniff,
)
from mobile_backup.client.exceptions import NoFilesError
from mobile_backup.core import exif_capture_time

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
            found.update((p.resolve(), None) for p in folder.files)
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


def capture_time(path: Path) -> datetime | None:
    """The photo's EXIF capture time, when Pillow is installed and the file has one.

    The phone app sends the capture time it knows; on a desktop it is read from the file
    (core's one EXIF reader, as the agent does). Without a time zone in the EXIF data the
    time is sent as UTC, which is how the API reads a time without an offset.
    """
    try:
        when = exif_capture_time(path)
    except ImportError:  # Pillow comes with the agent/all extras, not the bare client
        return None
    except Exception:  # not an image Pillow knows, or damaged: no capture time, not an error
        return None
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
