"""Ranged, resumable, verified downloads against the emulator's S3 (real HTTP, real files)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _uploadkit import CUT_BODY, Proxy, Seen, s3_for

from _agentkit import Cloud
from mobile_backup.agent import (
    Downloader,
    DownloadError,
    DownloadIntegrityError,
    Library,
    StateDB,
    TransferConfig,
)
from mobile_backup.core import (
    CancelledError,
)

pytestmark = pytest.mark.integration

KiB = 1024
SMALL_PARTS = TransferConfig(threshold=256 * KiB, part_size=128 * KiB, max_concurrency=4)


def put(cloud: Cloud, data: bytes, *, stored: bytes | None = None) -> tuple[str, str, str]:
    message = cloud.upload(data, filename="clip.mp4", stored=stored)
    return message.bucket, message.key, message.sha256


def make(
    tmp_path: Path,
    cloud: Cloud,
    *,
    write: Callable[[int, memoryview], int] = os.write,
    config: TransferConfig = SMALL_PARTS,
) -> tuple[Downloader, Library, StateDB]:
    library = Library(tmp_path / "library", write=write)
    library.prepare()
    state = StateDB(tmp_path / "state.sqlite3")
    return Downloader(cloud.s3, library=library, state=state, config=config), library, state


def test_a_large_object_arrives_by_parallel_ranges_verified(tmp_path: Path, cloud: Cloud) -> None:
    data = random.Random(1).randbytes(1300 * KiB)  # 11 parts, the last one short
    bucket, key, sha = put(cloud, data)
    downloader, library, _ = make(tmp_path, cloud)

    staged = downloader.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")

    assert staged.parent == library.staging
    assert staged.read_bytes() == data
    assert downloader.parts_fetched == 11
    downloader.close()


def test_an_interrupted_download_resumes_without_fetching_a_finished_part_again(
    tmp_path: Path, cloud: Cloud
) -> None:
    data = random.Random(2).randbytes(1024 * KiB)  # 8 parts
    bucket, key, sha = put(cloud, data)
    cancel = threading.Event()
    writes = 0

    def stop_after_some(fd: int, chunk: memoryview) -> int:
        nonlocal writes
        writes += 1
        if writes >= 3:
            cancel.set()  # the agent is being stopped mid-download
        return os.write(fd, chunk)

    config = TransferConfig(
        threshold=256 * KiB, part_size=128 * KiB, max_concurrency=1, chunk_size=128 * KiB
    )
    first, library, state = make(tmp_path, cloud, write=stop_after_some, config=config)
    with pytest.raises(CancelledError):
        first.fetch(
            bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part", cancel=cancel
        )
    first.close()
    done_before = first.parts_fetched
    assert 1 <= done_before < 8
    assert state.resumable() == {"v.part"}
    # A restarted agent keeps the journaled staging file and fetches only the rest.
    assert library.prepare(keep=state.resumable()) == 0
    second = Downloader(cloud.s3, library=library, state=state, config=config)
    staged = second.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    assert staged.read_bytes() == data
    assert second.parts_fetched == 8 - done_before
    second.close()


def test_an_agent_that_dies_mid_part_resumes_that_part_where_its_progress_was_noted(
    tmp_path: Path, cloud: Cloud
) -> None:
    data = random.Random(12).randbytes(1024 * KiB)  # 4 parts of 256 KiB, 8 chunks each
    bucket, key, sha = put(cloud, data)
    config = TransferConfig(
        threshold=256 * KiB,
        part_size=256 * KiB,
        max_concurrency=1,
        chunk_size=32 * KiB,
        progress_every=64 * KiB,
    )
    writes = 0

    def dies_at_the_13th_write(fd: int, chunk: memoryview) -> int:
        nonlocal writes
        writes += 1
        if writes == 13:  # part 0 whole, then 4 chunks (128 KiB) of part 1
            raise OSError(5, "the process is gone")
        return os.write(fd, chunk)

    first, library, state = make(tmp_path, cloud, write=dies_at_the_13th_write, config=config)
    with pytest.raises(OSError, match="the process is gone"):
        first.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    first.close()
    assert state.kept_of_parts("v.part") == {1: 128 * KiB}

    written = 0

    def count(fd: int, chunk: memoryview) -> int:
        nonlocal written
        written += len(chunk)
        return os.write(fd, chunk)

    assert library.prepare(keep=state.resumable()) == 0
    library = Library(tmp_path / "library", write=count)
    second = Downloader(cloud.s3, library=library, state=state, config=config)
    staged = second.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    assert staged.read_bytes() == data
    # Neither part 0 nor part 1's first 128 KiB came again: only the 640 KiB left.
    assert written == len(data) - 256 * KiB - 128 * KiB
    assert second.parts_fetched == 3
    second.close()


def test_a_part_whose_connection_breaks_carries_on_from_the_byte_it_reached(
    tmp_path: Path, cloud: Cloud
) -> None:
    data = random.Random(13).randbytes(1024 * KiB)  # 4 parts of 256 KiB
    bucket, key, sha = put(cloud, data)
    second_part = f"bytes={256 * KiB}-{512 * KiB - 1}"
    cut = False

    def cut_the_second_part_once(seen: Seen) -> str | None:
        nonlocal cut
        if seen.range == second_part and not cut:
            cut = True
            return CUT_BODY
        return None

    config = TransferConfig(
        threshold=256 * KiB, part_size=256 * KiB, max_concurrency=2, chunk_size=32 * KiB
    )
    with Proxy(cloud.s3.meta.endpoint_url, fault=cut_the_second_part_once) as proxy:
        library = Library(tmp_path / "library")
        library.prepare()
        state = StateDB(tmp_path / "state.sqlite3")
        downloader = Downloader(s3_for(proxy.url), library=library, state=state, config=config)
        staged = downloader.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v")
        downloader.close()
    assert staged.read_bytes() == data
    gets = sorted(s.range for s in proxy.requests(lambda s: s.method == "GET") if s.range)
    # The first half of the part (128 KiB) arrived before the break: only the rest again.
    parts = [f"bytes={i * 256 * KiB}-{(i + 1) * 256 * KiB - 1}" for i in range(4)]
    assert gets == sorted([*parts, f"bytes={384 * KiB}-{512 * KiB - 1}"])


def test_wrong_bytes_in_the_bucket_are_never_kept(tmp_path: Path, cloud: Cloud) -> None:
    data = random.Random(3).randbytes(600 * KiB)
    wrong = bytearray(data)
    wrong[500 * KiB] ^= 0xFF
    bucket, key, sha = put(cloud, data, stored=bytes(wrong))
    downloader, library, state = make(tmp_path, cloud)
    with pytest.raises(DownloadIntegrityError, match="SHA-256 mismatch"):
        downloader.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    assert list(library.staging.iterdir()) == []
    assert state.resumable() == set()
    downloader.close()


@pytest.mark.parametrize("stored_size", [300 * KiB, 700 * KiB])
def test_an_object_of_another_size_is_an_integrity_error(
    tmp_path: Path, cloud: Cloud, stored_size: int
) -> None:
    data = random.Random(4).randbytes(500 * KiB)
    bucket, key, sha = put(cloud, data, stored=random.Random(5).randbytes(stored_size))
    downloader, library, _ = make(tmp_path, cloud)
    with pytest.raises(DownloadIntegrityError):
        downloader.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    assert list(library.staging.iterdir()) == []
    downloader.close()


def test_a_missing_object_says_so(tmp_path: Path, cloud: Cloud) -> None:
    data = b"x" * (400 * KiB)
    bucket, key, sha = put(cloud, data)
    cloud.s3.delete_object(Bucket=bucket, Key=key)
    downloader, _, _ = make(tmp_path, cloud)
    for size in (len(data), 10):  # ranged and single-stream paths
        with pytest.raises(DownloadError) as info:
            downloader.fetch(bucket=bucket, key=key, sha256=sha, size=size, name="v.part")
        assert info.value.code == "object_missing"
    downloader.close()


def test_the_staging_file_is_the_only_copy_in_memory_terms(tmp_path: Path, cloud: Cloud) -> None:
    # Every write the downloader makes is at most one chunk: memory does not grow with size.
    data = random.Random(6).randbytes(2048 * KiB)
    bucket, key, sha = put(cloud, data)
    biggest = 0

    def record(fd: int, chunk: memoryview) -> int:
        nonlocal biggest
        biggest = max(biggest, len(chunk))
        return os.write(fd, chunk)

    config = TransferConfig(threshold=256 * KiB, part_size=256 * KiB, chunk_size=64 * KiB)
    downloader, _, _ = make(tmp_path, cloud, write=record, config=config)
    staged = downloader.fetch(bucket=bucket, key=key, sha256=sha, size=len(data), name="v.part")
    assert hashlib.sha256(staged.read_bytes()).hexdigest() == sha
    assert 0 < biggest <= 64 * KiB
    downloader.close()


def test_a_long_video_is_fetched_in_fewer_larger_parts_and_a_photo_is_not() -> None:
    config = TransferConfig()
    mib = 1024 * 1024
    assert config.part_size_for(20 * mib) == 8 * mib
    assert config.part_size_for(256 * mib) == 8 * mib  # 32 parts: still 8 MiB
    assert config.part_size_for(1024 * mib) == 16 * mib  # 64 parts
    assert config.part_size_for(2048 * mib) == 32 * mib  # 64 parts of the largest size
    assert config.part_size_for(8192 * mib) == 32 * mib  # never larger than max_part_size
    fixed = TransferConfig(part_size=16 * mib, max_part_size=16 * mib, threshold=32 * mib)
    assert fixed.part_size_for(8192 * mib) == 16 * mib  # `--part-size-mb`: exactly that


def test_the_agent_hashes_each_download_once_not_twice_through_botocore(
    tmp_path: Path, cloud: Cloud
) -> None:
    """A phone's upload carries x-amz-checksum-sha256. Were the agent's GETs to ask for it
    (botocore's default), botocore would hash each body again beside the agent's own SHA-256
    of every byte; the agent's check alone is asked for, whole or by ranges."""
    import base64

    data = random.Random(7).randbytes(600 * KiB)
    sha = hashlib.sha256(data)
    message = cloud.upload(data, filename="IMG_0001.jpg")
    cloud.s3.put_object(  # as the phone's presigned PUT stores it: with its checksum
        Bucket=message.bucket, Key=message.key, Body=data,
        ChecksumSHA256=base64.b64encode(sha.digest()).decode("ascii"),
    )  # fmt: skip
    asked: list[dict[str, str]] = []

    def note(request: Any, **_: object) -> None:
        asked.append({k.lower(): str(v) for k, v in request.headers.items()})

    cloud.s3.meta.events.register("before-send.s3.GetObject", note)
    for config in (TransferConfig(), SMALL_PARTS):  # one GET, then ranged parts
        downloader, _, _ = make(tmp_path / str(config.threshold), cloud, config=config)
        staged = downloader.fetch(
            bucket=message.bucket, key=message.key, sha256=sha.hexdigest(), size=len(data),
            name="p.part",
        )  # fmt: skip
        assert staged.read_bytes() == data
        downloader.close()
    assert len(asked) > 2
    assert not [h for h in asked if "x-amz-checksum-mode" in h]
