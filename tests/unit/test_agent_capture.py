"""Capture time from the file itself: EXIF (JPEG, HEIC) and video containers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from PIL import Image

from mobile_backup.agent import media_capture_time
from mobile_backup.local._samples import mp4_bytes

_EXIF_IFD = 0x8769


def _exif(original: str | None, *, offset: str | None = None, plain: str | None = None) -> bytes:
    exif = Image.Exif()
    if plain:
        exif[0x0132] = plain
    sub = exif.get_ifd(_EXIF_IFD)
    if original:
        sub[0x9003] = original
    if offset:
        sub[0x9011] = offset
    return exif.tobytes()


def test_jpeg_date_time_original_is_a_wall_clock_time(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(path, format="JPEG", exif=_exif("2021:08:09 10:11:12"))
    assert media_capture_time(path, content_type="image/jpeg") == datetime(2021, 8, 9, 10, 11, 12)


def test_an_offset_tag_makes_the_time_aware(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    exif = _exif("2021:12:31 23:30:00", offset="-05:00")
    Image.new("RGB", (8, 8)).save(path, format="JPEG", exif=exif)
    found = media_capture_time(path)
    assert found == datetime(2021, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))


def test_the_plain_datetime_tag_is_the_fallback(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(
        path, format="JPEG", exif=_exif(None, plain="2019:01:02 03:04:05")
    )
    assert media_capture_time(path) == datetime(2019, 1, 2, 3, 4, 5)


def test_heic_exif_is_read_through_pillow_heif(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = tmp_path / "IMG_0001.HEIC"
    Image.new("RGB", (64, 64), "red").save(path, format="HEIF", exif=_exif("2022:03:04 05:06:07"))
    assert media_capture_time(path, content_type="image/heic") == datetime(2022, 3, 4, 5, 6, 7)


def test_mp4_creation_date_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    created = datetime(2024, 12, 24, 17, 45, tzinfo=UTC)
    path.write_bytes(mp4_bytes(created, payload_size=4096))
    assert media_capture_time(path, content_type="video/mp4") == created


def test_files_without_a_date_give_none(tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    garbage = tmp_path / "x.mov"
    garbage.write_bytes(b"\x00\x01 not a movie" * 100)
    zeroed = tmp_path / "zero.jpg"
    Image.new("RGB", (8, 8)).save(zeroed, format="JPEG", exif=_exif("0000:00:00 00:00:00"))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (png, garbage, zeroed, empty):
        assert media_capture_time(path) is None, path


def test_a_placeholder_epoch_is_not_a_capture_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4_bytes(datetime(1904, 1, 1, tzinfo=UTC), payload_size=1024))
    assert media_capture_time(path, content_type="video/mp4") is None


def test_reading_metadata_leaves_the_process_locale_alone(tmp_path: Path) -> None:
    # A parser that switched to the "C" locale for dates (hachoir did, and never switched
    # back) would leave the whole agent with an ASCII locale.
    import locale

    before = locale.setlocale(locale.LC_ALL, "")  # the environment's, whatever ran before
    encoding = locale.getpreferredencoding(False)
    zeroed = tmp_path / "zero.jpg"
    Image.new("RGB", (8, 8)).save(zeroed, format="JPEG", exif=_exif("0000:00:00 00:00:00"))
    assert media_capture_time(zeroed) is None
    assert locale.setlocale(locale.LC_ALL) == before
    assert locale.getpreferredencoding(False) == encoding


def test_exif_is_read_from_every_format_that_carries_it_whatever_the_name(
    tmp_path: Path,
) -> None:
    """PNG, WebP, TIFF, AVIF and HEIF (by its header, not its name) as well as JPEG."""
    import pillow_heif

    pillow_heif.register_heif_opener()  # only to write one: reading needs no decoder at all
    when = datetime(2020, 2, 29, 12, 0, 1)
    for fmt, name in (("PNG", "a.png"), ("WEBP", "b.webp"), ("HEIF", "d.jpg"),
                      ("JPEG", "e.bin"), ("TIFF", "f.tif"), ("AVIF", "g.avif")):  # fmt: skip
        path = tmp_path / name
        Image.new("RGB", (16, 16), "blue").save(path, format=fmt, exif=_exif("2020:02:29 12:00:01"))
        assert media_capture_time(path) == when, fmt


def test_reading_a_capture_time_decodes_nothing_and_imports_no_pillow(tmp_path: Path) -> None:
    """The readers are pure Python: a photo's time costs no Pillow import (~40 ms for its
    plugins), no pillow-heif (~150 ms, and no phone has it), and no pixel decoded."""
    import subprocess
    import sys

    photo = tmp_path / "IMG_0002.jpg"
    Image.new("RGB", (64, 48)).save(photo, format="JPEG", exif=_exif("2021:08:09 10:11:12"))
    odd = tmp_path / "IMG_0003.jpg"
    odd.write_bytes(bytes(range(256)) * 64)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes(datetime(2024, 1, 2, tzinfo=UTC), payload_size=1024))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mobile_backup.agent import media_capture_time\n"
        "print([str(media_capture_time(Path(p))) for p in sys.argv[1:]])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('PIL', 'pillow_heif'))))\n"
    )
    found, loaded = subprocess.run(
        [sys.executable, "-c", code, str(photo), str(odd), str(clip)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert found == "['2021-08-09 10:11:12', 'None', '2024-01-02 00:00:00+00:00']"
    assert loaded == "[]"
