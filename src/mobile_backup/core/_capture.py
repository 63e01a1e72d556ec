"""A capture time and where it came from: the value the client sends, the ledger keeps and
the agent files by. The readers that find one in a file are `mobile_backup.media`'s."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


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


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture time and where it came from."""

    when: datetime
    source: CaptureSource


def plausible(value: datetime) -> bool:
    """Between 1990 and two days from now (clock skew), by its wall-clock fields."""
    naive = value.replace(tzinfo=None)
    return EARLIEST_PLAUSIBLE <= naive <= datetime.now() + timedelta(days=2)
