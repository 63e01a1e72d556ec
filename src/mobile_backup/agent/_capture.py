"""When was it taken? Read from the verified file when the phone did not say.

Order of trust (DESIGN: the phone's own capture time wins when sent): the ledger's/message's
`taken_at` → EXIF `DateTimeOriginal` (Pillow; HEIC/HEIF through pillow-heif) → the video
container's creation date (hachoir) → the upload time. Only the headers are parsed: neither
library decodes pixels or frames here, and any parse failure just means "no date".
"""

from __future__ import annotations

import locale
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mobile_backup.core import exif_capture_time

logger = logging.getLogger(__name__)

_exif_time = exif_capture_time

# Earlier dates are placeholders (QuickTime's 1904 epoch, zeroed EXIF), not capture times.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1)
_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".avi", ".mkv", ".webm", ".mts"})
_hachoir_lock = threading.Lock()


def media_capture_time(path: Path, *, content_type: str = "") -> datetime | None:
    """The capture time recorded inside the file, or None.

    EXIF times without an offset tag are returned naive (the camera's wall clock, which is
    what a person files by); video creation dates are UTC by the container specs.
    """
    is_video = content_type.startswith("video/") or path.suffix.lower() in _VIDEO_SUFFIXES
    readers = (_video_time, _exif_time) if is_video else (_exif_time, _video_time)
    for reader in readers:
        try:
            found = reader(path)
        except Exception as exc:  # a hostile or truncated file is just a file without a date
            logger.debug("no capture time from %s via %s: %s", path, reader.__name__, exc)
            continue
        if found is not None and _plausible(found):
            return found
    return None


def _plausible(value: datetime) -> bool:
    naive = value.replace(tzinfo=None)
    return EARLIEST_PLAUSIBLE <= naive <= datetime.now() + timedelta(days=2)


def _video_time(path: Path) -> datetime | None:
    from hachoir.core import config as hachoir_config
    from hachoir.metadata import extractMetadata
    from hachoir.parser import createParser

    hachoir_config.quiet = True  # it would print parser warnings to stderr

    # hachoir sets the process locale to "C" while parsing date strings and "restores" the
    # value setlocale returned, which is the new one: without this, one video would leave
    # the whole agent with an ASCII locale. Serialised, because the locale is global.
    with _hachoir_lock:
        saved = locale.setlocale(locale.LC_ALL)
        try:
            parser = createParser(str(path))
            if parser is None:
                return None
            with parser:
                metadata = extractMetadata(parser)
        finally:
            locale.setlocale(locale.LC_ALL, saved)
    if metadata is None or not metadata.has("creation_date"):
        return None
    value = metadata.get("creation_date")
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
