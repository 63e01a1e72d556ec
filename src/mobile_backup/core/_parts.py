"""S3 multipart arithmetic, in one place: the client, the API and the agent must agree.

S3 takes 5 MiB to 5 GiB per part (the last part may be smaller), at most 10,000 parts and
5 TiB per object. A file is cut into parts of one size; part `n` (1-based) starts at
`(n - 1) * part_size`.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TIB
# 8 MiB parts: little is lost when a flaky link drops one, and many fit in flight at once.
DEFAULT_PART_SIZE = 8 * MIB
# Files from this size up go in parts (resumable); smaller ones in one presigned PUT.
DEFAULT_MULTIPART_THRESHOLD = 16 * MIB


def choose_part_size(size: int, *, preferred: int = DEFAULT_PART_SIZE) -> int:
    """`preferred` (5 MiB to 5 GiB), grown in whole MiB only as far as needed to stay within
    10,000 parts."""
    if not MIN_PART_SIZE <= preferred <= MAX_PART_SIZE:
        raise ValueError(f"a part must be 5 MiB to 5 GiB, not {preferred} bytes")
    needed = -(-size // MAX_PARTS)
    return max(preferred, -(-needed // MIB) * MIB)


def part_count(size: int, part_size: int) -> int:
    """How many parts `size` bytes make in parts of `part_size` (at least one)."""
    return max(1, -(-size // part_size))


def part_range(size: int, part_size: int, number: int) -> tuple[int, int]:
    """(offset, length) of part `number` (1-based) of a `size`-byte file."""
    offset = (number - 1) * part_size
    return offset, max(0, min(part_size, size - offset))


def part_length(size: int, part_size: int, number: int) -> int:
    """The exact length of part `number` (1-based) of a `size`-byte file."""
    return part_range(size, part_size, number)[1]


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How one file is cut: `size` bytes in parts of `part_size`."""

    size: int
    part_size: int

    @classmethod
    def choose(cls, size: int, *, preferred: int = DEFAULT_PART_SIZE) -> PartPlan:
        return cls(size, choose_part_size(size, preferred=preferred))

    @property
    def count(self) -> int:
        return part_count(self.size, self.part_size)

    def range(self, number: int) -> tuple[int, int]:
        """(offset, length) of part `number` (1-based)."""
        return part_range(self.size, self.part_size, number)

    def length(self, number: int) -> int:
        return part_length(self.size, self.part_size, number)
