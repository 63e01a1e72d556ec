from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobile_backup.client import NoFilesError, capture_time, content_type, discover
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
    found = {p.name for p in discover([roll, explicit])}
    assert found == {"a.jpg", "b.MP4", "doc.pdf"}


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


def test_capture_time_from_exif(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, photos=2)
    for sample in samples:
        if sample.path.suffix == ".jpg":
            assert capture_time(sample.path) == sample.taken_at
    png = next(s for s in samples if s.path.suffix == ".png")
    assert capture_time(png.path) is None


def test_capture_time_of_a_non_image_is_none(tmp_path: Path) -> None:
    clip = tmp_path / "v.mp4"
    clip.write_bytes(mp4_bytes(datetime(2024, 1, 1, tzinfo=UTC), payload_size=10))
    assert capture_time(clip) is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert capture_time(broken) is None
