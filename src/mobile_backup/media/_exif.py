"""EXIF from a photo's container, in pure Python and with bounded work: no pixel is decoded.

Pillow's `getexif()` decodes every pixel of a PNG whose EXIF does not come before the image
data (a 519 KB PNG of 13000² pixels cost 650 MB and 13-27 s), and HEIC needs pillow-heif, a
binary wheel phones cannot install. This reader walks only the container's structure to
the EXIF block and reads the four tags the product uses:

    JPEG        the APP1 `Exif` segment, before the first scan (SOS)
    PNG         the `eXIf` chunk, or ImageMagick's hex "Raw profile type exif" text chunk
    TIFF/DNG    the file itself is the TIFF structure
    WebP        the RIFF `EXIF` chunk
    HEIF/AVIF   the `Exif` item: `meta/iinf` names it, `meta/iloc` says where its bytes are

Every walk has a budget (segments, chunks, boxes, IFD entries, bytes), so a crafted file
costs milliseconds and kilobytes: anything malformed or over budget is "no EXIF".
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mobile_backup.media._bmff import Budget, file_boxes, memory_boxes

MAX_EXIF_BYTES = 1 << 20
"""The largest EXIF block read (a phone's is 10-60 KB)."""
MAX_SEGMENTS = 256
"""JPEG segments, PNG chunks or RIFF chunks looked at before giving up."""
MAX_PNG_CHUNKS = 4096
MAX_IFD_ENTRIES = 1024

_DATETIME = 0x0132
_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_ASCII, _SHORT, _LONG = 2, 3, 4

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RAW_PROFILES = (b"Raw profile type exif", b"Raw profile type APP1")
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
     b"msf1", b"avif", b"avis", b"mif2"}
)  # fmt: skip


class _Malformed(Exception):
    """The container is not what it claims, or is over budget: the file has no EXIF here."""


@dataclass(frozen=True, slots=True)
class ExifFields:
    """The tags of a photo's EXIF that the product reads, as stored (text stripped)."""

    date_time_original: str | None = None
    date_time: str | None = None
    offset_time_original: str | None = None
    orientation: int | None = None


def read_exif(path: Path) -> ExifFields | None:
    """The EXIF fields of the photo at `path`, or None when it has none (or is no photo).

    Raises OSError when the file cannot be read; never raises for what the file contains.
    """
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        try:
            tiff = _tiff_reader(f, head, size)
            return _parse_tiff(tiff) if tiff is not None else None
        except (_Malformed, struct.error, ValueError, IndexError, OverflowError, zlib.error):
            return None


ReadAt = Callable[[int, int], bytes]
"""Reads `n` bytes at an offset of the TIFF structure (fewer at its end)."""


def _tiff_reader(f: BinaryIO, head: bytes, size: int) -> ReadAt | None:
    """A reader over the photo's TIFF structure, found by the file's first bytes."""
    block: bytes | None
    if head.startswith(b"\xff\xd8\xff"):
        block = _jpeg_exif(f)
    elif head.startswith(_PNG_SIGNATURE):
        block = _png_exif(f, size)
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        return _file_reader(f, 0, size)  # TIFF, DNG and the raw formats built on it
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        block = _webp_exif(f, size)
    elif head[4:8] == b"ftyp" and _is_heif(f, size):
        block = _heif_exif(f, size)
    else:
        return None
    if block is None:
        return None
    return _bytes_reader(_strip_exif_header(block))


def _file_reader(f: BinaryIO, base: int, end: int) -> ReadAt:
    spent = [0]

    def read_at(offset: int, n: int) -> bytes:
        spent[0] += n
        if spent[0] > MAX_EXIF_BYTES or offset < 0:
            raise _Malformed("over budget")
        f.seek(base + offset)
        return f.read(max(0, min(n, end - base - offset)))

    return read_at


def _bytes_reader(data: bytes) -> ReadAt:
    def read_at(offset: int, n: int) -> bytes:
        if offset < 0:
            raise _Malformed("negative offset")
        return data[offset : offset + n]

    return read_at


