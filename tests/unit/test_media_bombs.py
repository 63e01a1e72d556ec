"""Hostile pictures cost milliseconds and megabytes, in every process that reads them.

A 519 KB PNG of 13000² pixels took 650 MB and 13-27 s in the client, the agent and the app's
thumbnailer (Pillow decoded every pixel to look for EXIF). Each component's real entry point
is run over the whole bomb family in a process of its own, its peak memory measured by the
kernel (the process's own high-water mark, `VmHWM`) after a warm-up on a real photo, so
imports and Pillow's plugins are not counted against the bomb. (Not `ru_maxrss`: Linux carries
the parent's peak across the fork and exec that start the child, so under pytest's gigabyte
it would not see a bomb's few hundred megabytes.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _bombs import BOMB_EXIF, write_bombs

MAX_SECONDS = 2.0
MAX_GROWTH_MB = 100

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from PIL import Image

which, warm, paths = sys.argv[1], Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
if which == "thumbnailer":
    from mobile_backup.media import make_thumbnail as run
elif which == "client":
    from mobile_backup.client._media import capture_of
    def run(p):
        return capture_of(p, content_type="image/png", file_time=False)
else:
    from mobile_backup.agent import media_capture_time as run
assert run(warm) is not None  # the warm-up is a real photo: the entry point works


def peak_kb():
    try:
        with open("/proc/self/status") as status:
            return next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: the lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


base = peak_kb()
rows = []
for p in paths:
    started = time.perf_counter()
    found = run(p)
    rows.append({
        "name": p.name,
        "seconds": time.perf_counter() - started,
        "growth_mb": (peak_kb() - base) / 1024,
        "found": None if found is None else str(getattr(found, "when", found))[:19],
    })
print(json.dumps(rows))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bombs(tmp_path_factory.mktemp("bombs"))


@pytest.fixture(scope="module")
def warm_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("warm") / "IMG_0001.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2022:01:02 03:04:05"
    Image.new("RGB", (1200, 900), "green").save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.mark.parametrize("component", ["thumbnailer", "client", "agent"])
def test_every_bomb_costs_under_two_seconds_and_100_mb(
    component: str, bombs: dict[str, Path], warm_photo: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, component, str(warm_photo), *map(str, bombs.values())],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == list(bombs)
    # Peak memory only grows: each row's figure bounds that bomb and every one before it.
    over = [r for r in rows if r["seconds"] > MAX_SECONDS or r["growth_mb"] > MAX_GROWTH_MB]
    assert over == [], over
    if component != "thumbnailer":
        # the time after the image data is found without decoding a pixel
        found = {r["name"]: r["found"] for r in rows}
        assert found["png-13000-exif-after-idat.png"] == "2021-05-06 07:08:09", BOMB_EXIF
    else:
        assert all(r["found"] is None for r in rows)  # none is a picture worth decoding
