"""Hostile pictures, built byte by byte: small files that claim (or decode to) enormous ones.

The family the outside audit used and its cousins: each is a few KB to a few hundred KB on
disk. `write_bombs(folder)` writes them all and returns their paths; building the 13000²
PNG streams its rows through zlib, so the test process itself never holds its pixels.
"""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _tiff_exif(original: str) -> bytes:
    """A little-endian TIFF structure holding an Exif IFD with DateTimeOriginal."""
    text = original.encode() + b"\x00"
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 26) + struct.pack("<I", 0)
    sub = struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, len(text), 44) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + sub + text


@functools.cache
def _flat_rows(width: int, height: int) -> bytes:
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (3 * width)
    data = bytearray()
    for _ in range(height):
        data += packer.compress(row)
    return bytes(data + packer.flush())


def flat_png(width: int, height: int, *, exif_after: str | None = None) -> bytes:
    """A single-colour RGB PNG of any size, compressed as a stream (13000²: ~500 KB)."""
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    out += _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    out += _png_chunk(b"IDAT", _flat_rows(width, height))
    if exif_after is not None:  # after the image data: Pillow decodes every pixel to find it
        out += _png_chunk(b"eXIf", _tiff_exif(exif_after))
    out += _png_chunk(b"IEND", b"")
    return bytes(out)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims a huge picture, with almost no data behind it."""
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + _png_chunk(b"IEND", b"")


def png_inflating_profile() -> bytes:
    """A `Raw profile type exif` text chunk that inflates to 1 GiB of hex digits."""
    packer = zlib.compressobj(9)
    body = bytearray(packer.compress(b"\nexif\n  536870912\n"))
    block = b"0" * (1 << 20)
    for _ in range(1024):
        body += packer.compress(block)
    body += packer.flush()
    chunk = _png_chunk(b"zTXt", b"Raw profile type exif\x00\x00" + bytes(body))
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk + idat + _png_chunk(b"IEND", b"")


def png_many_chunks(count: int = 200_000) -> bytes:
    """Hundreds of thousands of empty ancillary chunks before the image."""
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    filler = _png_chunk(b"tEXt", b"")
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + filler * count + idat + _png_chunk(b"IEND", b"")


def jpeg_claiming(width: int = 65500, height: int = 65500) -> bytes:
    """A baseline JPEG frame header claiming 65500² pixels, and a scan of garbage."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + _jpeg_tables() + sos + b"\x55" * 4096 + b"\xff\xd9"


def _jpeg_tables() -> bytes:
    dqt = b"\xff\xdb" + struct.pack(">HB", 67, 0) + bytes([1] * 64)
    dht = bytearray()
    for cls_id in (0x00, 0x10, 0x01, 0x11):
        counts = bytes([0, 1] + [0] * 14)
        dht += b"\xff\xc4" + struct.pack(">HB", 2 + 1 + 16 + 1, cls_id) + counts + b"\x00"
    return dqt + bytes(dht)


def jpeg_many_segments(count: int = 60_000) -> bytes:
    """Tens of thousands of empty APP segments before anything else."""
    return b"\xff\xd8" + b"\xff\xe2\x00\x02" * count + b"\xff\xd9"


def jpeg_exif_loop() -> bytes:
    """EXIF whose IFDs claim 65535 entries and point at themselves."""
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 0xFFFF)
    tiff += struct.pack(">HHII", 0x8769, 4, 1, 8) * 2000
    app1 = b"Exif\x00\x00" + tiff
    app1 = app1[:65000]
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\xff\xd9"


def gif_claiming() -> bytes:
    """A GIF whose screen and image claim 65535² pixels."""
    header = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\x00" * 6
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00"
    return header + image + b"\x3b"


def tiff_claiming() -> bytes:
    """A TIFF claiming 100000² RGB pixels in one strip that is not there."""
    entries = [
        (256, 4, 1, 100_000), (257, 4, 1, 100_000), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, 100_000),
        (279, 4, 1, 0xFFFFFFF0),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\x00" * 1024


def heif_boxes_bomb(count: int = 300_000) -> bytes:
    """A HEIF `ftyp` followed by hundreds of thousands of empty boxes."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"heic", 0, b"mif1")
    return ftyp + struct.pack(">I4s", 8, b"free") * count


def heif_huge_exif_item() -> bytes:
    """A HEIF whose `iloc` says its Exif item is 4 GiB long."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"heic", 0, b"mif1")
    infe = struct.pack(">I4sB3sHH4s", 21, b"infe", 2, b"\0\0\0", 1, 0, b"Exif") + b"\x00"
    iinf = struct.pack(">I4sI", 14, b"iinf", 0) + struct.pack(">H", 1) + infe
    iinf = struct.pack(">I", len(iinf)) + iinf[4:]
    iloc_body = struct.pack(">BBH", 0x44, 0x00, 1) + struct.pack(">HHHII", 1, 0, 1, 0, 0xFFFFFFFF)
    iloc = struct.pack(">I4sI", 12 + len(iloc_body), b"iloc", 0) + iloc_body
    meta_body = struct.pack(">I", 0) + iinf + iloc
    meta = struct.pack(">I4s", 8 + len(meta_body), b"meta") + meta_body
    return ftyp + meta + b"\x00" * 1024


BOMB_EXIF = "2021:05:06 07:08:09"
"""The capture time the 13000² PNG with EXIF after its image data carries."""


def write_bombs(folder: Path) -> dict[str, Path]:
    """Every bomb of the family in `folder`, by name (the 13000² PNG is the slow one to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "png-13000-flat.png": lambda: flat_png(13000, 13000),
        "png-13000-exif-after-idat.png": lambda: flat_png(13000, 13000, exif_after=BOMB_EXIF),
        "png-claims-100000.png": lambda: png_claiming(100_000, 100_000),
        "png-inflating-profile.png": png_inflating_profile,
        "png-many-chunks.png": png_many_chunks,
        "jpeg-claims-65500.jpg": jpeg_claiming,
        "jpeg-many-segments.jpg": jpeg_many_segments,
        "jpeg-exif-loop.jpg": jpeg_exif_loop,
        "gif-claims-65535.gif": gif_claiming,
        "tiff-claims-100000.tif": tiff_claiming,
        "heic-box-bomb.heic": heif_boxes_bomb,
        "heic-huge-exif-item.heic": heif_huge_exif_item,
    }  # fmt: skip
    paths = {}
    for name, build in made.items():
        path = folder / name
        if not path.exists():
            path.write_bytes(build())
        paths[name] = path
    return paths
