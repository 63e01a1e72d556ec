"""Issue 29's journey in a browser: a member added with `users add` opens the invite link
it printed in a fresh browser profile (the deployment's page, with the phone app's link),
then, in the app on a device that knows no household, pastes it and joins, chooses a
password (a weak one refused in words), backs up three photos, and they land in their
folder; an altered invite is one clear sentence.

The web app is opened at its root: Flet 1.0.5's web server does not load the app at any
other path or with a query (its client never connects), so a browser member pastes the
link; a phone opens it through the app's deep link."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from _browser import _library_files, _open, _shot, _sign_in, _type
from mobile_backup.app import AppController, WebAppServer
from mobile_backup.core import Settings, sha256_file, write_profile
from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values
from mobile_backup.local._samples import make_samples

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(library=tmp_path / "library", poll_seconds=1) as s:
        write_profile(LOCAL_PROFILE, profile_values(s.settings))  # the owner's CLI
        yield s


def test_a_new_member_joins_from_the_invite_link_and_backs_up_three_photos(
    stack: LocalStack, browser: BrowserContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "--profile", LOCAL_PROFILE, "users", "add",
         "bea@example.com"],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    temp = re.search(r"Temporary password: (\S+)", added.stdout)
    link = re.search(r"^(http://127\.0\.0\.1:\d+/v1/join#(\S+))$", added.stdout, flags=re.M)
    assert temp, added.stdout
    assert link, added.stdout
    token = link.group(2)

    # The page the link opens (the deployment's own API): what to do, and the app's link.
    page = browser.new_page()
    page.goto(link.group(1))
    expect(page.get_by_role("link", name="Open in the Mobile Backup app")).to_have_attribute(
        "href", f"mobilebackup://join?i={token}"
    )
    expect(page.get_by_label("Your invite")).to_have_value(link.group(1))
    page.screenshot(path=str(tmp_path / "join-page.png"))
    page.close()

    # A device that knows no household: its own config file and state, no settings at all.
    device = tmp_path / "beas-phone"
    monkeypatch.setenv("MOBILE_BACKUP_CONFIG_FILE", str(device / "config.toml"))
    monkeypatch.setenv("MOBILE_BACKUP_STATE_DIR", str(device / "state"))
    controller = AppController(settings=Settings.explicit(state_dir=device / "state"))
    assert not controller.configured
    photos = [s.path for s in make_samples(tmp_path / "camera") if s.path.suffix == ".jpg"][:3]
    with WebAppServer(controller) as server:
        app = _open(browser, server.url)
        join = app.get_by_role("button", name="Join")
        expect(join).to_be_visible(timeout=30_000)
        _shot(app, "join-1-not-set-up")
        altered = link.group(1)[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        _type(app, "Invite link", altered)
        join.click()
        expect(app.get_by_text(re.compile("This invite is damaged"))).to_be_visible(timeout=15_000)
        _shot(app, "join-2-damaged")
        _type(app, "Invite link", link.group(1))  # pasted, as from the message it came in
        join.click()
        expect(app.get_by_text(re.compile(r"^Deployment: local "))).to_be_visible(timeout=15_000)
        expect(app.get_by_label("Email", exact=True)).to_have_value("bea@example.com")
        _shot(app, "join-3-sign-in")
        _sign_in(app, "bea@example.com", temp.group(1))
        expect(app.get_by_text(re.compile("temporary password"))).to_be_visible(timeout=15_000)
        _type(app, "New password", "weakling")
        app.get_by_role("button", name="Set password and sign in").click()
        expect(app.get_by_text(re.compile(r"needs at least 10 characters"))).to_be_visible(
            timeout=15_000
        )
        _type(app, "New password", "Bea-Own-Password-8")
        app.get_by_role("button", name="Set password and sign in").click()
        pick = app.get_by_role("button", name="Choose photos and videos")
        expect(pick).to_be_visible(timeout=15_000)
        with app.expect_file_chooser() as chooser:
            pick.click()
        chooser.value.set_files([str(p) for p in photos])
        expect(app.get_by_text("All files backed up")).to_be_visible(timeout=60_000)
        _shot(app, "join-4-backed-up")

    from mobile_backup.aws import cognito_client
    from mobile_backup.deploy import list_members

    bea = next(
        m
        for m in list_members(
            cognito_client(stack.settings, component="test"),
            user_pool_id=stack.settings.require("user_pool_id"),
        )
        if m.email == "bea@example.com"
    )
    want = {sha256_file(p) for p in photos}
    deadline = time.monotonic() + 60
    while _library_files(stack, bea.sub) != want:  # in Bea's folder of the PC's library
        assert time.monotonic() < deadline, _library_files(stack, bea.sub)
        time.sleep(0.5)
    # The device remembers the household it joined: the app opens with it next time.
    from mobile_backup.app import chosen_profile

    assert chosen_profile(device / "state") == "default"
