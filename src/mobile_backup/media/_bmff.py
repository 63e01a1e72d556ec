"""ISO-BMFF boxes (MP4, MOV, HEIF, AVIF), walked with a budget.

A box is a 32-bit size, a four-letter type and its content; a size of 1 means a 64-bit size
follows, 0 means "to the end". Both readers of the package (a video's creation time, a HEIF
photo's EXIF) walk only box headers to find the few small boxes they parse, and each walk
spends one shared budget, so a crafted file (a million empty boxes, boxes that claim
terabytes) costs milliseconds and kilobytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

MAX_BOXES = 2000
"""Box headers read in one file, all levels together."""


class Budget:
    """How many more box headers one reading of a file may look at."""

    def __init__(self, boxes: int = MAX_BOXES) -> None:
        self.left = boxes

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


def file_boxes(
    f: BinaryIO, start: int, end: int, budget: Budget
) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, content end) of each box of a file between `start` and `end`.

    Stops (without guessing) at a box that claims more than its parent holds.
    """
    pos = start
    while pos + 8 <= end:
        if not budget.spend():
            return
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        content = pos + 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            content += 8
        elif size == 0:
            size = end - pos
        if size < content - pos or pos + size > end:
            return
        yield kind, content, pos + size
        pos += size


def memory_boxes(
    data: bytes, start: int, end: int, budget: Budget
) -> Iterator[tuple[bytes, int, int]]:
    """The same walk over bytes already read (32-bit sizes only: small boxes)."""
    pos = start
    while pos + 8 <= end and budget.spend():
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            return
        yield kind, pos + 8, pos + size
        pos += size
