"""Part plans, one-pass hashing of files and parts, and streaming byte ranges."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobile_backup.client import FileChangedError, choose_part_size
from mobile_backup.client._parts import (
    MIB,
    FileStamp,
    RangeBody,
    b64,
    hash_file,
)
from mobile_backup.core import MAX_PARTS, PartPlan, part_count, part_length, part_range


@given(st.integers(min_value=0, max_value=5 * 1024**4))
def test_part_size_keeps_every_file_within_s3_limits(size: int) -> None:
    part = choose_part_size(size)
    assert 8 * MIB <= part <= 5 * 1024**3
    assert part % MIB == 0
    assert part_count(size, part) <= MAX_PARTS


def test_part_size_grows_only_when_needed() -> None:
    assert choose_part_size(2 * 1024**3) == 8 * MIB
    assert choose_part_size(100 * 1024**3) == 11 * MIB  # 100 GiB / 10,000 parts, rounded up
    with pytest.raises(ValueError, match="5 MiB"):
        choose_part_size(1, preferred=4 * MIB)


@settings(max_examples=50)
@given(size=st.integers(min_value=0, max_value=50_000), part=st.integers(1, 9_000))
def test_part_ranges_tile_the_file(size: int, part: int) -> None:
    ranges = [part_range(size, part, n) for n in range(1, part_count(size, part) + 1)]
    assert sum(length for _, length in ranges) == size
    assert all(offset == (n * part) for n, (offset, _) in enumerate(ranges))


def crc32(data: bytes) -> int:
    """A bitwise reference CRC32 (reflected, polynomial 0xEDB88320), slow but independent
    of the zlib the code uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def crc_b64(data: bytes) -> str:
    return b64(crc32(data).to_bytes(4, "big"))


def test_the_reference_crc_is_crc32() -> None:
    assert crc32(b"123456789") == 0xCBF43926  # the standard check value


def test_hash_file_gives_the_file_and_part_checksums(tmp_path: Path) -> None:
    data = os.urandom(2 * 5 * MIB + 12345)
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    file_hash = hash_file(path, part_size=5 * MIB)
    assert file_hash.sha256 == hashlib.sha256(data).hexdigest()
    # The reference is slow in pure Python: check it on the last part and a short file; the
    # whole file's CRC must be the one S3 computes by combining the parts'. CRC32: the
    # standard library's, so a phone needs no binary wheel for it.
    assert file_hash.checksum_algorithm == "CRC32"
    parts = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    assert len(file_hash.part_checksums) == 3
    assert file_hash.part_checksums[2] == crc_b64(parts[2])
    small = tmp_path / "s.mp4"
    small.write_bytes(data[:20_000])
    small_hash = hash_file(small, part_size=5 * MIB)
    assert small_hash.full_crc == crc_b64(data[:20_000]) == small_hash.part_checksums[0]
    assert hash_file(path).part_digests == ()
    assert hash_file(path).full_crc is None


def test_an_empty_file_is_one_empty_part(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    file_hash = hash_file(path, part_size=5 * MIB)
    assert file_hash.part_checksums == [crc_b64(b"")]
    assert file_hash.full_crc == crc_b64(b"")


def test_a_range_body_streams_exactly_its_bytes_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    seen: list[int] = []
    body = RangeBody(
        path,
        offset=1000,
        length=5000,
        stamp=FileStamp.of(path),
        on_chunk=seen.append,
        chunk_size=1024,
    )
    chunks = list(body)
    assert b"".join(chunks) == data[1000:6000]
    assert max(len(c) for c in chunks) == 1024
    assert sum(seen) == body.sent == 5000


def test_a_file_changed_since_hashing_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 100)
    stamp = FileStamp.of(path)
    path.write_bytes(b"b" * 101)
    with pytest.raises(FileChangedError):
        list(RangeBody(path, offset=0, length=100, stamp=stamp))


@given(st.integers(min_value=0, max_value=5 * 1024**4), st.integers(min_value=5, max_value=64))
def test_a_part_plan_covers_the_file_exactly_once(size: int, preferred_mib: int) -> None:
    """The plan the client cuts by, the API checks by and the agent fetches by."""
    plan = PartPlan.choose(size, preferred=preferred_mib * MIB)
    assert plan.count <= MAX_PARTS
    last_offset, last_length = plan.range(plan.count)
    assert last_offset + last_length == size
    assert 0 < last_length <= plan.part_size or size == 0
    assert plan.length(1) == min(size, plan.part_size)
    assert part_length(size, plan.part_size, plan.count) == last_length


def test_a_small_file_written_while_it_is_read_is_not_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mobile_backup.client import _parts
    from mobile_backup.media import read_regular

    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"x" * 1000)
    os.utime(photo, ns=(1_000_000_000, 1_000_000_000))

    def written_meanwhile(path: Path, limit: int) -> Any:
        data, before, _ = read_regular(path, limit)
        with path.open("r+b") as f:  # same size, new bytes and a new time
            f.write(b"y")
        return data, before, os.stat(path)

    monkeypatch.setattr(_parts, "read_regular", written_meanwhile)
    with pytest.raises(FileChangedError):
        hash_file(photo)
    monkeypatch.undo()
    assert hash_file(photo).sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
