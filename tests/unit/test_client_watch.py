"""Watch mode's scanning: only settled media files, each once, failures retried later."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mobile_backup.client import FAILED, UPLOADED, FileResult, NoFilesError, UploadSummary, Watcher


class Recorder:
    """Stands in for the Uploader: records batches, answers with chosen statuses."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.fail: set[str] = set()
        self.cancelled = False

    def upload(self, paths: list[Path]) -> UploadSummary:
        self.batches.append([p.name for p in paths])
        return UploadSummary(
            results=[
                FileResult(p, FAILED if p.name in self.fail else UPLOADED, p.stat().st_size)
                for p in paths
            ]
        )

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, data: bytes, at: float) -> None:
    path.write_bytes(data)
    os.utime(path, (at, at))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Watcher, Recorder, Clock, Path]:
    clock, recorder = Clock(), Recorder()
    watcher = Watcher(
        uploader=recorder,  # type: ignore[arg-type]
        roots=[tmp_path],
        quiet=2.0,
        retry_failed_after=60.0,
        clock=clock,
    )
    return watcher, recorder, clock, tmp_path


def test_a_file_is_sent_once_it_has_settled(setup: Any) -> None:
    watcher, recorder, clock, root = setup
    touch(root / "IMG_1.jpg", b"a", clock.now - 10)
    (root / ".hidden").mkdir()
    touch(root / ".hidden" / "IMG_2.jpg", b"b", clock.now - 10)
    touch(root / "notes.txt", b"c", clock.now - 10)
    assert watcher.run_once().results == []  # first sight: not known to be stable yet
    summary = watcher.run_once()
    assert [r.path.name for r in summary.results] == ["IMG_1.jpg"]
    assert watcher.run_once().results == []  # dealt with
    assert recorder.batches == [["IMG_1.jpg"]]


def test_a_file_still_being_written_waits(setup: Any) -> None:
    watcher, recorder, clock, root = setup
    video = root / "VID.mp4"
    touch(video, b"x" * 10, clock.now)
    watcher.run_once()
    touch(video, b"x" * 20, clock.now)  # grew since the last scan
    watcher.run_once()
    clock.now += 1
    watcher.run_once()  # same size, but written 1 s ago: not quiet yet
    assert recorder.batches == []
    clock.now += 2
    watcher.run_once()
    assert recorder.batches == [["VID.mp4"]]
    touch(video, b"y" * 30, clock.now - 5)  # changed afterwards: considered again
    watcher.run_once()
    watcher.run_once()
    assert recorder.batches == [["VID.mp4"], ["VID.mp4"]]


def test_a_failed_file_is_retried_later(setup: Any) -> None:
    watcher, recorder, clock, root = setup
    recorder.fail.add("IMG_bad.jpg")
    touch(root / "IMG_bad.jpg", b"a", clock.now - 10)
    watcher.run_once()
    watcher.run_once()
    watcher.run_once()
    assert recorder.batches == [["IMG_bad.jpg"]]
    clock.now += 61
    watcher.run_once()
    assert recorder.batches == [["IMG_bad.jpg"], ["IMG_bad.jpg"]]


def test_stop_cancels_the_running_batch_and_ends_run(setup: Any) -> None:
    watcher, recorder, _clock, _root = setup
    watcher.stop()
    assert watcher.run().results == []
    assert recorder.cancelled


def test_a_missing_folder_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(NoFilesError, match="no such file or folder"):
        Watcher(uploader=Recorder(), roots=[tmp_path / "nope"])  # type: ignore[arg-type]
