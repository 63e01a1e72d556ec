"""Is it a photo or a video? By its name, and by its first bytes.

The client's folder scan backs a file up when its name or its first bytes say photo or video
(`x.jpg.` and `nul` holding a JPEG both count); the PC agent, which receives whatever was
uploaded, files only what is a photo or video by its content (`media_verdict`): bytes that
announce something else (a program, an archive, a document) never enter the library,
whatever the name says, and unrecognised bytes only under a photo or video extension (RAW
formats the sniffer does not know).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mobile_backup.media._files import open_regular

MEDIA_SUFFIXES = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".gif", ".tif", ".tiff", ".dng",
        ".raw", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".avif",
        ".mp4", ".mov", ".m4v", ".3gp", ".mkv", ".webm", ".avi",
    }
)  # fmt: skip
# Image types that are drawings or containers rather than photos.
_NOT_PHOTOS = frozenset({"image/vnd.dwg", "image/x-icon", "application/dicom"})
SNIFF_BYTES = 8192


def media_suffix(name: str) -> bool:
    """Whether the name ends in a photo or video extension (trailing dots and spaces ignored)."""
    return Path(name.rstrip(". ") or name).suffix.lower() in MEDIA_SUFFIXES


def _guess(path: Path) -> str | None:
    """The media type the first bytes announce (any kind), or None when unrecognised."""
    import filetype  # light, pure Python: fine on phones too

    with open_regular(path) as f:
        head = f.read(SNIFF_BYTES)
    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def _is_media_type(mime: str) -> bool:
    return mime not in _NOT_PHOTOS and mime.startswith(("image/", "video/"))


def sniff(path: Path) -> str | None:
    """The media type a photo or video file's first bytes announce, or None if they do not.

    Raises OSError when the file cannot be read.
    """
    mime = _guess(path)
    return mime if mime is not None and _is_media_type(mime) else None


def is_photo_or_video(path: Path) -> bool:
    """By its name or, failing that, by its first bytes (the folder scan's own test).

    Raises OSError when the file cannot be read.
    """
    return media_suffix(path.name) or sniff(path) is not None


@dataclass(frozen=True, slots=True)
class MediaVerdict:
    """Whether received bytes may be filed as a photo or video, and why not."""

    ok: bool
    reason: str = ""


def media_verdict(path: Path, name: str) -> MediaVerdict:
    """Whether the file at `path`, sent under `name`, is a photo or video by its content.

    Raises OSError when the file cannot be read.
    """
    mime = _guess(path)
    if mime is not None:
        if _is_media_type(mime):
            return MediaVerdict(ok=True)
        return MediaVerdict(ok=False, reason=f"not a photo or video (its bytes are {mime})")
    if media_suffix(name):
        return MediaVerdict(ok=True)
    return MediaVerdict(ok=False, reason="not a photo or video (neither its bytes nor its name)")
