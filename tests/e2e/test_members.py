"""Household members through the CLI, against the local stack: add, first sign-in, list,
remove. Issue 9, item 5: an invited member can sign in; the local stack never claims an
e-mail it did not send."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobile_backup.core import write_profile
from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "mobile_backup", "--profile", LOCAL_PROFILE]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(library=tmp_path / "library", run_agent=False) as s:
        write_profile(LOCAL_PROFILE, profile_values(s.settings))
        yield s


def _folders() -> dict[str, str | None]:
    listed = _cli("users", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {m["email"]: m["folder"] for m in json.loads(listed.stdout)["members"]}


def _members() -> dict[str, str]:
    listed = _cli("users", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["schema"] == "mobile-backup/users/1"
    return {m["email"]: m["status"] for m in data["members"]}


def test_an_invited_member_chooses_a_password_at_first_sign_in(
    stack: LocalStack, tmp_path: Path
) -> None:
    added = _cli("users", "add", "kim@example.com")
    assert added.returncode == 0, added.stderr
    assert "e-mailed" not in added.stdout  # the local stack sends no e-mail
    found = re.search(r"Temporary password: (\S+)", added.stdout)
    assert found, added.stdout
    temp = found.group(1)
    assert _members()["kim@example.com"] == "FORCE_CHANGE_PASSWORD"

    # A weak new password: the rules in words, one line, nothing changed.
    weak = _cli("login", "--email", "kim@example.com", "--password-stdin", stdin=f"{temp}\nweak\n")
    assert weak.returncode == 1
    assert weak.stderr.strip().splitlines() == [
        "error: the password needs at least 10 characters, with a lower-case letter, an "
        "upper-case letter and a number; nothing was changed (run login again)"
    ]
    assert _members()["kim@example.com"] == "FORCE_CHANGE_PASSWORD"

    ok = _cli(
        "login", "--email", "kim@example.com", "--password-stdin",
        stdin=f"{temp}\nKim-Own-Password-9\n",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "Your new password is set." in ok.stdout
    assert "Signed in as kim@example.com" in ok.stdout
    assert _members()["kim@example.com"] == "CONFIRMED"
    status = _cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["total"] == 0  # Kim's own, empty ledger

    # From now on the member's own password is the one.
    # (a long run's log goes to a file: info there, the terminal stays quiet; no secrets)
    log = tmp_path / "cli.log"
    again = _cli(
        "--log-file", str(log), "login", "--email", "kim@example.com", "--password-stdin",
        stdin="Kim-Own-Password-9\n",
    )  # fmt: skip
    assert (again.returncode, again.stderr) == (0, "")
    logged = log.read_text(encoding="utf-8")
    assert "INFO mobile_backup.client._auth: signed in as kim@example.com" in logged
    assert "Kim-Own-Password-9" not in logged

    # Named at the first upload: the folder is "kim", not an id.
    assert _folders()["kim@example.com"] is None
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 kim's first photo")
    sent = _cli("upload", str(photo))
    assert sent.returncode == 0, sent.stderr
    assert _folders()["kim@example.com"] == "kim"
    assert "kim" in _cli("users", "list").stdout

    kept = _cli("users", "remove", "kim@example.com", stdin="n\n")  # answered "no"
    assert (kept.returncode, kept.stderr) == (0, "")
    assert "Nothing removed: kim@example.com is still a member." in kept.stdout
    assert "kim@example.com" in _members()
    removed = _cli("users", "remove", "kim@example.com", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "kim@example.com" not in _members()
    gone = _cli("users", "remove", "kim@example.com", "--yes")
    assert (gone.returncode, gone.stderr.strip()) == (1, "error: kim@example.com is not a member")


def test_a_member_given_a_password_is_refused_a_weak_one(stack: LocalStack) -> None:
    weak = _cli("users", "add", "lou@example.com", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1
    assert "needs at least 10 characters" in weak.stderr
    assert "lou@example.com" not in _members()
    text = _cli("users", "list")
    assert text.returncode == 0
    assert stack.email in text.stdout


def test_a_member_joins_from_the_printed_invite_on_a_fresh_computer(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Issue 29: `users add` prints an invite; `login --invite` from a fresh HOME (no
    profile, no settings) sets that computer up and signs the member in; the profile it
    writes holds the deployment's public settings only; a changed invite is one sentence."""
    added = _cli("users", "add", "lea@example.com")
    assert added.returncode == 0, added.stderr
    temp = re.search(r"Temporary password: (\S+)", added.stdout)
    link = re.search(r"^(http://127\.0\.0\.1:\d+/v1/join#\S+)$", added.stdout, flags=re.M)
    assert temp, added.stdout
    assert link, added.stdout
    assert "▀" in added.stdout or "█" in added.stdout  # the QR code of the link

    fresh = tmp_path / "leas-laptop"
    env = {
        **os.environ,
        "COLUMNS": "200",
        "MOBILE_BACKUP_CONFIG_FILE": str(fresh / "config.toml"),
        "MOBILE_BACKUP_STATE_DIR": str(fresh / "state"),
    }

    def lea(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mobile_backup", *args],
            env=env, input=stdin, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    url = link.group(1)
    cut = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    refused = lea("login", "--invite", cut, "--password-stdin", stdin="x\n")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: this invite is damaged (cut short or changed on the way): ask the household's "
        "owner to send it again"
    ]
    assert not (fresh / "config.toml").exists()  # nothing written for a bad invite

    joined = lea(
        "login", "--invite", url, "--password-stdin", stdin=f"{temp.group(1)}\nLea-Own-Pass-4\n"
    )
    assert joined.returncode == 0, joined.stderr
    assert "as profile default" in joined.stdout
    assert "Signed in as lea@example.com" in joined.stdout
    config = (fresh / "config.toml").read_text(encoding="utf-8")
    for secret_ish in ("password", "token", "secret", temp.group(1)):
        assert secret_ish not in config.lower()
    status = lea("status", "--json")  # no --profile: the joined deployment is the default
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["total"] == 0
