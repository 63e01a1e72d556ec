"""A small JPEG of a picture, made with bounded memory and time whatever the file claims.

Decoding pixels is the one thing in the product that can be driven to gigabytes: a 519 KB PNG
of 13000² pixels decodes to 169-676 MB. So the picture's size is read from its header first,
and only what fits the bound is decoded: a JPEG at 1/2, 1/4 or 1/8 of its size (its draft
mode decodes no more than that), anything else only up to `MAX_DECODED_PIXELS`. Larger
pictures, HEIC without a decoder, videos and anything unreadable have no thumbnail (the
gallery shows a placeholder). The EXIF orientation comes from the package's own reader,
never from Pillow's `getexif()` (which decodes a PNG's every pixel to look for it).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_backup.media._exif import read_exif, structure_within_budget

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

EDGE = 240
"""The thumbnail's longest side in pixels (a 4-wide grid at three times the density on a phone)."""
QUALITY = 70
MAX_SOURCE_BYTES = 200 * 1024 * 1024
"""A file larger than this is not opened at all."""
MAX_DECODED_PIXELS = 12_000_000
"""Pixels decoded at most (after a JPEG's draft scaling): 48 MB in RGBA, a 4000 x 3000 PNG."""
_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


PICTURE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)


def is_picture(name: str | Path) -> bool:
    """Whether a file of this name is a picture a thumbnail may be made of (by its suffix)."""
    return Path(name).suffix.lower() in PICTURE_SUFFIXES


def make_thumbnail(source: Path, *, edge: int = EDGE) -> bytes | None:
    """A small JPEG of the picture at `source`, or None when it is not a picture this bound
    lets us decode. Never raises for what the file contains."""
    try:
        if source.stat().st_size > MAX_SOURCE_BYTES or not structure_within_budget(source):
            return None
        from PIL import Image

        with Image.open(source, formats=_open_formats()) as img:
            img.draft("RGB", (edge, edge))  # JPEG: decode at 1/2, 1/4 or 1/8 of its size
            width, height = img.size
            if width * height > MAX_DECODED_PIXELS:
                log.debug("no thumbnail for %s: %dx%d pixels to decode", source, width, height)
                return None
            img.thumbnail((edge, edge))
            small = _upright(img, source).convert("RGB")
        out = io.BytesIO()
        small.save(out, "JPEG", quality=QUALITY, optimize=True)
        return out.getvalue()
    except (ImportError, OSError, ValueError, SyntaxError, EOFError, _bomb_error()) as exc:
        # Pillow's errors for a broken or hostile file (SyntaxError is its "not this format";
        # its own bomb check refuses beyond 179 MP, far above ours)
        log.debug("no thumbnail for %s: %s", source, exc)
        return None


def _upright(img: Image, source: Path) -> Image:
    """Turned the way the EXIF orientation says (read without decoding anything)."""
    with contextlib.suppress(OSError):
        fields = read_exif(source)
        method = _TRANSPOSE.get(fields.orientation or 1) if fields else None
        if method is not None:
            from PIL import Image as PILImage

            return img.transpose(getattr(PILImage.Transpose, method))
    return img


@functools.cache
def _open_formats() -> tuple[str, ...]:
    """The picture formats opened, HEIF too where pillow-heif is installed (desktops)."""
    import warnings

    from PIL import Image

    # Our bound is lower than Pillow's: its warning (at 89 MP) would only repeat it, on stderr.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    with contextlib.suppress(ImportError):
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.init()
    return tuple(f for f in _FORMATS if f in Image.OPEN)


def _bomb_error() -> type[Exception]:
    try:
        from PIL.Image import DecompressionBombError
    except ImportError:
        return ImportError  # no Pillow: the ImportError above is what will be raised
    return DecompressionBombError
