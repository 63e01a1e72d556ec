"""The mobile app in a real browser: Debian's Chromium driving the web mode on the local stack.

Flutter draws on a canvas; the test turns on Flutter's accessibility tree (the hidden
"Enable accessibility" placeholder) and then finds controls by their labels and text, as
a screen reader would. Every request that leaves 127.0.0.1 is refused, which also proves
the web mode works offline. Screenshots of each screen go to test-output/app/.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    BrowserContext,
    expect,
)

from _browser import (
    DESKTOP,
    PHONE,
    SHOTS,
    _after_the_apps_focus,
    _library_files,
    _open,
    _shot,
    _sign_in,
    _sign_out,
    _tab,
    _type,
    _unnamed_buttons,
)
from mobile_backup.app import AppController, WebAppServer
from mobile_backup.core import sha256_file
from mobile_backup.local import LocalStack
from mobile_backup.local._samples import make_samples

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(library=tmp_path / "library", poll_seconds=1) as s:
        yield s


@pytest.fixture
def app_url(stack: LocalStack) -> Iterator[str]:
    with WebAppServer(AppController(settings=stack.settings)) as server:
        yield server.url


def test_sign_in_pick_files_and_see_both_receipts(
    stack: LocalStack, app_url: str, browser: BrowserContext, tmp_path: Path
) -> None:
    samples = [s.path for s in make_samples(tmp_path / "camera") if s.path.suffix == ".jpg"]
    page = _open(browser, app_url)

    sign_in = page.get_by_role("button", name="Sign in")
    expect(sign_in).to_be_visible(timeout=30_000)
    _shot(page, "1-sign-in")

    _type(page, "Email", stack.email)
    _type(page, "Password", "not-the-password")
    # Every button on the sign-in screen has a name a screen reader says (issue 31, 18):
    # the password's show/hide button too, and it shows what was typed.
    assert _unnamed_buttons(page) == 0
    page.get_by_role("button", name="Show password").click()
    expect(page.get_by_role("button", name="Hide password")).to_be_visible(timeout=10_000)
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("type", "text")
    page.get_by_role("button", name="Hide password").click()
    expect(page.get_by_role("button", name="Show password")).to_be_visible(timeout=10_000)
    sign_in.click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible(timeout=15_000)
    _shot(page, "2-wrong-password")

    _type(page, "Password", stack.password)
    sign_in.click()
    pick = page.get_by_role("button", name="Choose photos and videos")
    expect(pick).to_be_visible(timeout=15_000)
    _shot(page, "3-back-up")

    with page.expect_file_chooser() as chooser:
        pick.click()
    chooser.value.set_files([str(p) for p in samples])
    expect(page.get_by_text("100 %")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("All files backed up")).to_be_visible()
    _shot(page, "4-queue-done")

    _tab(page, "History").click()
    for photo in samples:  # each tile says both steps: in the cloud, then on the PC
        tile = page.get_by_role("button", name=f"{photo.name}: in the cloud, on your PC")
        expect(tile).to_be_visible(timeout=30_000)
    _shot(page, "5-history")
    tile.click()  # the receipt, in full
    expect(page.get_by_text("✓ checksum verified by S3")).to_be_visible(timeout=15_000)
    expect(
        page.get_by_text(re.compile(rf"^demo/\d{{4}}/\d{{2}}/{re.escape(photo.name)}$"))
    ).to_be_visible()
    page.get_by_role("button", name="Close").click()

    _tab(page, "Settings").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # Tuning is folded away under "Advanced" (issue 31, 19).
    expect(page.get_by_role("slider")).to_have_count(0)
    # No folders (a browser cannot choose them): free-up says what works from here.
    page.get_by_role("button", name="Check what can go").dispatch_event("click")
    expect(page.get_by_text(re.compile("run `mobile-backup free-up FOLDER`"))).to_be_visible(
        timeout=10_000
    )
    _shot(page, "6-settings")
    page.mouse.move(200, 400)
    page.mouse.wheel(0, 2000)  # the fold is below the other cards
    page.get_by_role("button", name=re.compile("^Advanced")).click()
    expect(page.get_by_role("slider")).to_be_visible(timeout=10_000)
    expect(
        page.get_by_role("group", name=re.compile("Files uploaded at the same time: 3"))
    ).to_be_visible()
    _shot(page, "6b-settings-advanced")

    # What the receipts claim is true: every photo is in the library, byte for byte.
    placed = {sha256_file(p) for p in stack.library.rglob("*.jpg")}
    assert placed == {sha256_file(p) for p in samples}
    # The browser's copies were only kept until the cloud had them.
    upload_dir = stack.settings.effective_state_dir / "app-uploads"
    assert not [p for p in upload_dir.rglob("*") if p.is_file()]
    shutil.rmtree(tmp_path / "camera")


def test_two_members_share_a_phone_and_never_see_or_send_each_others_files(
    stack: LocalStack, app_url: str, browser: BrowserContext, tmp_path: Path
) -> None:
    """Issue 9, items 4 to 6, as two people would meet them on one phone.

    Member A picks two videos and pauses; A signs out. Member B, just invited with a
    temporary password, signs in, chooses a new password, sees none of A's queue, and backs
    up a photo and an empty file (which must not hang at "receiving"). B signs out; A signs
    back in and A's files finish. Each file lands under its owner only.
    """
    from mobile_backup.aws import cognito_client
    from mobile_backup.core import temporary_password
    from mobile_backup.deploy import add_member

    temp = temporary_password()
    bea = add_member(
        cognito_client(stack.settings, component="test"),
        user_pool_id=stack.settings.require("user_pool_id"),
        email="bea@example.com",
        temporary_password=temp,
    )
    assert bea.status == "FORCE_CHANGE_PASSWORD"
    a_sub = stack.user_sub
    assert a_sub
    camera = tmp_path / "camera"
    camera.mkdir()
    a_files = [camera / "VID_A1.mp4", camera / "VID_A2.mp4"]
    for i, path in enumerate(a_files):  # big enough to pause before they are done
        path.write_bytes(bytes([i]) * 24 * 1024 * 1024)
    b_photo = next(s.path for s in make_samples(tmp_path / "bea") if s.path.suffix == ".jpg")
    b_empty = tmp_path / "bea" / "empty.jpg"
    b_empty.write_bytes(b"")

    page = _open(browser, app_url)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
    _sign_in(page, stack.email, stack.password)
    pick = page.get_by_role("button", name="Choose photos and videos")
    expect(pick).to_be_visible(timeout=15_000)
    with page.expect_file_chooser() as chooser:
        pick.click()
    chooser.value.set_files([str(p) for p in a_files])
    pause = page.get_by_role("button", name="Pause")
    pause.click(timeout=30_000)
    expect(page.get_by_role("button", name="Resume")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("VID_A1.mp4", exact=True)).to_be_visible()
    _shot(page, "members-1-a-paused")
    _sign_out(page)

    # B: the temporary password, then a password of their own (a weak one is explained).
    _sign_in(page, "bea@example.com", temp)
    expect(page.get_by_text(re.compile("temporary password"))).to_be_visible(timeout=15_000)
    expect(page.get_by_text(re.compile(r"at least 10 characters"))).to_be_visible()
    _type(page, "New password", "weak")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_text(re.compile(r"needs at least 10 characters"))).to_be_visible(
        timeout=15_000
    )
    _shot(page, "members-2-b-new-password")
    _type(page, "New password", "Bea-Own-Password-7")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(pick).to_be_visible(timeout=15_000)
    _tab(page, "Queue").click()
    expect(page.get_by_text("Nothing to back up right now")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("VID_A1.mp4", exact=True)).to_have_count(0)  # A's queue is not B's
    _tab(page, "Back up").click()
    with page.expect_file_chooser() as chooser:
        pick.click()
    chooser.value.set_files([str(b_photo), str(b_empty)])
    expect(page.get_by_text("All files backed up")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("VID_A1.mp4", exact=True)).to_have_count(0)
    _shot(page, "members-3-b-done")
    _sign_out(page)

    # A again: their paused files come back, and finish.
    _sign_in(page, stack.email, stack.password)
    expect(pick).to_be_visible(timeout=15_000)
    _tab(page, "Queue").click()
    expect(page.get_by_text("All files backed up")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Show", exact=True).click()  # the finished files
    expect(page.get_by_text("VID_A1.mp4", exact=True)).to_be_visible()
    # Even the one the browser was still sending when A signed out (it went to A's queue).
    expect(page.get_by_text("VID_A2.mp4", exact=True)).to_be_visible()
    expect(page.get_by_text("empty.jpg", exact=True)).to_have_count(0)
    _shot(page, "members-4-a-done")

    deadline = time.monotonic() + 60
    a_want = {sha256_file(p) for p in a_files}
    b_want = {sha256_file(b_photo), sha256_file(b_empty)}
    while (_library_files(stack, a_sub), _library_files(stack, bea.sub)) != (a_want, b_want):
        assert time.monotonic() < deadline, _ledger_says(stack, a_sub, bea.sub)
        time.sleep(0.5)


def _ledger_says(stack: LocalStack, *subs: str) -> list[tuple[str, str, str]]:
    """What the ledger knows of these members' files (for a failure message)."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.ledger import Ledger

    ledger = Ledger(
        dynamodb_client(stack.settings, component="test"), stack.settings.require("table")
    )
    found: list[tuple[str, str, str]] = []
    for sub in subs:
        records, _ = ledger.list_files(sub, limit=100)
        found.extend((sub[:8], r.filename, str(r.status)) for r in records)
    return found


