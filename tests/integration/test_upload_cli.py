"""`mobile-backup upload` in a subprocess: special files named on the command line fail in
one line at once; `--watch` backs up new files as they appear, leaves a file still being
written alone until complete, and stops cleanly on SIGTERM."""

from __future__ import annotations

import hashlib
import io
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
from mobile_backup.aws import s3_client
from mobile_backup.client import Authenticator
from mobile_backup.core import load_settings, write_profile
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
    listing = s3_client(settings_for(stack), component="test").list_objects_v2(
        Bucket=stack.bucket, Prefix=f"media/{sub}/"
    )
    return {o["Key"].rsplit("/", 1)[1]: o["Size"] for o in listing.get("Contents", [])}


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def signed_in(stack: Any, api_url: str) -> str:
    """A new member signed in under the CLI's profile; their sub."""
    cfg = settings_for(stack)
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    sub = create_user(stack, email=email, password=PASSWORD)
    keep = ("region", "aws_endpoint_url", "aws_access_key_id", "user_pool_id", "client_id")
    values: dict[str, object] = {k: getattr(cfg, k) for k in keep}
    values.update(local=True, api_url=api_url, aws_secret_access_key="testing")
    write_profile(PROFILE, values)
    Authenticator(settings=load_settings(PROFILE)).login(email, PASSWORD)
    return sub


def test_a_named_pipe_a_device_and_a_socket_fail_at_once_and_the_photo_goes(
    stack: Any, api_url: str, tmp_path: Path
) -> None:
    """`mkfifo pipe.jpg; upload pipe.jpg` waited forever for a writer."""
    import socket

    sub = signed_in(stack, api_url)
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    sock_path = tmp_path / "s.jpg"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    photo = tmp_path / "IMG_0002.jpg"
    photo_sha = random_file(photo, 20_000)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mobile_backup", "-p", PROFILE, "upload",
             str(pipe), "/dev/null", str(sock_path), str(photo)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.close()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert photo_sha in objects(stack, sub)
    said = done.stdout + done.stderr
    for name, kind in (("pipe.jpg", "a named pipe"), ("null", "a character device"),
                       ("s.jpg", "a socket")):  # fmt: skip
        lines = [line for line in said.splitlines() if name in line and kind in line]
        assert len(lines) == 1, (name, said)


def test_watch_backs_up_new_files_once_written_and_stops_on_sigterm(
    stack: Any, api_url: str, tmp_path: Path
) -> None:
    sub = signed_in(stack, api_url)
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


def thumbs(stack: Any, sub: str) -> dict[str, bytes]:
    s3 = s3_client(settings_for(stack), component="test")
    listing = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"thumbs/{sub}/")
    return {
        o["Key"].rsplit("/", 1)[1]: s3.get_object(Bucket=stack.bucket, Key=o["Key"])["Body"].read()
        for o in listing.get("Contents", [])
    }


def test_photos_sent_from_a_computer_get_a_thumbnail_in_the_cloud_too(
    stack: Any, api_url: str, tmp_path: Path
) -> None:
    """Issue 32, item 4: what `upload` sends shows in the app's gallery on every device, as
    what the app sends does: a small JPEG of each photo under the member's `thumbs/`; none
    of a video, none with --no-thumbnails."""
    from PIL import Image

    sub = signed_in(stack, api_url)
    folder = tmp_path / "Pictures"
    folder.mkdir()
    shas = []
    for n, color in enumerate(("red", "blue")):
        path = folder / f"IMG_{n}.jpg"
        Image.new("RGB", (1600, 1200), color).save(path, "JPEG", quality=90)
        shas.append(hashlib.sha256(path.read_bytes()).hexdigest())
    video_sha = random_file(folder / "VID_0.mp4", 40_000)
    done = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "-p", PROFILE, "upload", str(folder)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(objects(stack, sub)) == {*shas, video_sha}
    kept = thumbs(stack, sub)
    assert set(kept) == {f"{sha}.jpg" for sha in shas}
    for data in kept.values():
        assert data.startswith(b"\xff\xd8")
        assert len(data) < 20_000
        with Image.open(io.BytesIO(data)) as small:
            assert max(small.size) == 240

    other = signed_in(stack, api_url)
    Image.new("RGB", (800, 600), "green").save(folder / "IMG_9.jpg", "JPEG")
    quiet = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "-p", PROFILE, "upload", "--no-thumbnails",
         str(folder / "IMG_9.jpg")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert len(objects(stack, other)) == 1
    assert thumbs(stack, other) == {}
