"""What a photo or video says about itself, read with bounded work: capture times (EXIF of
every photo format phones write, a video's header, a file's name) and thumbnails.

Pure Python but for the thumbnails (Pillow, imported on first use); no binary wheel a phone
lacks. Every reader has a budget, so a hostile file costs milliseconds and kilobytes.
"""

from __future__ import annotations

from mobile_backup.media._capture import (
    exif_capture_time,
    filename_capture,
    metadata_capture,
    read_capture,
)
from mobile_backup.media._exif import ExifFields, read_exif
from mobile_backup.media._thumbnail import (
    EDGE,
    MAX_DECODED_PIXELS,
    MAX_SOURCE_BYTES,
    make_thumbnail,
)
from mobile_backup.media._video import video_capture_time

__all__ = [
    "EDGE",
    "MAX_DECODED_PIXELS",
    "MAX_SOURCE_BYTES",
    "ExifFields",
    "exif_capture_time",
    "filename_capture",
    "make_thumbnail",
    "metadata_capture",
    "read_capture",
    "read_exif",
    "video_capture_time",
]