def _strip_exif_header(block: bytes) -> bytes:
    """`Exif\\0\\0` precedes the TIFF header in JPEG, and in some PNG and WebP writers."""
    return block[6:] if block.startswith(b"Exif\x00\x00") else block


# --- containers -------------------------------------------------------------------------


def _jpeg_segments(f: BinaryIO) -> Iterator[tuple[int, int]]:
    """(marker, payload length) of each segment before the first scan, the file positioned
    at the payload. Raises _Malformed past `MAX_SEGMENTS`."""
    f.seek(2)
    for _ in range(MAX_SEGMENTS):
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return
        while marker[1] == 0xFF:  # fill bytes
            nxt = f.read(1)
            if not nxt:
                return
            marker = b"\xff" + nxt
        kind = marker[1]
        if kind in (0xD9, 0xDA):  # end of image, start of scan: no metadata comes after
            return
        if 0xD0 <= kind <= 0xD7 or kind == 0x01:
            continue  # markers without a length
        raw = f.read(2)
        if len(raw) < 2:
            return
        length = struct.unpack(">H", raw)[0] - 2
        if length < 0:
            return
        here = f.tell()
        yield kind, length
        f.seek(here + length)
    raise _Malformed("too many segments")


def _jpeg_exif(f: BinaryIO) -> bytes | None:
    for kind, length in _jpeg_segments(f):
        if kind == 0xE1:
            payload = f.read(length)
            if payload.startswith(b"Exif\x00\x00"):
                return payload
    return None


def _png_chunks(f: BinaryIO, size: int) -> Iterator[tuple[bytes, int]]:
    """(type, data length) of each chunk up to IEND, the file positioned at the data; the
    data is skipped, never inflated. Raises _Malformed past `MAX_PNG_CHUNKS`."""
    pos = len(_PNG_SIGNATURE)
    for _ in range(MAX_PNG_CHUNKS):
        if pos + 8 > size:
            return
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        if kind == b"IEND":
            return
        yield kind, length
        pos += 12 + length  # length, type, data, CRC
    raise _Malformed("too many chunks")


def _png_exif(f: BinaryIO, size: int) -> bytes | None:
    for kind, length in _png_chunks(f, size):
        if kind == b"eXIf":
            return _read_capped(f, length)
        if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_EXIF_BYTES:
            found = _png_raw_profile(kind, f.read(length))
            if found is not None:
                return found
    return None


def structure_within_budget(path: Path) -> bool:
    """Whether a JPEG's segments before its image data, or a PNG's chunks, stay within the
    budgets above: Pillow walks them all when it opens the file (200,000 empty PNG chunks
    cost it 1.7 s), so a decoder is only handed a file that passes. Other formats: True.
    """
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        try:
            if head.startswith(b"\xff\xd8\xff"):
                for _ in _jpeg_segments(f):
                    pass
            elif head.startswith(_PNG_SIGNATURE):
                for kind, _ in _png_chunks(f, size):
                    if kind == b"IDAT":
                        break
        except (_Malformed, struct.error):
            return False
    return True


def _png_raw_profile(kind: bytes, data: bytes) -> bytes | None:
    """ImageMagick's `Raw profile type exif`: "\\nexif\\n  LENGTH\\nHEX..." in a text chunk."""
    keyword, _, rest = data.partition(b"\x00")
    if keyword not in _PNG_RAW_PROFILES:
        return None
    if kind == b"zTXt":
        text = _inflate(rest[1:])
    elif kind == b"iTXt":
        compressed = rest[:1] == b"\x01"
        # compression flag, method, language tag \0, translated keyword \0, text
        body = rest[2:].split(b"\x00", 2)
        if len(body) < 3:
            return None
        text = _inflate(body[2]) if compressed else body[2]
    else:
        text = rest
    lines = text.strip().split(b"\n", 2)
    if len(lines) < 3:
        return None
    length = int(lines[1].strip())
    digits = b"".join(lines[2].split())[: 2 * min(length, MAX_EXIF_BYTES)]
    return bytes.fromhex(digits.decode("ascii"))


