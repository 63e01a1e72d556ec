"""kill -9 during a multipart upload, run the same command again: it finishes, and no part
is sent twice. The CLI runs in a subprocess against the real API on loopback; every part
PUT goes through a counting proxy in front of the emulator's S3."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uploadkit import MIB, PASSWORD, Proxy, api_server, random_file, s3_for

from conftest import settings_for
from mobile_backup.aws import s3_client
from mobile_backup.client import Authenticator
from mobile_backup.core import load_settings, object_key, write_profile
from mobile_backup.local import create_user, provision

pytestmark = pytest.mark.integration

PROFILE = "resume"
PARTS = 10
PART_MIB = 5


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"rs{uuid.uuid4().hex[:8]}")


@pytest.fixture
def slow_s3(emulator: Any) -> Iterator[Proxy]:
    # Each part takes 0.3 s more, so the upload is still going when the test kills it.
    with Proxy(emulator.endpoint_url, delay=lambda s: 0.3 if s.is_part_put else 0.0) as proxy:
        yield proxy


@pytest.fixture
def api_url(stack: Any, slow_s3: Proxy) -> Iterator[str]:
    with api_server(settings_for(stack), s3=s3_for(slow_s3.url)) as server:
        yield server.url


def cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mobile_backup", "--profile", PROFILE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "120"},
    )


def signed_in_profile(stack: Any, api_url: str) -> str:
    """A profile for the test's API in the (isolated) config file, signed in; returns sub."""
    cfg = settings_for(stack)
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    sub = create_user(stack, email=email, password=PASSWORD)
    keep = ("region", "aws_endpoint_url", "aws_access_key_id", "user_pool_id", "client_id")
    values: dict[str, object] = {k: getattr(cfg, k) for k in keep}
    values.update(local=True, api_url=api_url, aws_secret_access_key="testing")
    write_profile(PROFILE, values)
    Authenticator(settings=load_settings(PROFILE)).login(email, PASSWORD)
    return sub


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.mark.parametrize("journal", ["kept", "lost"])
def test_kill_9_mid_upload_then_rerun_sends_every_part_exactly_once(
    stack: Any, api_url: str, slow_s3: Proxy, tmp_path: Path, journal: str
) -> None:
    """With the journal lost too (a new phone, a wiped app), the API's listing of the
    upload under the user's key still spares every part S3 holds."""
    sub = signed_in_profile(stack, api_url)
    video = tmp_path / "VID_0001.mp4"
    sha = random_file(video, PARTS * PART_MIB * MIB - 1234)
    args = ("upload", str(video), "--part-size", str(PART_MIB), "--parallel", "2")

    def parts_done() -> list[int]:
        ok = slow_s3.requests(lambda s: s.is_part_put and s.status == 200)
        return [s.part_number for s in ok if s.part_number is not None]

    first = cli(*args)
    try:
        wait_for(lambda: len(parts_done()) >= 3 or first.poll() is not None)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL, first.stdout.read() if first.stdout else ""
    before = parts_done()
    assert 3 <= len(before) < PARTS, before
    if journal == "lost":
        journals = list(load_settings(PROFILE).effective_state_dir.glob("uploads-*"))
        assert journals
        for path in journals:
            path.unlink()

    second = cli(*args)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out.decode()
    assert b"1 uploaded" in out

    counts = Counter(parts_done())
    assert sorted(counts) == list(range(1, PARTS + 1))
    assert set(counts.values()) == {1}, counts  # no completed part was sent twice
    s3 = s3_client(settings_for(stack), component="test")
    body = s3.get_object(Bucket=stack.bucket, Key=object_key(sub, sha))["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
