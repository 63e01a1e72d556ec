"""Free-up's own guards, before and after the ledger's word (`client.plan_free_up`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from mobile_backup.client import FREE, KEEP, ApiClient, free_planned, plan_free_up
from mobile_backup.client._api import Lookup


class EverythingVerified:
    """A ledger that would let anything go: free-up's own guards must still hold."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, sha256s: Sequence[str]) -> dict[str, Lookup]:
        self.asked.extend(sha256s)
        return {s: Lookup(True, True, deletable=True, reason="verified") for s in sha256s}


def photo(path: Path, data: bytes, *, age: float = 7200) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0" + data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_link_to_a_photo_elsewhere_never_deletes_that_photo(tmp_path: Path) -> None:
    elsewhere = photo(tmp_path / "elsewhere.jpg", b"precious")
    dcim = tmp_path / "DCIM"
    dcim.mkdir()
    (dcim / "link.jpg").symlink_to(elsewhere)
    mine = photo(dcim / "IMG_1.jpg", b"mine")
    api = EverythingVerified()
    plan = plan_free_up(cast(ApiClient, api), [dcim])
    actions = {item.path.name: (item.action, item.reason) for item in plan}
    assert actions["elsewhere.jpg"] == (KEEP, "reached through a link: not deleted")
    assert actions["IMG_1.jpg"] == (FREE, "verified")
    freed = free_planned(plan, permanently=True)
    assert [f.path.name for f in freed if f.freed] == ["IMG_1.jpg"]
    assert elsewhere.exists()
    assert not mine.exists()


def test_a_file_changed_after_it_was_checked_stays(tmp_path: Path) -> None:
    dcim = tmp_path / "DCIM"
    dcim.mkdir()
    edited = photo(dcim / "IMG_2.jpg", b"before")
    fresh = photo(dcim / "IMG_3.jpg", b"just taken", age=5)
    plan = plan_free_up(cast(ApiClient, EverythingVerified()), [dcim])
    reasons = {item.path.name: item.reason for item in plan}
    assert reasons["IMG_3.jpg"] == "changed in the last minute (may be in use)"
    # Edited between the check and the deletion: the bytes that were verified are not
    # the ones on disk any more, so it stays.
    photo(edited, b"after, longer", age=7000)
    freed = free_planned(plan, permanently=True)
    assert [(f.path.name, f.freed, f.reason) for f in freed] == [
        ("IMG_2.jpg", False, "changed since it was checked: kept")
    ]
    assert edited.exists()
    assert fresh.exists()


def test_the_app_touches_files_only_where_they_are_this_devices() -> None:
    from mobile_backup.app._free import can_touch_files

    assert can_touch_files(web=False, client_ip=None)  # installed app: its own files
    assert can_touch_files(web=True, client_ip="127.0.0.1")  # a browser on the serving PC
    assert can_touch_files(web=True, client_ip="::1")
    assert not can_touch_files(web=True, client_ip="192.168.1.20")  # a phone on the LAN
    assert not can_touch_files(web=True, client_ip=None)