def test_history_shows_a_tick_for_each_pc_of_the_household(
    stack: LocalStack, app_url: str, browser: BrowserContext, tmp_path: Path
) -> None:
    """Issue 11: a second PC (`agent register laptop`) receives every file too, and the
    history says so per PC, under the member's name."""
    from mobile_backup.agent import AgentOptions, build_agent, register_pc

    register_pc(stack.settings, "laptop")
    laptop = build_agent(
        stack.settings.model_copy(update={"pc_name": "laptop", "library": tmp_path / "lap"}),
        AgentOptions(poll_wait_s=1),
    )
    stop = threading.Event()
    runner = threading.Thread(target=laptop.run, args=(stop,), daemon=True)
    runner.start()
    try:
        photo = next(s.path for s in make_samples(tmp_path / "camera") if s.path.suffix == ".jpg")
        page = _open(browser, app_url)
        _sign_in(page, stack.email, stack.password)
        pick = page.get_by_role("button", name="Choose photos and videos")
        with page.expect_file_chooser() as chooser:
            pick.click()
        chooser.value.set_files([str(photo)])
        expect(page.get_by_text("All files backed up")).to_be_visible(timeout=30_000)
        _tab(page, "History").click()
        tile = page.get_by_role("button", name=f"{photo.name}: in the cloud, on PC laptop and main")
        expect(tile).to_be_visible(timeout=30_000)
        tile.click()
        for pc in ("laptop", "main"):
            expect(page.get_by_text(f"PC {pc}", exact=True)).to_be_visible(timeout=15_000)
        expect(page.get_by_text(re.compile(rf"^demo/.+{re.escape(photo.stem)}"))).to_have_count(2)
        _shot(page, "7-history-two-pcs")
    finally:
        stop.set()
        runner.join(30)
        laptop.close()
    mine = {sha256_file(p) for p in (tmp_path / "lap").rglob("*.jpg")}
    assert mine == {sha256_file(photo)}


