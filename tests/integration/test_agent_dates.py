"""Where a file lands in time: each capture-time source, the file's own time, and a video
crafted to make a metadata parser work forever, against the emulator."""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from _agentkit import SUB, Cloud, agent_for
from mobile_backup.agent import Agent, AgentConfig
from mobile_backup.core import CaptureSource, Receipt

pytestmark = pytest.mark.integration


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def agent(cloud: Cloud, library: Path) -> Agent:
    return agent_for(cloud, library)


def jpeg(exif_time: str | None = None, *, seed: int = 0) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_time:
        exif.get_ifd(0x8769)[0x9003] = exif_time
    Image.new("RGB", (16, 16), (seed, 0, 0)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


def receipt_of(cloud: Cloud, sha256: str) -> Receipt:
    record = cloud.ledger.get(SUB, sha256)
    assert record is not None
    assert record.receipt is not None
    return record.receipt


def deliver(cloud: Cloud, agent: Agent, data: bytes, **kwargs: object) -> Receipt:
    message = cloud.upload(data, **kwargs)  # type: ignore[arg-type]
    cloud.send(message.to_json())
    assert agent.poll_once(wait_seconds=0) == 1
    return receipt_of(cloud, message.sha256)


PHONE_EXIF = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
FILE_TIME = datetime(2015, 6, 7, 8, 9, 10, tzinfo=UTC)


def test_the_phones_reading_wins(cloud: Cloud, agent: Agent, library: Path) -> None:
    receipt = deliver(
        cloud,
        agent,
        jpeg("2019:01:01 00:00:00"),
        filename="IMG_0001.jpg",
        taken_at=PHONE_EXIF,
        taken_at_source=CaptureSource.EXIF,
        owner_name="anna",
    )
    assert receipt.path == "anna/2021/03/IMG_0001.jpg"
    assert receipt.capture_source == "exif"
    assert receipt.captured_at == PHONE_EXIF
    # EXIF is a wall-clock time: the file shows it unchanged on this PC's clock.
    placed = library / receipt.path
    assert datetime.fromtimestamp(placed.stat().st_mtime) == datetime(2021, 3, 4, 5, 6, 7)


def test_without_the_phones_time_the_agent_reads_the_exif(cloud: Cloud, agent: Agent) -> None:
    receipt = deliver(
        cloud,
        agent,
        jpeg("2019:08:09 10:11:12", seed=1),
        filename="IMG_0002.jpg",
        taken_at=FILE_TIME,
        taken_at_source=CaptureSource.FILE_TIME,
    )
    # The agent's own reading beats the phone's file time.
    assert receipt.path == f"{SUB}/2019/08/IMG_0002.jpg"
    assert receipt.capture_source == "exif"


def test_a_date_in_the_name_beats_the_file_time(cloud: Cloud, agent: Agent) -> None:
    receipt = deliver(
        cloud,
        agent,
        b"\x89PNG\r\n\x1a\n no exif here",
        filename="Screenshot 2024-02-29 at 17.45.00.png",
        content_type="image/png",
        taken_at=FILE_TIME,
        taken_at_source=CaptureSource.FILE_TIME,
    )
    assert receipt.path == f"{SUB}/2024/02/Screenshot 2024-02-29 at 17.45.00.png"
    assert receipt.capture_source == "filename"
    assert receipt.captured_at == datetime(2024, 2, 29, 17, 45)


def test_a_jpeg_without_exif_is_filed_by_the_phones_file_time(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    receipt = deliver(
        cloud,
        agent,
        jpeg(seed=2),
        filename="IMG_0003.jpg",
        taken_at=FILE_TIME,
        taken_at_source=CaptureSource.FILE_TIME,
    )
    assert receipt.path == f"{SUB}/2015/06/IMG_0003.jpg"
    assert receipt.capture_source == "file_time"
    assert (library / receipt.path).stat().st_mtime == FILE_TIME.timestamp()


def test_with_nothing_else_the_upload_time_decides(cloud: Cloud, agent: Agent) -> None:
    message = cloud.upload(jpeg(seed=3), filename="IMG_0004.jpg", taken_at=None)
    cloud.send(message.to_json())
    agent.poll_once(wait_seconds=0)
    receipt = receipt_of(cloud, message.sha256)
    up = message.uploaded_at.astimezone(UTC)
    assert receipt.path == f"{SUB}/{up:%Y}/{up:%m}/IMG_0004.jpg"
    assert receipt.capture_source == "upload"


def crafted_mp4(size: int) -> bytes:
    """An `ftyp` box, then empty `free` boxes to `size` bytes: no movie header anywhere."""
    ftyp = struct.pack(">I4s", 20, b"ftyp") + b"isom" + struct.pack(">I", 512) + b"isom"
    count = (size - len(ftyp)) // 8
    return ftyp + struct.pack(">I4s", 8, b"free") * count


def test_a_crafted_video_is_filed_quickly_in_little_memory(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    data = crafted_mp4(8 * 1024 * 1024)  # a million boxes: hachoir took 26 s and 1.4 GiB
    message = cloud.upload(
        data, filename="VID_20230405_101010.mp4", content_type="video/mp4", taken_at=None
    )
    cloud.send(message.to_json())
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert agent.poll_once(wait_seconds=0) == 1
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    receipt = receipt_of(cloud, message.sha256)
    assert receipt.path == f"{SUB}/2023/04/VID_20230405_101010.mp4"
    assert receipt.capture_source == "filename"
    assert (library / receipt.path).read_bytes() == data
    # The whole delivery (download, hash, fsync, place, receipt) of 8 MB: generous bounds.
    assert elapsed < 10, elapsed
    assert peak < 48 * 1024 * 1024, peak


def modes(library: Path, relative: str) -> list[int]:
    """The permission bits of the library root, each folder down, and the file."""
    path = library
    found = [path.stat().st_mode & 0o777]
    for part in relative.split("/"):
        path = path / part
        found.append(path.stat().st_mode & 0o777)
    return found


@pytest.mark.skipif(os.name != "posix", reason="POSIX mode bits; Windows inherits the ACL")
def test_the_library_is_private_by_default(cloud: Cloud, agent: Agent, library: Path) -> None:
    old = os.umask(0o022)
    try:
        receipt = deliver(cloud, agent, jpeg(seed=4), filename="IMG_0005.jpg", owner_name="bo")
    finally:
        os.umask(old)
    assert modes(library, receipt.path) == [0o700, 0o700, 0o700, 0o700, 0o600]
    assert (library / ".mobile-backup").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.name != "posix", reason="POSIX mode bits; Windows inherits the ACL")
def test_a_shared_library_follows_the_umask(cloud: Cloud, library: Path) -> None:
    old = os.umask(0o022)
    try:
        agent = agent_for(cloud, library, config=AgentConfig(shared_library=True))
        receipt = deliver(cloud, agent, jpeg(seed=5), filename="IMG_0006.jpg", owner_name="bo")
    finally:
        os.umask(old)
    assert modes(library, receipt.path) == [0o755, 0o755, 0o755, 0o755, 0o644]
    # The agent's own folder (state, partial downloads) stays private either way.
    assert (library / ".mobile-backup").stat().st_mode & 0o777 == 0o700
