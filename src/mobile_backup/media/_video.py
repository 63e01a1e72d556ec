"""A video's creation time, read with bounded work from its ISO-BMFF boxes (MP4, MOV, 3GP).

Phones record MP4 or QuickTime files, whose capture time lives in two small boxes:
`moov/mvhd` (seconds since 1904, UTC) and, on iPhones, the `moov/meta` item
`com.apple.quicktime.creationdate` (an ISO time with the phone's own offset, preferred when
present). Only box headers are read on the way there, with a budget on the number of boxes,
the nesting depth and the bytes of the one box whose content is parsed, so a crafted file
(a million empty `free` boxes, boxes that claim terabytes) costs milliseconds and kilobytes.
Any other container (MKV, AVI, WebM) has no time here: the file is filed by its other sources.
"""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from mobile_backup.media._bmff import Budget, file_boxes, memory_boxes

MAX_DEPTH = 4
MAX_META_BYTES = 1 << 20
"""The largest `meta` box whose content is read (iPhone ones are a few hundred bytes)."""

_EPOCH_1904 = datetime(1904, 1, 1, tzinfo=UTC)
_CONTAINERS = frozenset({b"moov", b"udta"})
_APPLE_CREATION = b"com.apple.quicktime.creationdate"


def video_capture_time(path: Path) -> datetime | None:
    """The creation time recorded in an MP4/MOV/3GP file (aware), or None.

    Never raises for a file's content: anything unreadable or over budget is "no time".
    """
    try:
        with path.open("rb") as f:
            end = os.fstat(f.fileno()).st_size
            header = f.read(8)
            if len(header) < 8 or header[4:8] not in {b"ftyp", b"moov", b"wide", b"free", b"mdat"}:
                return None
            f.seek(0)
            found = _find(f, 0, end, depth=0, budget=Budget())
    except (OSError, ValueError, struct.error, OverflowError):
        return None
    return found


def _find(f: BinaryIO, start: int, end: int, *, depth: int, budget: Budget) -> datetime | None:
    mvhd: datetime | None = None
    for kind, content, box_end in file_boxes(f, start, end, budget):
        if kind == b"mvhd":
            mvhd = mvhd or _mvhd(f, content, box_end)
        elif kind == b"meta" and depth > 0:
            apple = _apple_meta(f, content, box_end, budget)
            if apple is not None:
                return apple
        elif kind in _CONTAINERS and depth < MAX_DEPTH:
            inner = _find(f, content, box_end, depth=depth + 1, budget=budget)
            if inner is not None and kind == b"moov":
                return inner
            mvhd = mvhd or inner
    return mvhd


def _mvhd(f: BinaryIO, start: int, end: int) -> datetime | None:
    f.seek(start)
    data = f.read(min(end - start, 32))
    if len(data) < 8:
        return None
    seconds = (
        struct.unpack(">Q", data[4:12])[0] if data[0] == 1 else struct.unpack(">I", data[4:8])[0]
    )
    if seconds == 0:
        return None
    return _EPOCH_1904 + timedelta(seconds=seconds)


def _apple_meta(f: BinaryIO, start: int, end: int, budget: Budget) -> datetime | None:
    """`com.apple.quicktime.creationdate` from a QuickTime `meta` box (keys + ilst)."""
    if end - start > MAX_META_BYTES:
        return None
    f.seek(start)
    data = f.read(end - start)
    keys: list[bytes] = []
    values: dict[int, bytes] = {}
    for kind, c0, c1 in memory_boxes(data, 0, len(data), budget):
        if kind == b"keys" and c1 - c0 >= 8:
            count = struct.unpack(">I", data[c0 + 4 : c0 + 8])[0]
            pos = c0 + 8
            for _ in range(min(count, 64)):
                if pos + 8 > c1:
                    break
                size = struct.unpack(">I", data[pos : pos + 4])[0]
                if size < 8 or pos + size > c1:
                    break
                keys.append(data[pos + 8 : pos + size])
                pos += size
        elif kind == b"ilst":
            for index_box, i0, i1 in memory_boxes(data, c0, c1, budget):
                index = struct.unpack(">I", index_box)[0]
                for item_kind, d0, d1 in memory_boxes(data, i0, i1, budget):
                    if item_kind == b"data" and d1 - d0 >= 8:
                        values[index] = data[d0 + 8 : d1]
    for number, key in enumerate(keys, start=1):
        if key == _APPLE_CREATION and number in values:
            return _iso_time(values[number])
    return None


def _iso_time(raw: bytes) -> datetime | None:
    """`2024-12-24T17:45:00+0100` (Apple's form) or with a colon in the offset."""
    text = raw[:64].decode("utf-8", "replace").strip("\x00 ")
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
