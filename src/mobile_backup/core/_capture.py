"""The one EXIF capture-time reader, for the upload client and the PC agent alike."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132
_heif_lock = threading.Lock()
_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    with _heif_lock:
        if _heif_registered:
            return
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # the agent still works; HEIC files fall back to upload time
            logger.warning("pillow-heif is not installed; HEIC capture times are not read")
        _heif_registered = True


def exif_capture_time(path: Path) -> datetime | None:
    """EXIF `DateTimeOriginal` (else `DateTime`) of a photo, HEIC/HEIF included.

    Naive (the camera's wall clock, which is what a person files by) unless the file has an
    `OffsetTimeOriginal`. Raises whatever Pillow raises on a file it cannot read; None when
    there is no usable date. Pillow is imported here, on first use: the Lambda functions and
    the CLI's start never pay for it.
    """
    _register_heif()
    from PIL import Image

    with Image.open(path) as image:
        exif = image.getexif()
    sub: Any = exif.get_ifd(_EXIF_IFD)
    raw = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not isinstance(raw, str):
        return None
    when = datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    offset = sub.get(_OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str):
        tz = _parse_offset(offset.strip("\x00 "))
        if tz is not None:
            return when.replace(tzinfo=tz)
    return when


def _parse_offset(text: str) -> timezone | None:
    """`+02:00` → UTC+2 (EXIF 2.31 OffsetTimeOriginal)."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)
