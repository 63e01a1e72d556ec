"""Real sample media for the demo: JPEGs with EXIF capture times, a PNG and an MP4.

The MP4 is written box by box (ftyp, moov/mvhd with a creation time, mdat), so no video
encoder is needed: it is a valid ISO base-media file that metadata readers parse.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Seconds between the MP4 epoch (1904-01-01) and the Unix epoch.
_MP4_EPOCH_OFFSET = 2_082_844_800


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    taken_at: datetime | None


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(created: datetime, *, payload_size: int = 64 * 1024, seed: int = 0) -> bytes:
    """A minimal MP4 whose movie header carries `created` as its creation time."""
    ts = int(created.timestamp()) + _MP4_EPOCH_OFFSET
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = _box(
        b"mvhd",
        struct.pack(
            ">B3sIIII", 0, b"\0\0\0", ts, ts, 1000, 1000
        )  # version/flags, times, scale, duration
        + struct.pack(">IH", 0x00010000, 0x0100)  # rate 1.0, volume 1.0
        + b"\0" * 10
        + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # unity matrix
        + b"\0" * 24
        + struct.pack(">I", 2),  # next track id
    )
    rng = random.Random(seed)
    mdat = _box(b"mdat", rng.randbytes(payload_size))
    return ftyp + _box(b"moov", mvhd) + mdat


def _jpeg(path: Path, taken: datetime, *, size: tuple[int, int], seed: int) -> None:
    from PIL import ExifTags, Image

    rng = random.Random(seed)
    # Noise makes every sample a distinct, realistically sized photo.
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    exif = Image.Exif()
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp  # DateTime
    exif[0x010F] = "Mobile Backup demo camera"  # Make
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = stamp  # DateTimeOriginal
    img.save(path, format="JPEG", quality=90, exif=exif)


def make_samples(folder: Path, *, photos: int = 4) -> list[Sample]:
    """Write the demo's 'camera roll' into `folder` and describe it."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    for i in range(photos):
        taken = datetime(2023 + i % 3, 1 + (i * 5) % 12, 1 + i, 9 + i, 30, 0, tzinfo=UTC)
        name = f"IMG_{2000 + i:04d}.jpg" if i % 2 == 0 else f"Holiday photo {i}.jpg"
        path = folder / name
        _jpeg(path, taken, size=(320 + 16 * i, 240), seed=i)
        samples.append(Sample(path, taken))
    png = folder / "Screenshot 2024-02-29.png"
    rng = random.Random(99)
    Image.frombytes("RGB", (200, 120), rng.randbytes(200 * 120 * 3)).save(png, format="PNG")
    samples.append(Sample(png, None))
    clip_time = datetime(2024, 12, 24, 17, 45, 0, tzinfo=UTC)
    clip = folder / "VID_20241224_174500.mp4"
    clip.write_bytes(mp4_bytes(clip_time, payload_size=256 * 1024, seed=7))
    samples.append(Sample(clip, clip_time))
    return samples