def _inflate(data: bytes) -> bytes:
    """At most twice the EXIF bound (hex doubles it), however far the stream would inflate."""
    return zlib.decompressobj().decompress(data, 2 * MAX_EXIF_BYTES + 64)


def _webp_exif(f: BinaryIO, size: int) -> bytes | None:
    pos = 12
    for _ in range(MAX_SEGMENTS):
        if pos + 8 > size:
            return None
        f.seek(pos)
        kind, length = struct.unpack("<4sI", f.read(8))
        if kind == b"EXIF":
            return _read_capped(f, length)
        pos += 8 + length + (length & 1)
    return None


def _is_heif(f: BinaryIO, size: int) -> bool:
    """A HEIF or AVIF still image, by the major or a compatible brand of its `ftyp` box."""
    f.seek(0)
    for kind, start, end in file_boxes(f, 0, size, Budget(1)):
        if kind != b"ftyp" or end - start > 4096:
            return False
        f.seek(start)
        data = f.read(end - start)
        brands = [data[0:4]] + [data[i : i + 4] for i in range(8, len(data) - 3, 4)]
        return any(b in HEIF_BRANDS for b in brands)
    return False


def _heif_exif(f: BinaryIO, size: int) -> bytes | None:
    budget = Budget()
    for kind, start, end in file_boxes(f, 0, size, budget):
        if kind == b"meta":
            if end - start > MAX_EXIF_BYTES:
                return None
            f.seek(start)
            meta = f.read(end - start)
            return _heif_meta_exif(f, meta, size, budget)
    return None


def _heif_meta_exif(f: BinaryIO, meta: bytes, size: int, budget: Budget) -> bytes | None:
    boxes = {kind: (c0, c1) for kind, c0, c1 in memory_boxes(meta, 4, len(meta), budget)}
    if b"iinf" not in boxes or b"iloc" not in boxes:
        return None
    items = set(_exif_items(meta, *boxes[b"iinf"], budget))
    for item, method, extents in _iloc(meta, *boxes[b"iloc"]):
        if item not in items:
            continue
        if method == 1 and b"idat" in boxes:
            base, limit = boxes[b"idat"][0], boxes[b"idat"][1]
            chunks = [meta[base + o : base + o + n] for o, n in extents if base + o + n <= limit]
        elif method == 0:
            chunks = []
            for offset, length in extents:
                if offset + length > size:
                    return None
                f.seek(offset)
                chunks.append(f.read(length))
        else:
            return None
        data = b"".join(chunks)
        if len(data) < 4:
            return None
        skip = struct.unpack(">I", data[:4])[0]  # the offset of the TIFF header after it
        return data[4 + skip :] if 4 + skip < len(data) else None
    return None


def _exif_items(meta: bytes, start: int, end: int, budget: Budget) -> Iterator[int]:
    """The ids of `Exif` items in an `iinf` box (`infe` entries of version 2 and 3)."""
    version = meta[start]
    first = start + (6 if version == 0 else 8)
    for kind, c0, c1 in memory_boxes(meta, first, end, budget):
        if kind != b"infe" or c1 - c0 < 4:
            continue
        infe_version = meta[c0]
        if infe_version == 2:
            item, item_type = struct.unpack(">H2x4s", meta[c0 + 4 : c0 + 12])
        elif infe_version == 3:
            item, item_type = struct.unpack(">I2x4s", meta[c0 + 4 : c0 + 14])
        else:
            continue
        if item_type == b"Exif":
            yield item


