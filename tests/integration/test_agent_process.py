"""The agent as a real process (`python -m mobile_backup agent run`) against the emulator
running in this test process: kill -9 mid-download, SIGTERM mid-batch, status while running."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _agentkit import SUB, Cloud, files_under
from mobile_backup.agent import StateDB
from mobile_backup.core import Settings
from mobile_backup.core._settings import CRASH_AT_ENV
from mobile_backup.local import agent_environment

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


@pytest.fixture
def cloud(cloud: Cloud) -> Cloud:
    # A killed agent's message comes back after 2 s instead of 5 minutes.
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.queue, Attributes={"VisibilityTimeout": "2"})
    return cloud


def agent_env(settings: Settings, library: Path) -> dict[str, str]:
    return {**os.environ, **agent_environment(settings, library)}


def cli(settings: Settings, library: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mobile_backup", "agent", *args]


@pytest.fixture
def spawn(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(
        library: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            cli(settings, library, "run", "--reconcile-every", "0", "--poll-seconds", "1", *args),
            env={**agent_env(settings, library), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def parts_journaled(library: Path) -> int:
    path = library / ".mobile-backup" / "agent.sqlite3"
    if not path.exists():
        return 0
    db = StateDB(path, readonly=True)
    try:
        return len(db._run("SELECT idx FROM parts"))
    except Exception:
        return 0
    finally:
        db.close()


def test_kill_9_mid_download_then_restart_gives_exactly_one_verified_file(
    cloud: Cloud, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    data = random.Random(9).randbytes(17 * MiB)
    message = cloud.upload(data, filename="VID_0001.mp4")
    cloud.send(message.to_json())
    library = tmp_path / "library"

    # 1 MiB parts at 4 MB/s: about four seconds for the whole video.
    first = spawn(library, "--part-size", "1", "--max-bandwidth", "4", "--workers", "1")
    wait_for(lambda: parts_journaled(library) >= 3, what="a few parts on disk")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    done_at_kill = parts_journaled(library)
    assert 3 <= done_at_kill < 17
    assert files_under(library) == {}, "a partial file is visible in the library"

    second = spawn(library, "--part-size", "1", "--workers", "1")

    def delivered() -> bool:
        # The receipt first: the queue's approximate counts alone can read (0, 0) for an
        # instant while a redelivered message changes hands (seen once under a loaded run).
        record = cloud.ledger.get(SUB, message.sha256)
        return record is not None and record.receipt is not None and cloud.counts() == (0, 0)

    wait_for(delivered, what="the video to be placed and acknowledged")
    second.send_signal(signal.SIGTERM)
    output, _ = second.communicate(timeout=30)
    assert second.returncode == 0, output

    placed = files_under(library)
    assert list(placed) == [f"{SUB}/2024/07/VID_0001.mp4"]
    assert hashlib.sha256(placed[f"{SUB}/2024/07/VID_0001.mp4"]).hexdigest() == message.sha256
    assert list((library / ".mobile-backup" / "staging").iterdir()) == []
    log = (library / ".mobile-backup" / "logs" / "agent.log").read_text(encoding="utf-8")
    assert "resuming" in log  # the restart continued from the journal, not from zero
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.receipt is not None


def test_sigterm_mid_batch_loses_nothing(
    cloud: Cloud, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    rng = random.Random(4)
    expected = {}
    for i in range(12):
        data = rng.randbytes(200 * 1024)
        message = cloud.upload(data, filename=f"IMG_{i:03d}.jpg")
        cloud.send(message.to_json())
        expected[f"{SUB}/2024/07/IMG_{i:03d}.jpg"] = data
    library = tmp_path / "library"

    # From the second file on, the agent holds right after placing each one (a crash point
    # armed to hold): the batch is half done however loaded the machine is.
    release = tmp_path / "release"
    proc = spawn(library, "--workers", "2", env={CRASH_AT_ENV: f"agent.placed:2:hold={release}"})
    wait_for(lambda: len(files_under(library)) >= 2, what="a first file, and one held")
    status = subprocess.run(
        cli(cloud.settings, library, "status", "--json"),
        env=agent_env(cloud.settings, library),
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(status.stdout)
    assert shown["running"] is True
    assert shown["files_today"] >= 1
    assert shown["queue"]["visible"] + shown["queue"]["in_flight"] >= 1
    wait_for(lambda: cloud.counts()[0] == 0, what="every message received")
    proc.send_signal(signal.SIGTERM)
    # The stop is under way once the messages not started are put back; only then may the
    # held workers finish their files (they take no new ones).
    wait_for(lambda: cloud.counts()[0] > 0, what="the unstarted messages released")
    release.touch()
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "Agent stopped." in output

    placed = files_under(library)
    assert 2 <= len(placed) <= 3  # the first, and what each of the two workers held
    assert all(expected[k] == v for k, v in placed.items())
    assert cloud.counts()[1] == 0  # nothing left invisible: all released or acknowledged

    again = spawn(library, "--workers", "4")
    wait_for(lambda: cloud.counts() == (0, 0), what="the rest of the batch")
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=30)
    assert files_under(library) == expected


def test_cli_reconcile_and_status_report_readably(cloud: Cloud, tmp_path: Path) -> None:
    library = tmp_path / "library"
    message = cloud.upload(b"reconciled through the CLI", filename="c.jpg")
    env = agent_env(cloud.settings, library)
    run = subprocess.run(
        cli(cloud.settings, library, "reconcile", "--json"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    assert report["outcomes"] == {"placed": 1}
    assert files_under(library) == {f"{SUB}/2024/07/c.jpg": b"reconciled through the CLI"}
    del message
    bad = subprocess.run(
        cli(cloud.settings, library, "run", "--path-template", "{user}/{nope}/{filename}"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    # One message (the console may wrap it to the terminal's width), no traceback.
    assert bad.stderr.startswith("error: path template")
    assert "unknown field {nope}" in " ".join(bad.stderr.split())
    assert "Traceback" not in bad.stderr


def agent_cli(
    settings: Settings, library: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mobile-backup agent ARGS...` to completion, output captured."""
    return subprocess.run(
        cli(settings, library, *args),
        env=env or agent_env(settings, library),
        capture_output=True,
        text=True,
        check=False,
    )


