"""When was it taken? The one set of readers for the upload client and the PC agent alike.

Each time comes tagged with its source (`core.CaptureSource`), ranked by how far it can be
trusted: what the file's own metadata says (EXIF, the video's movie header), then a date in
the file name that cannot be read two ways (`IMG_20241224_174500`, `Screenshot 2024-02-29`).
Both readers are pure Python and bounded (`_exif.py`, `_video.py`): no pixel or frame is
decoded, no binary wheel is needed (a phone has none of pillow-heif), a hostile file is only a
file without a date.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mobile_backup.core import Capture, CaptureSource, plausible
from mobile_backup.media._exif import read_exif
from mobile_backup.media._video import video_capture_time

logger = logging.getLogger(__name__)

_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".qt"})


def exif_capture_time(path: Path) -> datetime | None:
    """EXIF `DateTimeOriginal` (else `DateTime`) of a photo: JPEG, PNG, TIFF, WebP, HEIC, AVIF.

    Naive (the camera's wall clock, which is what a person files by) unless the file has an
    `OffsetTimeOriginal`. None when there is no usable date; OSError when the file cannot be
    read.
    """
    fields = read_exif(path)
    if fields is None:
        return None
    raw = fields.date_time_original or fields.date_time
    if raw is None:
        return None
    try:
        when = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    tz = _parse_offset(fields.offset_time_original or "")
    return when.replace(tzinfo=tz) if tz is not None else when


def _parse_offset(text: str) -> timezone | None:
    """`+02:00` → UTC+2 (EXIF 2.31 OffsetTimeOriginal)."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if text[0] == "-" else delta)
    except ValueError:  # not digits, or beyond a day
        return None


def metadata_capture(path: Path, *, content_type: str = "") -> Capture | None:
    """The capture time recorded inside the file (EXIF or the video's header), or None.

    Bounded work whatever the file holds; never raises for its content. EXIF times without an
    offset tag are naive (the camera's wall clock); video times are aware.
    """
    is_video = content_type.startswith("video/") or path.suffix.lower() in _VIDEO_SUFFIXES
    readers = (_video, _exif) if is_video else (_exif, _video)
    for reader in readers:
        try:
            found = reader(path)
        except OSError as exc:  # unreadable now: a file without a date, said in the log
            logger.debug("no capture time from %s via %s: %s", path, reader.__name__, exc)
            return None
        if found is not None and plausible(found.when):
            return found
    return None


def _exif(path: Path) -> Capture | None:
    when = exif_capture_time(path)
    return Capture(when, CaptureSource.EXIF) if when else None


def _video(path: Path) -> Capture | None:
    when = video_capture_time(path)
    return Capture(when, CaptureSource.VIDEO) if when else None


_FILENAME_DATE = re.compile(
    r"(?<![0-9A-Za-z])(?:[A-Za-z]+[-_ ]+)*"  # IMG_, PXL_, Screenshot , signal-
    r"(?P<y>(?:19|20)\d\d)(?P<s1>[-_.]?)(?P<m>\d\d)(?P=s1)(?P<d>\d\d)"
    r"(?:(?:[-_ T]|\ at\ )(?P<H>\d\d)(?P<s2>[-_.:]?)(?P<M>\d\d)(?P=s2)(?P<S>\d\d))?"
    r"(?!\d{1,2}(?:\D|$))"
)


def filename_capture(filename: str) -> Capture | None:
    """A date (and time) a file name states without ambiguity, as a naive wall-clock time.

    Year first, four digits, with the same separator (or none) between its parts, and a
    valid calendar date: `IMG_20241224_174500.jpg`, `PXL_20241224_174500123.jpg`,
    `Screenshot 2024-02-29 at 17.45.00.png`, `VID-20240229-WA0001.mp4`. `IMG_1234.JPG`,
    `2024-13-01` or `1234567890.jpg` give None.
    """
    stem = filename.rsplit("/", 1)[-1]
    for match in _FILENAME_DATE.finditer(stem):
        try:
            when = datetime(int(match["y"]), int(match["m"]), int(match["d"]))
            if match["H"] is not None:
                when = when.replace(
                    hour=int(match["H"]), minute=int(match["M"]), second=int(match["S"])
                )
        except ValueError:
            if match["H"] is None:
                continue
            try:  # a valid date followed by digits that are not a time
                when = datetime(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                continue
        if plausible(when):
            return Capture(when, CaptureSource.FILENAME)
    return None


def read_capture(path: Path, *, filename: str, content_type: str = "") -> Capture | None:
    """The best time the file itself or its name gives: metadata, then the name."""
    return metadata_capture(path, content_type=content_type) or filename_capture(filename)
