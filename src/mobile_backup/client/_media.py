"""Finding the photos and videos to back up, and what can be said about them up front."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mobile_backup.client.exceptions import NoFilesError

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".gif", ".tif", ".tiff", ".dng",
        ".raw", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".avif",
        ".mp4", ".mov", ".m4v", ".3gp", ".mkv", ".webm", ".avi",
    }
)  # fmt: skip
_EXTRA_TYPES = {".heic": "image/heic", ".heif": "image/heif", ".dng": "image/x-adobe-dng"}
EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_OFFSET_TIME_ORIGINAL = 0x9011
EXIF_IFD = 0x8769


def is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES and not path.name.startswith(".")


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files named explicitly are taken as they are; folders are searched for media.

    Raises NoFilesError when nothing was found, naming the paths that do not exist.
    """
    found: dict[Path, None] = {}
    missing: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and is_media(child) and not _hidden(child, path):
                    found[child.resolve()] = None
        else:
            missing.append(str(raw))
    if missing:
        raise NoFilesError(f"no such file or folder: {', '.join(missing)}")
    if not found:
        raise NoFilesError("no photos or videos found in the given paths")
    return list(found)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def capture_time(path: Path) -> datetime | None:
    """The photo's EXIF DateTimeOriginal when Pillow is available and the file has one.

    The phone app sends the capture time it knows; on a desktop we read it from the file.
    Without a time zone in the EXIF data, the time is taken as UTC.
    """
    try:
        from PIL import Image  # optional: only with the agent/all extras
    except ImportError:
        return None
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            sub = exif.get_ifd(EXIF_IFD)
            raw = sub.get(EXIF_DATETIME_ORIGINAL) or exif.get(0x0132)
            offset = sub.get(EXIF_OFFSET_TIME_ORIGINAL)
    except Exception:  # not an image Pillow knows, or damaged: no capture time, not an error
        return None
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        if isinstance(offset, str) and offset.strip():
            return datetime.fromisoformat(when.isoformat() + offset.strip())
        return when.replace(tzinfo=UTC)
    except ValueError:
        log.debug("ignoring unparseable EXIF time %r in %s", raw, path)
        return None
