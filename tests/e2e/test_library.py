"""The library a family browses, on the local stack with the real client, API, ingest and
agent: folders by member name that survive a restart of the stack, each date source, the
file's own time, and a Live Photo kept together."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from mobile_backup.client import ApiClient, Authenticator, TokenStore, Uploader
from mobile_backup.core.wire import FileView
from mobile_backup.local import LocalStack
from mobile_backup.local._demo import wait_for_downloads
from mobile_backup.local._samples import mp4_bytes

pytestmark = pytest.mark.e2e


def camera_roll(folder: Path) -> None:
    folder.mkdir(parents=True)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2020:05:03 10:00:00"
    # A Live Photo: the still (EXIF May 2020) and its movie, whose own header says Nov 2026.
    Image.new("RGB", (32, 32), "blue").save(folder / "IMG_5000.JPG", format="JPEG", exif=exif)
    (folder / "IMG_5000.MOV").write_bytes(mp4_bytes(datetime(2026, 11, 2, tzinfo=UTC)))
    Image.new("RGB", (32, 32), "green").save(folder / "Screenshot 2024-02-29 at 17.45.00.png")
    old = folder / "scan.jpg"  # no EXIF, no date in the name: the file's own time
    Image.new("RGB", (32, 32), "red").save(old, format="JPEG")
    then = datetime(2015, 6, 7, 8, 9, 10, tzinfo=UTC).timestamp()
    os.utime(old, (then, then))


def back_up(library: Path, roll: Path, work: Path) -> dict[str, FileView]:
    """One run of the local stack: upload the roll as the demo member, wait for the PC."""
    with LocalStack(library=library) as stack:
        auth = Authenticator(settings=stack.settings, store=TokenStore(work / "session.json"))
        auth.login(stack.email, stack.password)
        api = ApiClient(base_url=stack.settings.require("api_url"), token=auth.access_token)
        try:
            summary = Uploader(api=api, device="test").upload(sorted(roll.iterdir()))
            shas = {r.sha256 for r in summary.results if r.sha256}
            records = wait_for_downloads(api, shas, timeout=60)
        finally:
            api.close()
    return {r.filename: r for r in records.values()}


def test_names_dates_and_live_photos_survive_a_restart(tmp_path: Path) -> None:
    roll, library = tmp_path / "roll", tmp_path / "library"
    camera_roll(roll)
    first = back_up(library, roll, tmp_path / "w1")

    paths = {name: r.receipt.path for name, r in first.items() if r.receipt}
    assert paths == {
        "IMG_5000.JPG": "demo/2020/05/IMG_5000.JPG",
        "IMG_5000.MOV": "demo/2020/05/IMG_5000.MOV",  # beside its photo, not in 2026/11
        "Screenshot 2024-02-29 at 17.45.00.png": (
            "demo/2024/02/Screenshot 2024-02-29 at 17.45.00.png"
        ),
        "scan.jpg": "demo/2015/06/scan.jpg",
    }
    sources = {name: r.receipt.capture_source for name, r in first.items() if r.receipt}
    assert sources == {
        "IMG_5000.JPG": "exif",
        "IMG_5000.MOV": "live_photo",
        "Screenshot 2024-02-29 at 17.45.00.png": "filename",
        "scan.jpg": "file_time",
    }
    assert {r.owner_name for r in first.values()} == {"demo"}
    # Placed files carry the capture time as their own.
    shot = library / paths["Screenshot 2024-02-29 at 17.45.00.png"]
    assert datetime.fromtimestamp(shot.stat().st_mtime) == datetime(2024, 2, 29, 17, 45)
    scan = library / paths["scan.jpg"]
    assert scan.stat().st_mtime == datetime(2015, 6, 7, 8, 9, 10, tzinfo=UTC).timestamp()

    # A restart of the local stack is a new user pool and a new ledger: the demo member
    # gets a new id, and the same name, so the same folder and no second copy of anything.
    (roll / "IMG_6000.jpg").write_bytes((roll / "scan.jpg").read_bytes() + b"new")
    second = back_up(library, roll, tmp_path / "w2")
    assert second["IMG_6000.jpg"].receipt is not None
    top = {p.name for p in library.iterdir() if not p.name.startswith(".")}
    assert top == {"demo"}
    placed = sorted(
        p.name for p in library.rglob("*") if p.is_file() and ".mobile-backup" not in p.parts
    )
    assert placed == sorted([*paths_names(paths), "IMG_6000.jpg"])


def paths_names(paths: dict[str, str]) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in paths.values()]
