"""The mobile app in a real browser: Debian's Chromium driving the web mode on the local stack.

Flutter draws on a canvas; the test turns on Flutter's accessibility tree (the hidden
"Enable accessibility" placeholder) and then finds controls by their labels and text, as
a screen reader would. Every request that leaves 127.0.0.1 is refused, which also proves
the web mode works offline. Screenshots of each screen go to test-output/app/.
"""

from __future__ import annotations

import io
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from mobile_backup.app import AppController, WebAppServer
from mobile_backup.core import sha256_file
from mobile_backup.local import LocalStack
from mobile_backup.local._samples import make_samples

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "app"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 400, "height": 860}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(library=tmp_path / "library", poll_seconds=1) as s:
        yield s


@pytest.fixture
def app_url(stack: LocalStack) -> Iterator[str]:
    with WebAppServer(AppController(settings=stack.settings)) as server:
        yield server.url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    assert CHROMIUM.exists(), "Debian's chromium is required: apt-get install chromium"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every run
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=PHONE,
        )
        blocked: list[str] = []

        def loopback_only(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", loopback_only)
        try:
            yield context
        finally:
            context.close()


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    # Flutter web builds its accessibility tree only once asked to.
    placeholder = page.locator("flt-semantics-placeholder")
    placeholder.wait_for(state="attached", timeout=30_000)
    placeholder.dispatch_event("click")
    return page


def _type(page: Page, label: str, text: str) -> None:
    """Type into a Flutter text field like a user: focus it first, then enter the text.

    Flutter swaps in its own editing element when a field gains focus; filling before that
    can lose the text, so the test waits for the focus.
    """
    field = page.get_by_label(label, exact=True)
    for _ in range(3):  # under load, Flutter may swap the element while the text goes in
        field.click()
        expect(field).to_be_focused()
        field.fill(text)
        try:
            expect(field).to_have_value(text, timeout=3_000)
            return
        except AssertionError:
            continue
    expect(field).to_have_value(text)


def _blank(png: bytes) -> bool:
    from PIL import Image

    low, high = Image.open(io.BytesIO(png)).convert("L").getextrema()
    return bool(low == high)


def _shot(page: Page, name: str) -> None:
    """A screenshot once the canvas has painted and settled (three identical frames)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    frames: list[bytes] = []
    for _ in range(60):
        frames.append(page.screenshot())
        if len(frames) >= 3 and len(set(frames[-3:])) == 1 and not _blank(frames[-1]):
            break
    (SHOTS / f"{name}.png").write_bytes(frames[-1])


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

    page.get_by_role("tab", name="History").click()
    on_pc = page.get_by_text(re.compile(r"^on your PC ✓ \(verified, .+\.jpg\)$"))
    expect(on_pc).to_have_count(len(samples), timeout=30_000)
    expect(page.get_by_text("in the cloud ✓ (checksum verified by S3)")).to_have_count(len(samples))
    _shot(page, "5-history")

    page.get_by_role("tab", name="Settings").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    _shot(page, "6-settings")

    # What the receipts claim is true: every photo is in the library, byte for byte.
    placed = {sha256_file(p) for p in stack.library.rglob("*.jpg")}
    assert placed == {sha256_file(p) for p in samples}
    # The browser's copies were only kept until the cloud had them.
    upload_dir = stack.settings.effective_state_dir / "app-uploads"
    assert not [p for p in upload_dir.rglob("*") if p.is_file()]
    shutil.rmtree(tmp_path / "camera")


def _sign_in(page: Page, email: str, password: str) -> None:
    _type(page, "Email", email)
    _type(page, "Password", password)
    page.get_by_role("button", name="Sign in").click()


def _sign_out(page: Page) -> None:
    page.get_by_role("tab", name="Settings").click()
    # A screen reader's tap: Playwright's hit test finds another card's semantics node on
    # top of this button (Flutter's own hit testing does not), so a pointer click waits.
    page.get_by_role("button", name="Sign out").dispatch_event("click")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)


def _library_files(stack: LocalStack, sub: str) -> set[str]:
    """What the library holds under this member's folder (their name, from the ledger)."""
    from mobile_backup.core import Ledger, dynamodb_client

    ledger = Ledger(dynamodb_client(stack.settings), stack.settings.require("table"))
    folder = ledger.member_folder(sub)
    if folder is None:  # nothing uploaded yet
        return set()
    return {sha256_file(p) for p in (stack.library / folder).rglob("*") if p.is_file()}


def test_two_members_share_a_phone_and_never_see_or_send_each_others_files(
    stack: LocalStack, app_url: str, browser: BrowserContext, tmp_path: Path
) -> None:
    """Issue 9, items 4 to 6, as two people would meet them on one phone.

    Member A picks two videos and pauses; A signs out. Member B, just invited with a
    temporary password, signs in, chooses a new password, sees none of A's queue, and backs
    up a photo and an empty file (which must not hang at "receiving"). B signs out; A signs
    back in and A's files finish. Each file lands under its owner only.
    """
    from mobile_backup.core import cognito_client, temporary_password
    from mobile_backup.deploy import add_member

    temp = temporary_password()
    bea = add_member(
        cognito_client(stack.settings),
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
    expect(page.get_by_text("VID_A1.mp4")).to_be_visible()
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
    page.get_by_role("tab", name="Queue").click()
    expect(page.get_by_text("Nothing to back up right now")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("VID_A1.mp4")).to_have_count(0)  # A's queue is not B's
    page.get_by_role("tab", name="Back up").click()
    with page.expect_file_chooser() as chooser:
        pick.click()
    chooser.value.set_files([str(b_photo), str(b_empty)])
    expect(page.get_by_text("All files backed up")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("VID_A1.mp4")).to_have_count(0)
    _shot(page, "members-3-b-done")
    _sign_out(page)

    # A again: their paused files come back, and finish.
    _sign_in(page, stack.email, stack.password)
    expect(pick).to_be_visible(timeout=15_000)
    page.get_by_role("tab", name="Queue").click()
    expect(page.get_by_text("All files backed up")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("VID_A1.mp4")).to_be_visible()
    # Even the one the browser was still sending when A signed out (it went to A's queue).
    expect(page.get_by_text("VID_A2.mp4")).to_be_visible()
    expect(page.get_by_text("empty.jpg")).to_have_count(0)
    _shot(page, "members-4-a-done")

    deadline = time.monotonic() + 60
    a_want = {sha256_file(p) for p in a_files}
    b_want = {sha256_file(b_photo), sha256_file(b_empty)}
    while (_library_files(stack, a_sub), _library_files(stack, bea.sub)) != (a_want, b_want):
        assert time.monotonic() < deadline, _ledger_says(stack, a_sub, bea.sub)
        time.sleep(0.5)


def _ledger_says(stack: LocalStack, *subs: str) -> list[tuple[str, str, str]]:
    """What the ledger knows of these members' files (for a failure message)."""
    from mobile_backup.core import Ledger, dynamodb_client

    ledger = Ledger(dynamodb_client(stack.settings), stack.settings.require("table"))
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
    from mobile_backup.agent import build_agent, register_pc

    register_pc(stack.settings, "laptop")
    laptop = build_agent(
        stack.settings.model_copy(update={"pc_name": "laptop", "library": tmp_path / "lap"}),
        wait_seconds=1,
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
        page.get_by_role("tab", name="History").click()
        for pc in ("laptop", "main"):
            tick = page.get_by_text(re.compile(rf"^on PC {pc} ✓ \(verified, demo/.+\.jpg\)$"))
            expect(tick).to_be_visible(timeout=30_000)
        _shot(page, "7-history-two-pcs")
    finally:
        stop.set()
        runner.join(30)
        laptop.close()
    mine = {sha256_file(p) for p in (tmp_path / "lap").rglob("*.jpg")}
    assert mine == {sha256_file(photo)}


DESKTOP: ViewportSize = {"width": 1280, "height": 800}
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
        page.get_by_role("tab", name="Settings").click()
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

    # Only the photo that was never backed up is left on "this device".
    assert [p.name for p in camera.iterdir()] == ["IMG_9999.jpg"]
    trashed = sorted(p.name for p in (tmp_path / "xdg" / "Trash" / "files").iterdir())
    assert trashed == sorted(p.name for p in photos)
