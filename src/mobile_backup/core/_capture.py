"""When was it taken? The one set of readers for the upload client and the PC agent alike.

Each time comes tagged with its source (`CaptureSource`), ranked by how far it can be
trusted: what the file's own metadata says (EXIF, the video's movie header), then a date in
the file name that cannot be read two ways (`IMG_20241224_174500`, `Screenshot 2024-02-29`),
then the file's modification time, then the upload time.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mobile_backup.core._video import video_capture_time

logger = logging.getLogger(__name__)

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132
_heif_lock = threading.Lock()
_heif_registered = False
_formats: tuple[str, ...] | None = None

# The image formats that carry EXIF: the only ones tried for a capture time. Naming them keeps
# Pillow from importing its every plugin (~40 ms) on the first file it cannot identify (a
# video, anything odd) and from trying each of them on every such file; and pillow-heif
# (~150 ms to import) is only loaded for a file whose header says HEIF or AVIF.
_EXIF_PLUGINS = (
    "JpegImagePlugin", "MpoImagePlugin", "PngImagePlugin", "TiffImagePlugin", "WebPImagePlugin",
)  # fmt: skip
_EXIF_FORMATS = ("JPEG", "MPO", "PNG", "TIFF", "WEBP")
_HEIF_FORMATS = ("HEIF", "AVIF")
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
     b"msf1", b"avif", b"avis"}
)  # fmt: skip


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
    from PIL import Image

    with path.open("rb") as fp:
        head = fp.read(12)
        heif = head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS  # an ISO-BMFF image
        if heif:
            _register_heif()
        fp.seek(0)
        with Image.open(fp, formats=_exif_formats(heif=heif)) as image:
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


def _exif_formats(*, heif: bool) -> tuple[str, ...]:
    """The EXIF formats Pillow can open here (HEIF and AVIF once pillow-heif registered)."""
    global _formats
    from PIL import Image

    if _formats is None:
        import importlib

        for plugin in _EXIF_PLUGINS:  # each registers its format
            importlib.import_module(f"PIL.{plugin}")
        _formats = tuple(f for f in _EXIF_FORMATS if f in Image.OPEN)
    if not heif:
        return _formats
    return _formats + tuple(f for f in _HEIF_FORMATS if f in Image.OPEN)


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


class CaptureSource(enum.StrEnum):
    """Where a capture time came from, most trusted first."""

    EXIF = "exif"
    VIDEO = "video"
    LIVE_PHOTO = "live_photo"
    """A Live Photo's video, filed with its photo's time."""
    FILENAME = "filename"
    FILE_TIME = "file_time"
    UPLOAD = "upload"


METADATA_SOURCES = frozenset({CaptureSource.EXIF, CaptureSource.VIDEO, CaptureSource.LIVE_PHOTO})

# Earlier dates are placeholders (QuickTime's 1904 epoch, zeroed EXIF), not capture times.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1)

_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".qt"})


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture time and where it came from."""

    when: datetime
    source: CaptureSource


def plausible(value: datetime) -> bool:
    """Between 1990 and two days from now (clock skew), by its wall-clock fields."""
    naive = value.replace(tzinfo=None)
    return EARLIEST_PLAUSIBLE <= naive <= datetime.now() + timedelta(days=2)


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
        except ImportError:
            continue  # Pillow comes with the agent/all extras, not the bare client
        except Exception as exc:  # a hostile or truncated file is just a file without a date
            logger.debug("no capture time from %s via %s: %s", path, reader.__name__, exc)
            continue
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