def _iloc(meta: bytes, start: int, end: int) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """(item id, construction method, [(offset, length)]) of each item in an `iloc` box."""
    version = meta[start]
    pos = start + 4
    sizes = meta[pos], meta[pos + 1]
    offset_size, length_size = sizes[0] >> 4, sizes[0] & 15
    base_size, index_size = sizes[1] >> 4, (sizes[1] & 15 if version in (1, 2) else 0)
    pos += 2
    wide = version == 2
    count, pos = _uint(meta, pos, 4 if wide else 2, end)
    for _ in range(min(count, MAX_IFD_ENTRIES)):
        item, pos = _uint(meta, pos, 4 if wide else 2, end)
        method = 0
        if version in (1, 2):
            raw, pos = _uint(meta, pos, 2, end)
            method = raw & 15
        pos += 2  # data reference index
        base, pos = _uint(meta, pos, base_size, end)
        extent_count, pos = _uint(meta, pos, 2, end)
        extents = []
        for _ in range(min(extent_count, 64)):
            pos += index_size
            offset, pos = _uint(meta, pos, offset_size, end)
            length, pos = _uint(meta, pos, length_size, end)
            extents.append((base + offset, length))
        if sum(n for _, n in extents) > MAX_EXIF_BYTES:
            raise _Malformed("an item larger than any EXIF")
        yield item, method, extents


def _uint(data: bytes, pos: int, width: int, end: int) -> tuple[int, int]:
    if width == 0:
        return 0, pos
    if width not in (1, 2, 4, 8) or pos + width > end:
        raise _Malformed("a field outside its box")
    return int.from_bytes(data[pos : pos + width], "big"), pos + width


def _read_capped(f: BinaryIO, length: int) -> bytes | None:
    return f.read(length) if length <= MAX_EXIF_BYTES else None


# --- the TIFF structure inside ----------------------------------------------------------


def _parse_tiff(read_at: ReadAt) -> ExifFields | None:
    header = read_at(0, 8)
    if len(header) < 8:
        return None
    order = {b"II": "<", b"MM": ">"}.get(header[:2])
    if order is None or struct.unpack(order + "H", header[2:4])[0] != 42:
        return None
    ifd0 = _ifd(read_at, order, struct.unpack(order + "I", header[4:8])[0])
    if not ifd0:
        return None
    sub: dict[int, tuple[int, int, bytes]] = {}
    pointer = ifd0.get(_EXIF_IFD)
    if pointer is not None:
        sub_offset = _number(order, pointer)
        if sub_offset is not None:
            sub = _ifd(read_at, order, sub_offset)
    orientation = ifd0.get(_ORIENTATION)
    return ExifFields(
        date_time_original=_text(read_at, order, sub.get(_DATETIME_ORIGINAL)),
        date_time=_text(read_at, order, ifd0.get(_DATETIME)),
        offset_time_original=_text(read_at, order, sub.get(_OFFSET_TIME_ORIGINAL)),
        orientation=_number(order, orientation) if orientation else None,
    )


def _ifd(read_at: ReadAt, order: str, offset: int) -> dict[int, tuple[int, int, bytes]]:
    """tag → (type, count, the 4-byte value field) of one IFD."""
    raw = read_at(offset, 2)
    if len(raw) < 2:
        return {}
    count = min(struct.unpack(order + "H", raw)[0], MAX_IFD_ENTRIES)
    table = read_at(offset + 2, 12 * count)
    entries = {}
    for i in range(len(table) // 12):
        tag, kind, n = struct.unpack(order + "HHI", table[12 * i : 12 * i + 8])
        entries[tag] = (kind, n, table[12 * i + 8 : 12 * i + 12])
    return entries


def _number(order: str, entry: tuple[int, int, bytes]) -> int | None:
    kind, _, value = entry
    if kind == _SHORT:
        return int(struct.unpack(order + "H", value[:2])[0])
    if kind == _LONG:
        return int(struct.unpack(order + "I", value)[0])
    return None


def _text(read_at: ReadAt, order: str, entry: tuple[int, int, bytes] | None) -> str | None:
    if entry is None:
        return None
    kind, count, value = entry
    if kind != _ASCII or count == 0:
        return None
    count = min(count, 64)  # a date or an offset; anything longer is not one
    raw = value[:count] if count <= 4 else read_at(struct.unpack(order + "I", value)[0], count)
    text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return text or None
