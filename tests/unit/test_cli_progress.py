"""The upload progress a person watches: a "hashing" label, a speed of bytes really sent."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from mobile_backup.client import DUPLICATE, FileResult
from mobile_backup.commands._common import RichProgress, SentSpeed, SpeedColumn, human

MB = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_speed_is_the_bytes_sent_over_the_last_seconds() -> None:
    clock = Clock()
    speed = SentSpeed(window=5.0, clock=clock)
    assert speed.rate() is None  # nothing sent yet
    speed.add(1 * MB)
    clock.now += 0.5
    assert speed.rate() is None  # half a second says nothing yet
    for _ in range(100):  # 30 MB/s for 10 s, in 3 MB steps
        clock.now += 0.1
        speed.add(3 * MB)
    rate = speed.rate()
    assert rate is not None
    assert 25 * MB < rate < 35 * MB
    clock.now += 10  # a pause: the window empties, the speed falls to zero
    assert speed.rate() == 0


def test_resumed_and_already_backed_up_bytes_never_show_as_speed(tmp_path: Path) -> None:
    """The 1.1 GB/s spikes: parts sent by an earlier run and duplicates end at once."""
    big, small = tmp_path / "VID.mp4", tmp_path / "IMG.jpg"
    big.write_bytes(b"x" * 1000)
    small.write_bytes(b"y" * 10)
    progress = Progress(console=Console(file=io.StringIO()))
    bars = RichProgress(progress)
    overall = progress.tasks[0]
    assert overall.description == "[bold]hashing"  # before the first byte goes out
    bars.on_queued(path=big, size=2_000_000_000)
    bars.on_queued(path=small, size=10)
    bars.on_resumed(path=big, bytes_held=1_500_000_000)
    bars.on_done(result=FileResult(small, DUPLICATE, 10))
    assert overall.completed == 1_500_000_010  # the bar moves
    assert overall.description == "[bold]hashing"
    speed: SentSpeed = overall.fields["speed"]
    assert speed.rate() is None  # but nothing was sent: no speed at all
    bars.on_phase(what="reading the ledger")  # a dry run's first look at the ledger
    assert overall.description == "[bold]reading the ledger"
    bars.on_phase(what="hashing")
    assert overall.description == "[bold]hashing"
    bars.on_progress(path=big, bytes_sent=8_000_000)
    assert overall.description == "[bold]sending"
    bars.on_phase(what="hashing")  # once sending, the bar says so whatever else is told
    assert overall.description == "[bold]sending"
    assert str(SpeedColumn().render(overall)) == ""  # under a second of sending


def test_sizes_read_as_people_read_them() -> None:
    assert human(0) == "0 bytes"
    assert human(1_234_567) == "1.2 MB"
    assert human(30e6) == "30.0 MB"
