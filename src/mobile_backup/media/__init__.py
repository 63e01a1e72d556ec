"""What a photo or video says about itself, read with bounded work: capture times (EXIF of
every photo format phones write, a video's header, a file's name) and thumbnails.

Pure Python but for the thumbnails (Pillow, imported on first use); no binary wheel a phone
lacks. Every reader has a budget, so a hostile file costs milliseconds and kilobytes.
"""

from __future__ import annotations

from mobile_backup.media._capture import (
    metadata_capture,
    read_capture,
)
from mobile_backup.media._exif import ExifFields, read_exif
from mobile_backup.media._files import (
    NotRegularFileError,
    check_regular,
    open_regular,
    read_regular,
)
from mobile_backup.media._kind import (
    MediaVerdict,
    is_photo_or_video,
    media_suffix,
    media_verdict,
    sniff,
)
from mobile_backup.media._thumbnail import (
    EDGE,
    is_picture,
    make_thumbnail,
)

__all__ = [
    "EDGE",
    "ExifFields",
    "MediaVerdict",
    "NotRegularFileError",
    "check_regular",
    "is_photo_or_video",
    "is_picture",
    "make_thumbnail",
    "media_suffix",
    "media_verdict",
    "metadata_capture",
    "open_regular",
    "read_capture",
    "read_exif",
    "read_regular",
    "sniff",
]
