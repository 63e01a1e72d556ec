"""When was it taken? The agent's choice among the times it has for a downloaded file.

Order of trust: the time the phone read from the file (EXIF, the video's header, a Live
Photo's photo, an unambiguous date in the name) → the agent's own reading of the verified
bytes and the name (core's bounded readers: no pixels or frames decoded, no process-wide
lock, a hostile file is only a file without a date) → the phone's file modification time →
the upload time. The source of the time used is recorded in the receipt.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

from mobile_backup.core import Capture, CaptureSource, DownloadMessage, plausible
from mobile_backup.media import metadata_capture, read_capture

# Sources whose times are the camera's wall clock (EXIF mostly has no offset; a name never
# has one), which a person expects to see unchanged as the file's time on their PC.
_WALL_CLOCK = frozenset({CaptureSource.EXIF, CaptureSource.LIVE_PHOTO, CaptureSource.FILENAME})

_PHONE_READINGS = frozenset(
    {
        CaptureSource.EXIF,
        CaptureSource.VIDEO,
        CaptureSource.LIVE_PHOTO,
        CaptureSource.FILENAME,
    }
)


def media_capture_time(path: Path, *, content_type: str = "") -> datetime | None:
    """The capture time recorded inside the file, or None (see `media.metadata_capture`)."""
    found = metadata_capture(path, content_type=content_type)
    return found.when if found else None


def phone_capture(item: DownloadMessage) -> Capture | None:
    """The phone's own reading, when it sent one the agent trusts over its own.

    A time without a source comes from a client older than sources; it was always a reading.
    """
    if item.taken_at is None or not plausible(item.taken_at):
        return None
    source = item.taken_at_source
    if source is None:
        return Capture(item.taken_at, CaptureSource.EXIF)
    if source in _PHONE_READINGS:
        return Capture(item.taken_at, source)
    return None


def choose_capture(item: DownloadMessage, staged: Path) -> Capture:
    """The capture time to file `item` by, its bytes verified at `staged`."""
    phone = phone_capture(item)
    if phone is not None:
        return phone
    own = read_capture(staged, filename=item.filename, content_type=item.content_type)
    if own is not None:
        return own
    if item.taken_at is not None and plausible(item.taken_at):
        return Capture(item.taken_at, CaptureSource.FILE_TIME)
    return Capture(item.uploaded_at, CaptureSource.UPLOAD)


def set_file_time(path: Path, capture: Capture) -> None:
    """Give `path` the capture time as its modification time (best effort).

    A wall-clock time (EXIF, a name) is set as that time on this PC's clock, so the file
    shows the time the camera showed; a video's or the phone's file time is an instant.
    """
    when = capture.when
    if when.tzinfo is None or capture.source in _WALL_CLOCK:
        when = when.replace(tzinfo=None)  # .timestamp() reads a naive time as local
    with contextlib.suppress(OSError, OverflowError, ValueError):
        stamp = when.timestamp()
        os.utime(path, (stamp, stamp))
