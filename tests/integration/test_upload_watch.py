"""`mobile-backup upload --watch` in a subprocess: new files are backed up as they appear,
a file still being written is left alone until complete, and SIGTERM stops it cleanly."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uploadkit import PASSWORD, api_server, random_file

from conftest import settings_for
from mobile_backup.client import Authenticator
from mobile_backup.core import load_settings, s3_client, write_profile
from mobile_backup.local import create_user, provision

pytestmark = pytest.mark.integration

PROFILE = "watch"


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"wa{uuid.uuid4().hex[:8]}")


@pytest.fixture
def api_url(stack: Any) -> Iterator[str]:
    with api_server(settings_for(stack)) as server:
        yield server.url


def objects(stack: Any, sub: str) -> dict[str, int]:
    listing = s3_client(settings_for(stack)).list_objects_v2(
        Bucket=stack.bucket, Prefix=f"media/{sub}/"
    )
    return {o["Key"].rsplit("/", 1)[1]: o["Size"] for o in listing.get("Contents", [])}


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_watch_backs_up_new_files_once_written_and_stops_on_sigterm(
    stack: Any, api_url: str, tmp_path: Path
) -> None:
    cfg = settings_for(stack)
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    sub = create_user(stack, email=email, password=PASSWORD)
    keep = ("region", "aws_endpoint_url", "aws_access_key_id", "user_pool_id", "client_id")
    values: dict[str, object] = {k: getattr(cfg, k) for k in keep}
    values.update(local=True, api_url=api_url, aws_secret_access_key="testing")
    write_profile(PROFILE, values)
    Authenticator(settings=load_settings(PROFILE)).login(email, PASSWORD)
    folder = tmp_path / "DCIM"
    folder.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobile_backup",
            "--profile",
            PROFILE,
            "upload",
            "--watch",
            str(folder),
            "--interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        photo = folder / "IMG_0001.jpg"
        photo_sha = random_file(photo, 50_000)
        os.utime(photo, (time.time() - 10, time.time() - 10))
        wait_until(lambda: photo_sha in objects(stack, sub))

        # A video "being recorded": it grows for about 1.5 s, then is complete. Keys are
        # content hashes, so any partial copy sent would show as an extra object.
        video = folder / "VID_0001.mp4"
        digest = hashlib.sha256()
        with video.open("wb") as fh:
            for _ in range(15):
                chunk = os.urandom(32 * 1024)
                fh.write(chunk)
                fh.flush()
                digest.update(chunk)
                time.sleep(0.1)
        wait_until(lambda: digest.hexdigest() in objects(stack, sub))
        assert objects(stack, sub) == {photo_sha: 50_000, digest.hexdigest(): 15 * 32 * 1024}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"2 uploaded" in out
