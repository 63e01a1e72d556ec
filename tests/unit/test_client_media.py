from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobile_backup.client import (
    NoFilesError,
    capture_of,
    content_type,
    discover,
    group_skipped,
    scan_folder,
)
from mobile_backup.client._scan import (
    BROKEN_LINK,
    HIDDEN,
    LINKED_FOLDER,
    NOT_A_FILE,
    NOT_MEDIA,
    PHONE_TRASH,
    UNREADABLE,
    Skipped,
    walk,
)
from mobile_backup.core import Capture, CaptureSource
from mobile_backup.local._samples import make_samples, mp4_bytes


def test_discover_takes_named_files_and_media_in_folders(tmp_path: Path) -> None:
    roll = tmp_path / "roll"
    (roll / "sub").mkdir(parents=True)
    (roll / "a.jpg").write_bytes(b"x")
    (roll / "sub" / "b.MP4").write_bytes(b"x")
    (roll / "notes.txt").write_bytes(b"x")
    (roll / ".thumbnails").mkdir()
    (roll / ".thumbnails" / "c.jpg").write_bytes(b"x")
    explicit = tmp_path / "doc.pdf"
    explicit.write_bytes(b"x")
    scan = discover([roll, explicit])
    assert {p.name for p in scan.files} == {"a.jpg", "b.MP4", "doc.pdf"}
    assert {(s.path.name, s.reason) for s in scan.skipped} == {
        ("notes.txt", NOT_MEDIA),
        ("c.jpg", PHONE_TRASH),
    }


def _jpeg() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (4, 4), "red").save(buf, "JPEG")
    return buf.getvalue()


def test_a_folder_scan_backs_up_by_content_and_gives_a_reason_for_every_other_file(
    tmp_path: Path,
) -> None:
    """The issue's folder: nothing found is dropped without a reason."""
    jpeg = _jpeg()
    for name in ("a.jpg", "B.JPG", "nul", "x.jpg.", "y.jpg ", "IMG_0001", "..\\..\\evil.jpg"):
        (tmp_path / name).write_bytes(jpeg)
    (tmp_path / ".hidden.jpg").write_bytes(jpeg)
    (tmp_path / ".trashed-1700000000-old.jpg").write_bytes(jpeg)
    (tmp_path / ".pending-1700000000-new.mp4").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "clip").write_bytes(
        mp4_bytes(datetime(2024, 1, 1, tzinfo=UTC), payload_size=100)
    )
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "moved.jpg").symlink_to(tmp_path / "card" / "IMG_0002.jpg")  # gone
    scan = scan_folder(tmp_path)
    assert {p.name for p in scan.files} == {
        "a.jpg", "B.JPG", "nul", "x.jpg.", "y.jpg ", "IMG_0001", "empty.jpg", "clip",
    }  # fmt: skip
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert reasons == {
        ".hidden.jpg": HIDDEN,
        "..\\..\\evil.jpg": HIDDEN,  # a name starting with "." is hidden, whatever follows
        ".trashed-1700000000-old.jpg": PHONE_TRASH,
        ".pending-1700000000-new.mp4": PHONE_TRASH,
        "notes.txt": NOT_MEDIA,
        "pipe.jpg": NOT_A_FILE,
        "loop": LINKED_FOLDER,
        "moved.jpg": BROKEN_LINK,
    }
    found = len(scan.files) + len(scan.skipped)
    assert found == sum(1 for _ in tmp_path.iterdir())  # every entry accounted for
    grouped = group_skipped(scan.skipped)
    sizes = [len(items) for items in grouped.values()]
    assert sizes == sorted(sizes, reverse=True) == [2, 2, 1, 1, 1, 1]  # the biggest group first
    assert content_type(tmp_path / "nul") == "image/jpeg"
    assert content_type(tmp_path / "y.jpg ") == "image/jpeg"
    assert content_type(tmp_path / "cam" / "clip") == "video/mp4"


def test_a_folder_the_scan_cannot_list_is_reported_not_dropped(tmp_path: Path) -> None:
    # (A folder without read permission takes the same path; CI runs as root, which reads
    # every folder, so the test lists a folder that is gone by the time it is walked.)
    gone = tmp_path / "card"
    assert [(s.path, s.reason) for s in walk(gone) if isinstance(s, Skipped)] == [
        (gone, UNREADABLE)
    ]


def test_a_folder_with_nothing_to_back_up_says_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".a.jpg").write_bytes(b"x")
    with pytest.raises(NoFilesError, match=r"no photos or videos found .*\(1 hidden, 1 not a"):
        discover([tmp_path])


def test_discover_names_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(NoFilesError, match=r"no such file or folder: .*nope"):
        discover([tmp_path / "nope"])


def test_discover_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoFilesError, match="no photos or videos"):
        discover([tmp_path])


def test_content_types() -> None:
    assert content_type(Path("a.JPG")) == "image/jpeg"
    assert content_type(Path("a.heic")) == "image/heic"
    assert content_type(Path("a.mp4")) == "video/mp4"
    assert content_type(Path("a.unknownext")) == "application/octet-stream"


def test_capture_from_exif_is_tagged_exif(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, photos=2)
    for sample in samples:
        if sample.path.suffix == ".jpg" and sample.taken_at is not None:
            found = capture_of(sample.path, content_type="image/jpeg")
            assert found == Capture(sample.taken_at, CaptureSource.EXIF)


def test_a_video_sends_its_header_time(tmp_path: Path) -> None:
    clip = tmp_path / "v.mp4"
    created = datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    clip.write_bytes(mp4_bytes(created, payload_size=10))
    assert capture_of(clip, content_type="video/mp4") == Capture(created, CaptureSource.VIDEO)


def test_a_name_with_a_date_beats_the_file_time(tmp_path: Path) -> None:
    shot = tmp_path / "Screenshot 2024-02-29 at 17.45.00.png"
    shot.write_bytes(b"\x89PNG\r\n\x1a\n")
    found = capture_of(shot, content_type="image/png")
    assert found == Capture(datetime(2024, 2, 29, 17, 45, tzinfo=UTC), CaptureSource.FILENAME)


def test_without_metadata_the_file_time_is_sent_tagged_as_such(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    then = datetime(2015, 6, 7, 8, 9, 10, tzinfo=UTC)
    os.utime(broken, (then.timestamp(), then.timestamp()))
    assert capture_of(broken, content_type="image/jpeg") == Capture(then, CaptureSource.FILE_TIME)
    # A copy the app received from a browser: its time is the arrival, not a capture clue.
    assert capture_of(broken, content_type="image/jpeg", file_time=False) is None


def test_a_live_photo_video_takes_its_photos_time(tmp_path: Path) -> None:
    sample = make_samples(tmp_path, photos=1)[0]
    photo = sample.path.rename(tmp_path / "IMG_5000.JPG")
    video = tmp_path / "IMG_5000.MOV"
    video.write_bytes(mp4_bytes(datetime(2026, 11, 2, tzinfo=UTC), payload_size=10))
    found = capture_of(video, content_type="video/quicktime")
    assert found is not None
    assert found.source == CaptureSource.LIVE_PHOTO
    assert found.when == sample.taken_at
    photo.unlink()  # alone, the video is filed by its own header
    assert capture_of(video, content_type="video/quicktime") == Capture(
        datetime(2026, 11, 2, tzinfo=UTC), CaptureSource.VIDEO
    )