TWO_DAYS = 2 * 86400


def test_free_up_space_previews_asks_then_moves_only_verified_files_to_the_trash(
    stack: LocalStack,
    browser: BrowserContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14 in the app, desktop layout: the action, the preview, the confirmation, and
    afterwards exactly the verified files gone (to this test's own trash)."""
    import os

    from mobile_backup.agent import build_agent
    from mobile_backup.client import ApiClient, Authenticator, TokenStore, Uploader
    from mobile_backup.local._demo import wait_for_downloads

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    camera = tmp_path / "Camera"
    camera.mkdir()
    photos = []
    for sample in make_samples(tmp_path / "samples", photos=3):
        if sample.path.suffix == ".jpg":
            photos.append(camera / sample.path.name)
            shutil.copyfile(sample.path, photos[-1])
    auth = Authenticator(settings=stack.settings, store=TokenStore(tmp_path / "session.json"))
    auth.login(stack.email, stack.password)
    api = ApiClient(base_url=stack.settings.require("api_url"), token=auth.access_token)
    try:
        sent = Uploader(api=api).upload(photos)
        wait_for_downloads(api, {r.sha256 for r in sent.results if r.sha256}, timeout=60)
    finally:
        api.close()
    photo_shas = _shas(photos)
    later = camera / "IMG_9999.jpg"  # taken after the backup: not in the cloud at all
    later.write_bytes(photos[0].read_bytes() + b"another photo")
    for path in camera.iterdir():
        then = time.time() - TWO_DAYS
        os.utime(path, (then, then))
    checker = build_agent(stack.settings)  # the PC's audit (it runs every 6 h on its own)
    try:
        assert checker.reconciler().audit().ok
    finally:
        checker.close()

    controller = AppController(settings=stack.settings)
    controller.update_prefs(controller.prefs.with_folder(str(camera)))
    with WebAppServer(controller) as server:
        page = _open(browser, server.url)
        page.set_viewport_size(DESKTOP)
        _sign_in(page, stack.email, stack.password)
        _tab(page, "Settings").click()
        # Screen-reader taps, as in `_sign_out`: Playwright's hit test sees another card's
        # semantics node over the settings cards' buttons.
        page.get_by_role("button", name="Check what can go").dispatch_event("click")
        going = page.get_by_text(re.compile(r"^3 files \(.+\) can be removed from this device\.$"))
        expect(going).to_be_visible(timeout=60_000)
        # The photo taken after the audit stays, whatever its step: the app's automatic
        # backup of the chosen folder may be sending it meanwhile, but no audit saw it yet.
        expect(page.get_by_text(re.compile(r"^1 stay: "))).to_be_visible()
        _shot(page, "8-free-up-preview")

        page.get_by_role("button", name=re.compile(r"^Free up ")).dispatch_event("click")
        expect(page.get_by_text("Free up space?")).to_be_visible()
        expect(
            page.get_by_text(re.compile(r"^Move 3 files \(.+\) from this device"))
        ).to_be_visible()
        _shot(page, "9-free-up-confirm")
        page.get_by_role("button", name="Move to trash").dispatch_event("click")
        expect(page.get_by_text(re.compile(r"^Freed .+: 3 moved to the trash\.$"))).to_be_visible(
            timeout=30_000
        )
        _shot(page, "10-free-up-done")
        # The gallery still shows every photo (issue 32, item 4): their thumbnails were
        # kept in the cloud before they left, made from the photos themselves.
        _tab(page, "History").click()
        on_pc = page.get_by_role("button", name=re.compile(r"^IMG_\d+\.jpg: in the cloud, on"))
        expect(on_pc.first).to_be_visible(timeout=30_000)
        time.sleep(1)  # the tiles' pictures are decoded after the tiles appear
        _shot(page, "10b-gallery-after-free-up")
        thumbs = controller.thumbs
        assert thumbs is not None
        assert all(thumbs.get(sha) for sha in photo_shas)

    # Only the photo that was never backed up is left on "this device".
    assert [p.name for p in camera.iterdir()] == ["IMG_9999.jpg"]
    trashed = sorted(p.name for p in (tmp_path / "xdg" / "Trash" / "files").iterdir())
    assert trashed == sorted(p.name for p in photos)

    # Another device of the same member, which never had the photos, shows them too: its
    # thumbnails come from the cloud.
    tablet = AppController(
        settings=stack.settings.model_copy(update={"state_dir": tmp_path / "tablet"})
    )
    with WebAppServer(tablet) as server:
        page = _open(browser, server.url)
        page.set_viewport_size(DESKTOP)
        _sign_in(page, stack.email, stack.password)
        _tab(page, "History").click()
        on_pc = page.get_by_role("button", name=re.compile(r"^IMG_\d+\.jpg: in the cloud, on"))
        expect(on_pc.first).to_be_visible(timeout=30_000)
        deadline = time.monotonic() + 30
        while (tablet.thumbs is None or tablet.thumbs.fetched < len(photos)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert tablet.thumbs is not None
        assert tablet.thumbs.made == 0  # not one photo on this device
        assert tablet.thumbs.fetched >= len(photos)
        assert all(tablet.thumbs.get(sha, make=False) for sha in photo_shas)
        time.sleep(1)  # the tiles redraw with their pictures
        _shot(page, "10c-gallery-on-another-device")


def _shas(paths: list[Path]) -> list[str]:
    """The content ids of files (read before they go)."""
    return [sha256_file(p) for p in paths]


def _start_pc(stack: LocalStack, library: Path) -> tuple[threading.Event, threading.Thread, Any]:
    from mobile_backup.agent import AgentOptions, build_agent

    settings = stack.settings.model_copy(update={"library": library})
    agent = build_agent(settings, AgentOptions(poll_wait_s=1))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    return stop, runner, agent


def test_gallery_status_filter_detail_and_the_signal_when_the_backend_goes_away(
    quiet_stack: LocalStack,
    browser: BrowserContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17 at 400 px: the status card, a .txt refused, the gallery with thumbnails and
    two-step badges, the 'not on the PC yet' filter, the detail sheet with the receipt, and
    the top bar's icon once the stack stops."""
    from mobile_backup.agent import _loop
    from mobile_backup.app import _shell

    monkeypatch.setattr(_shell, "STATUS_POLL_SECONDS", 1.0)
    monkeypatch.setattr(_loop, "HEARTBEAT_SECONDS", 1.0)  # "Check now" is seen in a second
    stack = quiet_stack
    samples = [s.path for s in make_samples(tmp_path / "camera")]
    pictures = [p for p in samples if p.suffix in (".jpg", ".png")]
    notes = tmp_path / "camera" / "notes.txt"
    notes.write_text("shopping list\n", encoding="utf-8")
    controller = AppController(settings=stack.settings)
    with WebAppServer(controller) as server:
        page = _open(browser, server.url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        _sign_in(page, stack.email, stack.password)
        expect(page.get_by_text(f"Signed in as {stack.email}")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("Your PC has not collected any file yet.")).to_be_visible()
        _shot(page, "11-status-before")
        assert _unnamed_buttons(page) == 0

        pick = page.get_by_role("button", name="Choose photos and videos")
        with page.expect_file_chooser() as chooser:
            pick.click()
        chooser.value.set_files([str(p) for p in [*samples, notes]])
        # Not a photo or video: a skip, as in the CLI, not a failure (issue 31, item 3): the
        # queue ends done, with no Retry for it and no warning on the top bar.
        refused = page.get_by_text("skipped: not a photo or video")
        expect(refused).to_be_visible(timeout=30_000)
        expect(page.get_by_text("All photos and videos backed up · 1 skipped")).to_be_visible(
            timeout=30_000
        )
        expect(page.get_by_text("notes.txt", exact=True)).to_be_visible()  # said, in view
        expect(page.get_by_role("button", name="Retry notes.txt")).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("attention"))).to_have_count(0)
        _shot(page, "12-queue-txt-skipped")
        assert _unnamed_buttons(page) == 0

        # In the cloud, no PC yet: the gallery says so on every tile, and the filter finds them.
        _tab(page, "History").click()
        first = pictures[0].name
        waiting = page.get_by_role("button", name=f"{first}: in the cloud, not on your PC yet")
        expect(waiting).to_be_visible(timeout=30_000)
        page.get_by_role("checkbox", name="Not on the PC yet").click()
        for p in samples:
            expect(
                page.get_by_role("button", name=re.compile(rf"^{re.escape(p.name)}: "))
            ).to_be_visible()
        _shot(page, "13-gallery-not-on-pc-yet")
        assert _unnamed_buttons(page) == 0
        thumbs = controller.thumbs
        assert thumbs is not None
        assert thumbs.made >= len(pictures)  # made from the browser's copies before they went

        # The PC collects: the ticks arrive, the filter empties, the status card counts.
        stop, runner, agent = _start_pc(stack, stack.library)
        try:
            expect(page.get_by_text("Everything is on your PC")).to_be_visible(timeout=60_000)
            page.get_by_role("checkbox", name="All").click()
            tile = page.get_by_role("button", name=f"{first}: in the cloud, on your PC")
            expect(tile).to_be_visible(timeout=30_000)
            _shot(page, "14-gallery")
            tile.click()
            expect(page.get_by_text("Saved as")).to_be_visible(timeout=15_000)
            expect(
                page.get_by_text(
                    re.compile(rf"^demo/\d{{4}}/\d{{2}}/.*{re.escape(pictures[0].stem)}")
                )
            ).to_be_visible()
            expect(page.get_by_text("Taken")).to_be_visible()
            expect(page.get_by_text("Uploaded")).to_be_visible()
            # In a parent's words (issue 31, item 16): no audit, UTC or hostname jargon.
            expect(
                page.get_by_text(re.compile(r"^✓ saved and checked, \d\d \w{3} \d{4}"))
            ).to_be_visible()
            expect(
                page.get_by_text(re.compile(r"^Keep it for now: PC main checks its copies"))
            ).to_be_visible()
            expect(page.get_by_text(re.compile("re-verified|UTC|audit"))).to_have_count(0)
            _shot(page, "15-detail-sheet")
            assert _unnamed_buttons(page) == 0
            # "Check now" (item 16's action): the PC checks its copies at its next heartbeat
            # instead of in a few hours, and the file may then go from the phone.
            page.get_by_role("button", name="Check now").click()
            expect(
                page.get_by_text(re.compile(r"^Asked PC main to check its copies now"))
            ).to_be_visible(timeout=15_000)
            _shot(page, "15-detail-sheet-check-now")
            page.get_by_role("button", name="Close").click()
            deadline = time.monotonic() + 60
            while True:
                tile.click()
                verdict = page.get_by_text(re.compile(r"^(You can delete it here|Keep it)"))
                expect(verdict).to_be_visible(timeout=15_000)
                if verdict.inner_text().startswith("You can delete it here"):
                    break
                assert time.monotonic() < deadline, "the PC never checked after Check now"
                page.get_by_role("button", name="Close").click()
                time.sleep(2)
            expect(page.get_by_role("button", name="Check now")).to_have_count(0)
            _shot(page, "15-detail-sheet-checked")
            page.get_by_role("button", name="Close").click()
            page.set_viewport_size(DESKTOP)  # a wide window: more photos per row
            on_pc = page.get_by_role("button", name=re.compile(r": in the cloud, on your PC"))
            expect(on_pc.first).to_be_visible()
            _shot(page, "14-gallery-desktop")
            on_pc.first.click()
            expect(page.get_by_text("Saved as")).to_be_visible(timeout=15_000)
            _shot(page, "15-detail-sheet-desktop")
            page.get_by_role("button", name="Close").click()
            page.set_viewport_size(PHONE)
            # The rail gives way to the bottom bar: click the bar's tab once it is there.
            back_up = page.get_by_role("tab", name="Back up")
            expect(back_up).to_be_visible(timeout=15_000)
            expect(page.get_by_role("button", name=re.compile(r"^Back up\s+Tab"))).to_have_count(0)
            back_up.click()
            expect(page.get_by_text(f"{len(samples)} on your PC")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("library folder demo", exact=False)).to_be_visible(
                timeout=30_000
            )
            expect(page.get_by_text(re.compile(r"^Your PC last collected a file"))).to_be_visible()
            expect(page.get_by_text("0 failed")).to_be_visible()
            _shot(page, "16-status-after")
        finally:
            stop.set()
            runner.join(30)
            agent.close()

        # The backend goes away: the top bar says so instead of a constant "done".
        signal = page.get_by_role("button", name=re.compile("Connected"))
        expect(signal).to_be_visible(timeout=15_000)
        stack.stop()
        offline = page.get_by_role("button", name=re.compile("Can't reach your backup service"))
        expect(offline).to_be_visible(timeout=30_000)
        # Said twice: the top bar's icon, and the status card on the Back up screen.
        expect(page.get_by_text(re.compile("^Can't reach your backup service"))).to_have_count(2)
        # The last figures read stay, with their age: never zeros (issue 31, item 2).
        expect(page.get_by_text(f"{len(samples)} on your PC")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Figures as of "))).to_be_visible(timeout=15_000)
        _shot(page, "17-backend-unreachable")
        expect(page.get_by_role("tab")).to_have_count(4)  # a phone's bottom bar
        page.set_viewport_size(DESKTOP)
        # A wide window: Material's navigation rail instead of a stretched bottom bar
        # (issue 31, item 17), and the cards of one width.
        destination = re.compile(r"^(Back up|Queue|History|Settings)\s+Tab")
        rail = page.get_by_role("button", name=destination)
        expect(rail).to_have_count(4, timeout=15_000)
        expect(page.get_by_role("tab")).to_have_count(0)
        _shot(page, "17-backend-unreachable-desktop")

    # An app opened while the service is away has read nothing: dashes, not zeros.
    with WebAppServer(AppController(settings=stack.settings)) as again:
        page = _open(browser, again.url)
        expect(page.get_by_text("— on your PC")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("— waiting for your PC")).to_be_visible()
        expect(
            page.get_by_text("Your backups cannot be read until the service answers.")
        ).to_be_visible(timeout=30_000)
        page.wait_for_timeout(3000)  # the canvas lags the accessibility tree here
        _shot(page, "17-unreachable-from-the-start")


def _seed_history(stack: LocalStack, controller: AppController, phone: Path, n: int) -> None:
    """`n` small photos on the 'phone', each backed up (in the ledger and the app's journal)
    and waiting for a PC: what a member who has used the app for a while sees."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from PIL import Image

    from mobile_backup.aws import dynamodb_client
    from mobile_backup.client._parts import FileHash, FileStamp
    from mobile_backup.core import FileMeta
    from mobile_backup.ledger import Ledger

    ledger = Ledger(
        dynamodb_client(stack.settings, component="test"), stack.settings.require("table")
    )
    sub = stack.user_sub
    assert sub
    journal = controller.journal()
    phone.mkdir(parents=True)
    now = datetime.now(UTC)

    def one(i: int) -> None:
        path = phone / f"IMG_{i:04d}.jpg"
        noise = random.Random(i).randbytes(64 * 48 * 3)  # every photo different
        Image.frombytes("RGB", (64, 48), noise).save(path)
        sha = sha256_file(path)
        size = path.stat().st_size
        taken = datetime(2020 + i % 6, 1 + i % 12, 1 + i % 28, 12, 0)
        meta = FileMeta(sha256=sha, size=size, filename=path.name, content_type="image/jpeg",
                        taken_at=taken, taken_at_source="exif")  # fmt: skip
        ledger.reserve(sub, meta, now=now, owner_name="demo", absent=True)
        ledger.mark_uploaded(sub, sha, size=size, now=now)
        journal.remember_hash(path, FileHash(sha256=sha, stamp=FileStamp.of(path)))
        journal.mark_done(sha, path=path, size=size)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def test_a_history_of_1000_files_paints_one_page_and_pages_against_the_api(
    quiet_stack: LocalStack,
    browser: BrowserContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: 1,000 files. The app reads the ledger a page at a time, draws one page of
    tiles (so only those thumbnails are made and sent), and draws more as the list reaches its
    end. Time to first paint and the browser's memory are measured (generous bounds) and
    written to test-output/app/gallery-1000.txt."""
    from mobile_backup.app import _history, _screen_history
    from mobile_backup.client import ApiClient

    n = 1000
    stack = quiet_stack
    monkeypatch.setattr(_history, "HISTORY_PAGE", 100)
    pages: list[str | None] = []
    real_list = ApiClient.list_files

    def counted(self: ApiClient, *, limit: int = 100, cursor: str | None = None, **kw: Any) -> Any:
        pages.append(cursor)
        return real_list(self, limit=limit, cursor=cursor, **kw)

    monkeypatch.setattr(ApiClient, "list_files", counted)
    controller = AppController(settings=stack.settings)
    controller.sign_in(stack.email, stack.password)
    _seed_history(stack, controller, tmp_path / "phone", n)
    with WebAppServer(controller) as server:
        page = _open(browser, server.url)
        history_tab = _tab(page, "History")
        expect(history_tab).to_be_visible(timeout=30_000)
        started = time.monotonic()
        history_tab.click()
        tiles = page.get_by_role("button", name=re.compile(r"^IMG_\d{4}\.jpg: in the cloud"))
        expect(tiles.first).to_be_visible(timeout=60_000)
        first_paint = time.monotonic() - started
        expect(page.get_by_text(f"{n:,} files · {n:,} in the cloud · 0 on your PC")).to_be_visible(
            timeout=60_000
        )
        thumbs = controller.thumbs
        assert thumbs is not None
        page_tiles = _screen_history.PAGE_TILES
        deadline = time.monotonic() + 60
        while thumbs.made < page_tiles and time.monotonic() < deadline:
            time.sleep(0.2)  # the first page's thumbnails, made one by one in the background
        time.sleep(1)  # and no more than those
        _shot(page, "18-gallery-1000")
        made_first = thumbs.made
        heap = int(page.evaluate("performance.memory.usedJSHeapSize"))
        # Paged against the API: ten pages of 100, each asked for with the previous cursor.
        assert len(pages) >= n // 100
        assert pages[0] is None
        assert all(pages[1 : n // 100])  # (a later refresh starts again from None)
        # One page of tiles, not a thousand: only its thumbnails were made.
        assert made_first == page_tiles
        assert page.get_by_role("button", name=re.compile(r"^IMG_\d{4}\.jpg")).count() <= (
            page_tiles
        )
        # Scrolling to the end draws the next page, and makes its thumbnails.
        page.mouse.move(200, 500)
        deadline = time.monotonic() + 60
        while thumbs.made <= made_first and time.monotonic() < deadline:
            page.mouse.wheel(0, 4000)
            time.sleep(0.3)
        assert thumbs.made > made_first
        assert thumbs.made <= 3 * page_tiles
        report = (
            f"files {n}, first paint {first_paint:.2f} s, ledger pages read {len(pages)}, "
            f"thumbnails made on first page {made_first}, after scrolling {thumbs.made}, "
            f"browser JS heap {heap / 1e6:.0f} MB\n"
        )
        (SHOTS / "gallery-1000.txt").write_text(report, encoding="utf-8")
        assert first_paint < 30, report
        assert heap < 500e6, report


@contextlib.contextmanager
def _cpu_hog() -> Iterator[None]:
    """A busy loop on every core beside the test, as a loaded phone or PC would have."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _distinct_photos(folder: Path, n: int, seed: int) -> list[Path]:
    """`n` small JPEGs of distinct content (so none is skipped as already backed up)."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = random.Random(seed)
    photos = []
    for i in range(n):
        path = folder / f"IMG_{seed:02d}{i:03d}.jpg"
        noise = bytes(rng.getrandbits(8) for _ in range(48 * 48 * 3))
        Image.frombytes("RGB", (48, 48), noise).save(path, quality=90)
        photos.append(path)
    return photos


def _backed_up(stack: LocalStack) -> set[str]:
    """The contents the ledger holds in the cloud (or further) for the stack's member."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.core import FileStatus
    from mobile_backup.ledger import Ledger

    ledger = Ledger(
        dynamodb_client(stack.settings, component="test"), stack.settings.require("table")
    )
    held: set[str] = set()
    cursor: str | None = None
    while True:
        records, cursor = ledger.list_files(stack.user_sub or "", limit=100, cursor=cursor)
        held.update(r.sha256 for r in records if r.status != FileStatus.PENDING)
        if cursor is None:
            return held


# 30 files a pick, one pick in `make test` (about 30 s beside the hog); the acceptance run
# of issue 29 is five in a row: MOBILE_BACKUP_TEST_PICKS=5 make e2e.
PICKS = int(os.environ.get("MOBILE_BACKUP_TEST_PICKS", "1"))
PICKED = 30


def test_thirty_picked_files_all_arrive_beside_a_cpu_hog(
    quiet_stack: LocalStack, browser: BrowserContext, tmp_path: Path
) -> None:
    """Issue 29, item 4: a pick of 30 photos on a busy machine is backed up whole (`PICKS`
    times in a row); none ends as "could not send" (a pick's shared folder used to be
    removed under the browser while the next file was on its way)."""
    stack = quiet_stack
    controller = AppController(settings=stack.settings)
    want: set[str] = set()
    with WebAppServer(controller) as server, _cpu_hog():
        page = _open(browser, server.url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        _sign_in(page, stack.email, stack.password)
        pick = page.get_by_role("button", name="Choose photos and videos")
        expect(pick).to_be_visible(timeout=30_000)
        for round_ in range(PICKS):
            photos = _distinct_photos(tmp_path / f"pick-{round_}", PICKED, seed=round_)
            want |= {sha256_file(p) for p in photos}
            _tab(page, "Back up").click()
            with page.expect_file_chooser() as chooser:
                pick.click()
            chooser.value.set_files([str(p) for p in photos])
            expect(page.get_by_text("All files backed up")).to_be_visible(timeout=120_000)
            expect(page.get_by_text(re.compile("could not send"))).to_have_count(0)
            assert _backed_up(stack) == want, f"pick {round_ + 1} of {PICKS} lost files"
            page.get_by_role("button", name="Clear finished").click()
            expect(page.get_by_text("All files backed up")).to_have_count(0)
    _shot(page, "pick-30-under-load")
    upload_dir = stack.settings.effective_state_dir / "app-uploads"
    assert not [p for p in upload_dir.rglob("*") if p.is_file()]  # no copy is left behind


def test_a_member_sets_up_an_authenticator_app_at_the_first_sign_in_where_mfa_is_required(
    quiet_stack: LocalStack, browser: BrowserContext
) -> None:
    """Issue 30 in the app: the deployment requires a second factor (as `deploy --mfa
    required` sets the pool); a new member chooses a password, is shown the key to add (a
    QR code and the key as text), enters the app's code, and is signed in."""
    import base64
    import hashlib
    import hmac

    from mobile_backup.aws import cognito_client
    from mobile_backup.core import temporary_password
    from mobile_backup.deploy import add_member

    stack = quiet_stack
    idp = cognito_client(stack.settings, component="test")
    pool = stack.settings.require("user_pool_id")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="ON"
    )
    temp = temporary_password()
    add_member(idp, user_pool_id=pool, email="tess@example.com", temporary_password=temp)

    def code_for(key: str) -> str:  # what the authenticator app shows (RFC 6238)
        if time.time() % 30 > 27:
            time.sleep(30 - time.time() % 30 + 0.1)
        raw = base64.b32decode(key + "=" * (-len(key) % 8), casefold=True)
        digest = hmac.new(raw, int(time.time() // 30).to_bytes(8, "big"), hashlib.sha1).digest()
        offset = digest[-1] & 0x0F
        return f"{(int.from_bytes(digest[offset : offset + 4], 'big') & 0x7FFFFFFF) % 10**6:06d}"

    with WebAppServer(AppController(settings=stack.settings)) as server:
        page = _open(browser, server.url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        _sign_in(page, "tess@example.com", temp)
        expect(page.get_by_text(re.compile("temporary password"))).to_be_visible(timeout=15_000)
        _after_the_apps_focus(page, "New password")
        _type(page, "New password", "Tess-Own-Password-3")
        page.get_by_role("button", name="Set password and sign in").click()
        shown = page.get_by_text(re.compile(r"^Key: "))
        too_short = page.get_by_text(re.compile(r"^The password needs at least"))
        expect(shown.or_(too_short)).to_be_visible(timeout=15_000)
        if not shown.is_visible():
            # Seen in CI four times: the field shows the whole password, yet the app's
            # server was never told it (the one change event of a fill, lost while Flutter
            # connected its editing to the field). A person types it again, key by key.
            field = page.get_by_label("New password", exact=True)
            field.click()
            field.press("Control+A")
            field.press("Delete")
            field.press_sequentially("Tess-Own-Password-3", delay=20)
            page.wait_for_timeout(250)
            page.get_by_role("button", name="Set password and sign in").click()
        expect(shown).to_be_visible(timeout=15_000)
        expect(page.get_by_role("img", name=re.compile("QR code of the key"))).to_be_visible()
        _shot(page, "mfa-1-set-up")
        key = shown.inner_text().removeprefix("Key: ").replace(" ", "")
        _type(page, "Code from your authenticator app", "123")
        page.get_by_role("button", name="Verify and sign in").click()
        expect(page.get_by_text(re.compile("six digits"))).to_be_visible(timeout=15_000)
        _type(page, "Code from your authenticator app", code_for(key))
        page.get_by_role("button", name="Verify and sign in").click()
        expect(page.get_by_text("Signed in as tess@example.com")).to_be_visible(timeout=15_000)
        _shot(page, "mfa-2-signed-in")


def test_a_member_who_forgot_their_password_sets_a_new_one_with_the_mailed_code(
    quiet_stack: LocalStack, browser: BrowserContext
) -> None:
    """Issue 31, item 12, in the app: "Forgot password?" asks Cognito for a code (the local
    stack shows it: it sends no e-mail), then the code and a new password sign the member
    in; a weak one is refused in words first."""
    from mobile_backup.aws import cognito_client
    from mobile_backup.deploy import add_member

    stack = quiet_stack
    add_member(
        cognito_client(stack.settings, component="test"),
        user_pool_id=stack.settings.require("user_pool_id"),
        email="rae@example.com",
        password="Rae-Old-Password-1",
    )
    with WebAppServer(AppController(settings=stack.settings)) as server:
        page = _open(browser, server.url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        _type(page, "Email", "rae@example.com")
        page.get_by_role("button", name="Forgot password?").click()
        said = page.get_by_text(re.compile("its code is "))
        expect(said).to_be_visible(timeout=15_000)
        code = said.inner_text().rsplit(" ", 1)[-1]
        _after_the_apps_focus(page, "Code from the e-mail", timeout_ms=15_000)
        _shot(page, "forgot-1-code-sent")
        _type(page, "Code from the e-mail", code)
        _type(page, "New password", "weak")
        page.get_by_role("button", name="Set password and sign in").click()
        expect(page.get_by_text(re.compile("needs at least 10 characters"))).to_be_visible(
            timeout=15_000
        )
        _type(page, "New password", "Rae-New-Password-2")
        page.get_by_role("button", name="Set password and sign in").click()
        expect(page.get_by_text("Signed in as rae@example.com")).to_be_visible(timeout=15_000)
        _shot(page, "forgot-2-signed-in")