def test_status_says_not_running_at_once_after_a_kill_9(
    cloud: Cloud, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    library = tmp_path / "library"

    def running() -> bool:
        status = agent_cli(cloud.settings, library, "status", "--json")
        assert status.returncode == 0, status.stderr
        return bool(json.loads(status.stdout)["running"])

    proc = spawn(library)
    wait_for(running, what="the agent to report itself running")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # The heartbeat is still fresh (it goes stale after a minute); the pid is not alive.
    assert running() is False


def test_user_mistakes_on_the_agent_are_one_line_and_exit_1(cloud: Cloud, tmp_path: Path) -> None:
    a_file = tmp_path / "photos.txt"
    a_file.write_text("not a folder")
    for library, expected in (
        (a_file, "is a file"),
        (a_file / "sub", f"{a_file} is a file"),
    ):
        env = {**agent_env(cloud.settings, library), "COLUMNS": "300"}
        run = agent_cli(cloud.settings, library, "run", env=env)
        assert run.returncode == 1, run.stderr
        assert [line for line in run.stderr.splitlines() if line.strip()] == [
            line for line in run.stderr.splitlines() if line.startswith("error: ")
        ]
        assert expected in run.stderr
        assert "Traceback" not in run.stderr
    # The queue cannot be reached: status still prints what it knows, and says so by exit 1.
    unreachable = {
        **agent_env(cloud.settings, tmp_path / "library"),
        "MOBILE_BACKUP_DOWNLOADS_QUEUE_URL": "http://127.0.0.1:9/123456789012/nowhere",
        "MOBILE_BACKUP_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    status = agent_cli(cloud.settings, tmp_path / "library", "status", "--json", env=unreachable)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "could not" in json.loads(status.stdout)["queue_error"]
