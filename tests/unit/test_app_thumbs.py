"""Thumbnails made on the device: small, bounded, never blocking the screen, never for
a file that is gone or not a picture."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

from PIL import Image

from mobile_backup.app._thumbs import Thumbnails
from mobile_backup.media import EDGE, make_thumbnail


def _photo(path: Path, size: tuple[int, int] = (1600, 1200), *, rotate: bool = False) -> str:
    img = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    if rotate:
        exif[0x0112] = 6  # the camera was turned: display rotated by 90°
    img.save(path, "JPEG", exif=exif.tobytes())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_thumbnail_is_a_small_jpeg_the_right_way_up(tmp_path: Path) -> None:
    src = tmp_path / "IMG_1.jpg"
    _photo(src, (1600, 1200), rotate=True)
    data = make_thumbnail(src)
    assert data is not None
    assert len(data) < 30_000
    with Image.open(io.BytesIO(data)) as small:
        assert small.format == "JPEG"
        assert max(small.size) <= EDGE
        assert small.size[0] < small.size[1]  # turned as the EXIF says: portrait


def test_what_is_not_a_readable_picture_has_no_thumbnail(tmp_path: Path) -> None:
    hostile = tmp_path / "evil.jpg"
    hostile.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)  # a JPEG header and nothing
    assert make_thumbnail(hostile) is None
    assert make_thumbnail(tmp_path / "gone.jpg") is None


def test_get_never_blocks_makes_in_the_background_and_then_answers(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_1.jpg"
    sha = _photo(photo)
    asked: list[str] = []
    ready = threading.Event()

    def path_of(s: str) -> Path | None:
        asked.append(s)
        return photo if s == sha else None

    thumbs = Thumbnails(tmp_path / "cache", path_of=path_of, on_ready=ready.set)
    try:
        assert thumbs.get(sha, make=False) is None
        assert asked == []  # only asked for when it is to be made
        assert thumbs.get(sha) is None  # queued, not made on the caller's thread
        assert ready.wait(10)
        data = thumbs.get(sha)
        assert data is not None
        assert thumbs.made == 1
        assert (tmp_path / "cache" / sha[:2] / f"{sha}.jpg").read_bytes() == data
        # A content with no local file is looked for once, not at every redraw.
        other = "b" * 64
        assert thumbs.get(other) is None
        thumbs.close()
        assert thumbs.get(other) is None
        assert asked.count(other) == 1
        assert thumbs.get("../../etc/passwd") is None  # only content ids are keys
    finally:
        thumbs.close()


def test_the_cache_folder_stays_within_its_bound(tmp_path: Path) -> None:
    thumbs = Thumbnails(tmp_path / "cache", path_of=lambda _s: None, max_bytes=20_000)
    for i in range(12):
        photo = tmp_path / f"IMG_{i}.jpg"
        noise = Image.frombytes("RGB", (600, 400), bytes((i * 7 + j) % 256 for j in range(720_000)))
        noise.save(photo, "JPEG")
        assert thumbs.add(hashlib.sha256(photo.read_bytes()).hexdigest(), photo)
    kept = sum(p.stat().st_size for p in (tmp_path / "cache").glob("*/*.jpg"))
    assert 0 < kept <= 20_000
