"""The pure-Python EXIF reader: every container phones write, nothing decoded, and HEIC on
the phone side with no pillow-heif installed."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

from PIL import Image

from mobile_backup.media import ExifFields, read_exif


def _exif(original: str, *, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = original
    return exif.tobytes()


def test_the_fields_are_read_from_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(path, "JPEG", exif=_exif("2021:08:09 10:11:12", orientation=6))
    assert read_exif(path) == ExifFields(date_time_original="2021:08:09 10:11:12", orientation=6)


def test_imagemagicks_raw_profile_in_a_png_text_chunk_is_read(tmp_path: Path) -> None:
    """ImageMagick keeps EXIF as hex in a `zTXt` "Raw profile type exif" chunk."""
    raw = b"Exif\x00\x00" + _exif("2018:07:06 05:04:03")[6:]
    text = b"\nexif\n" + str(len(raw)).rjust(8).encode() + b"\n" + raw.hex().encode() + b"\n"
    chunk_data = b"Raw profile type exif\x00\x00" + zlib.compress(text)
    chunk = struct.pack(">I", len(chunk_data)) + b"zTXt" + chunk_data
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + chunk_data))
    path = tmp_path / "magick.png"
    Image.new("RGB", (8, 8)).save(path, "PNG")
    data = path.read_bytes()
    path.write_bytes(data[:33] + chunk + data[33:])  # after IHDR
    with Image.open(path) as check:
        check.load()  # still a valid PNG
    found = read_exif(path)
    assert found is not None
    assert found.date_time_original == "2018:07:06 05:04:03"


def test_what_is_not_a_photo_or_has_no_exif_gives_none(tmp_path: Path) -> None:
    bare = tmp_path / "bare.jpg"
    Image.new("RGB", (8, 8)).save(bare, "JPEG")
    text = tmp_path / "notes.txt"
    text.write_text("2021:08:09 10:11:12")
    truncated = tmp_path / "cut.jpg"
    Image.new("RGB", (8, 8)).save(truncated, "JPEG", exif=_exif("2021:08:09 10:11:12"))
    truncated.write_bytes(truncated.read_bytes()[:40])
    assert read_exif(bare) is None
    assert read_exif(text) is None
    assert read_exif(truncated) is None


def test_a_heic_photo_gets_its_time_on_the_phone_side_without_pillow_heif(tmp_path: Path) -> None:
    """The client's capture time for a HEIC, in a process where pillow-heif cannot be
    imported (as on a phone: Flet's mobile index has no wheel of it)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    photo = tmp_path / "IMG_4242.HEIC"
    Image.new("RGB", (64, 64), "red").save(photo, format="HEIF", exif=_exif("2023:04:05 06:07:08"))
    code = (
        "import sys\n"
        "class NoHeif:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pillow_heif':\n"
        "            raise ImportError('pillow-heif is not installed here')\n"
        "sys.meta_path.insert(0, NoHeif())\n"
        "from pathlib import Path\n"
        "from mobile_backup.client._media import capture_of\n"
        "found = capture_of(Path(sys.argv[1]), content_type='image/heic', file_time=False)\n"
        "print(found.when.isoformat(), found.source.value)\n"
        "import importlib.util\n"
        "try:\n"
        "    import pillow_heif\n"
        "except ImportError:\n"
        "    print('no pillow_heif')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(photo)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["2023-04-05T06:07:08+00:00 exif", "no pillow_heif"]
