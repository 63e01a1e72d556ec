"""A full disk, for real: the library on a 20 MB tmpfs the test mounts, filled, then freed.

The audit's run on a full disk: files a reconcile could not place waited for the next
reconcile (6 h), the pause backed off to 300 s, the log printed 44 "--- Logging error ---"
tracebacks, and a sparse `.part` stayed in staging. Here the agent must take files again
within 30 s of space being freed, through the queue and the reconcile alike, lose nothing,
leave nothing partial, and keep its log usable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _agentkit import SUB, Cloud, agent_for, files_under
from mobile_backup.agent import STAGING_DIR, AgentConfig, OutcomeKind, TransferConfig
from mobile_backup.agent._logging import configure_file_log, log_path
from mobile_backup.core import utcnow

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
RECOVERY_SECONDS = 30
JPEG_START = b"\xff\xd8\xff\xe0"
MP4_START = b"\x00\x00\x00\x18ftypmp42"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB filesystem of the test's own (tmpfs), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the CI machine runs the suite as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _photo(size: int) -> bytes:
    """Random bytes that start as a JPEG does: bare random bytes announce some other type
    (an MP3, a program) about once in 6,000 files, and the agent rightly refuses those."""
    return JPEG_START + os.urandom(size - len(JPEG_START))


def _video(size: int) -> bytes:
    return MP4_START + os.urandom(size - len(MP4_START))


def test_the_agent_takes_files_again_within_seconds_of_space_being_freed(
    cloud: Cloud, small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    library = small_disk / "library"
    seen: list[OutcomeKind] = []
    agent = agent_for(
        cloud,
        library,
        clock=utcnow,
        on_outcome=lambda o: seen.append(o.kind),
        config=AgentConfig(
            workers=2,
            # The video below is fetched in ranged parts: its partial download must not stay.
            transfer=TransferConfig(threshold=1 * MIB, part_size=256 * 1024),
            reconcile_interval=3600,  # one pass at start, the next only after the pause
        ),
    )
    handler = configure_file_log(log_path(library))
    sent: dict[str, bytes] = {}

    def upload(name: str, data: bytes, *, announce: bool) -> None:
        message = cloud.upload(data, filename=name)
        if announce:
            cloud.send(message.to_json())
        sent[name] = data

    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    try:
        runner.start()
        upload("IMG_0100.jpg", _photo(64 * 1024), announce=True)  # the agent is up
        deadline = time.monotonic() + 60
        while not {OutcomeKind.PLACED, OutcomeKind.ALREADY_PLACED} & set(seen):
            assert time.monotonic() < deadline, f"never placed the first file: {seen}"
            time.sleep(0.1)

        # The disk fills to its last block: the state file and the log meet it too.
        filler = small_disk / "filler.bin"
        with filler.open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * (64 * 1024))
        # Queue path: six photos and a video (fetched in ranged parts, whose partial
        # download must not stay); reconcile path: four photos awaiting in the ledger only.
        for i in range(10):
            upload(f"IMG_{i:04d}.jpg", _photo(MIB - 4096), announce=i < 6)
        upload("VID_0001.mp4", _video(3 * MIB), announce=True)
        agent.reconciler().fetch_awaiting()  # what the periodic pass does, now
        while OutcomeKind.BLOCKED not in seen:
            assert time.monotonic() < deadline, f"never blocked: {seen}"
            time.sleep(0.1)
        # A log file's last block may still have room for the agent's own few lines; this
        # many need new blocks on any filesystem, as a day of a paused service would.
        chatty = logging.getLogger("mobile_backup.agent.test")
        for i in range(300):
            chatty.warning("still full (%d): %s", i, "x" * 100)
        time.sleep(2)

        filler.unlink()
        freed = time.monotonic()
        while len(files_under(library)) < len(sent):
            waited = time.monotonic() - freed
            assert waited < RECOVERY_SECONDS, (
                f"{len(files_under(library))} of {len(sent)} files {waited:.0f} s after "
                f"space was freed; outcomes {seen}"
            )
            time.sleep(0.2)
        recovered = time.monotonic() - freed
    finally:
        stop.set()
        runner.join(60)
        agent.close()
        logging.getLogger("mobile_backup").removeHandler(handler)
        handler.close()

    # Nothing lost, nothing twice, nothing partial.
    placed = {path.rsplit("/", 1)[-1]: data for path, data in files_under(library).items()}
    assert placed == sent
    assert list((library / STAGING_DIR).iterdir()) == []
    for name, data in sent.items():
        import hashlib

        record = cloud.ledger.get(SUB, hashlib.sha256(data).hexdigest())
        assert record is not None
        assert record.receipt is not None, name
    # The log stayed usable: one line on stderr, no traceback storm, and the log file says
    # what was held while the disk was full.
    err = capfd.readouterr().err
    assert "Logging error" not in err
    assert err.count("is full; keeping the last") <= 1
    log_text = log_path(library).read_text(encoding="utf-8")
    assert "ending the pause" in log_text
    assert "log lines were held in memory" in log_text
    print(f"recovered {recovered:.1f} s after space was freed; outcomes {seen}")
    assert recovered < RECOVERY_SECONDS
