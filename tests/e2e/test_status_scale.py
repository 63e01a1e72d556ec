"""`status` at a family's scale (issue 32, item 2): it counts every file but lists only the
newest few, and says how many it left out, in words and in JSON."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mobile_backup.aws import dynamodb_client
from mobile_backup.core import FileMeta, utcnow, write_profile
from mobile_backup.ledger import Ledger
from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "mobile_backup", "--profile", LOCAL_PROFILE]
FILES = 46


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


def test_status_lists_the_newest_and_says_how_many_it_left_out(stack: LocalStack) -> None:
    signed = _cli("login", "--email", stack.email, "--password-stdin", stdin=stack.password + "\n")
    assert signed.returncode == 0, signed.stderr
    sub = stack.user_sub
    assert sub is not None
    ledger = Ledger(
        dynamodb_client(stack.settings, component="test"), stack.settings.require("table")
    )
    owner = ledger.claim_folder(sub, "demo")
    start = utcnow() - timedelta(days=1)
    # Sent a minute apart: IMG_0045 is the newest. Every third is in the cloud, every
    # fifth failed, the rest still pending.
    for i in range(FILES):
        data = f"photo {i}".encode()
        sha = hashlib.sha256(data).hexdigest()
        at = start + timedelta(minutes=i)
        ledger.reserve(sub, FileMeta(sha, len(data), f"IMG_{i:04d}.jpg", "image/jpeg"),
                       now=at, owner_name=owner)  # fmt: skip
        if i % 3 == 0:
            ledger.mark_uploaded(sub, sha, size=len(data), now=at)
        elif i % 5 == 0:
            ledger.mark_failed(sub, sha, reason="a test's failure", now=at)
    uploaded = len(range(0, FILES, 3))
    failed = len([i for i in range(FILES) if i % 3 and i % 5 == 0])

    text = _cli("status")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"{FILES} files of demo: ")
    assert f"{uploaded} in the cloud, waiting for your PC" in text.stdout
    assert f"{failed} failed" in text.stdout
    assert "IMG_0045.jpg" in text.stdout
    assert "IMG_0025.jpg" not in text.stdout  # the 21st newest
    assert (
        f"Showing the 20 most recent of {FILES} files; {FILES - 20} not listed "
        "(--limit N for more, --all for every one)." in " ".join(text.stdout.split())
    )

    few = json.loads(_cli("status", "--json", "--limit", "5").stdout)
    assert (few["total"], few["shown"], few["left_out"]) == (FILES, 5, FILES - 5)
    assert [f["filename"] for f in few["files"]] == [f"IMG_{i:04d}.jpg" for i in range(45, 40, -1)]
    assert few["counts"] == {
        "pending": FILES - uploaded - failed, "uploaded": uploaded, "downloaded": 0,
        "failed": failed,
    }  # fmt: skip

    every = json.loads(_cli("status", "--json", "--all").stdout)
    assert (every["total"], every["shown"], every["left_out"]) == (FILES, FILES, 0)
    assert every["counts"] == few["counts"]
    assert every["files"][0]["filename"] == "IMG_0045.jpg"
    assert every["files"][-1]["filename"] == "IMG_0000.jpg"
    assert "not listed" not in _cli("status", "--all").stdout
