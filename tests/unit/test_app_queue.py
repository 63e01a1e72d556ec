"""The backup queue's state logic, driven as the upload engine drives it (no screen)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_backup.app import BackupQueue, ItemState, PendingStore
from mobile_backup.app._queue_items import QueueItem
from mobile_backup.client import DUPLICATE, FAILED, UPLOADED, FileResult


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _files(tmp_path: Path, *sizes: int) -> list[Path]:
    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"IMG_{i}.jpg"
        p.write_bytes(b"x" * size)
        paths.append(p)
    return paths


def test_progress_speed_and_completion_follow_the_engine(tmp_path: Path) -> None:
    clock = Clock()
    q = BackupQueue(clock=clock)
    a, b = _files(tmp_path, 1000, 3000)
    assert q.add([a, b]) == 2
    snap = q.snapshot()
    assert (snap.total_bytes, snap.done_bytes, snap.percent) == (4000, 0, 0)
    assert snap.headline() == "Backing up…"

    assert q.claim(10) == [a, b]
    assert q.get(a).state == ItemState.CHECKING  # type: ignore[union-attr]
    q.on_queued(path=a, size=1000)
    q.on_progress(path=a, bytes_sent=500)
    clock.now += 2
    q.on_progress(path=a, bytes_sent=500)
    snap = q.snapshot()
    assert q.get(a).state == ItemState.UPLOADING  # type: ignore[union-attr]
    assert snap.done_bytes == 1000
    assert snap.percent == 25
    assert snap.speed == pytest.approx(500.0)  # 1000 bytes over 2 s
    assert "1.0 KB of 4.0 KB" in snap.detail()

    q.on_done(result=FileResult(a, UPLOADED, 1000, "aa"))
    q.on_done(result=FileResult(b, DUPLICATE, 3000, "bb"))
    snap = q.snapshot()
    assert snap.percent == 100
    assert not snap.active
    assert snap.headline() == "All files backed up"
    assert [i.status_text for i in snap.items] == ["backed up ✓", "already backed up ✓"]


def test_percent_stays_below_100_until_every_file_has_finished(tmp_path: Path) -> None:
    q = BackupQueue()
    a, b = _files(tmp_path, 1_000_000, 1)
    q.add([a, b])
    q.claim(2)
    q.on_progress(path=a, bytes_sent=1_000_000)
    q.on_done(result=FileResult(a, UPLOADED, 1_000_000))
    assert q.snapshot().percent == 99


def test_a_retried_attempt_takes_its_progress_back(tmp_path: Path) -> None:
    (a,) = _files(tmp_path, 1000)
    q = BackupQueue()
    q.add([a])
    q.claim(1)
    q.on_progress(path=a, bytes_sent=800)
    q.on_progress(path=a, bytes_sent=-800)
    assert q.get(a).sent == 0  # type: ignore[union-attr]


def test_failed_files_show_a_readable_reason_and_can_be_retried(tmp_path: Path) -> None:
    a, b = _files(tmp_path, 10, 20)
    q = BackupQueue()
    q.add([a, b])
    q.claim(2)
    q.on_done(result=FileResult(a, FAILED, 10, reason="upload interrupted: [Errno 104] reset"))
    q.on_done(result=FileResult(b, UPLOADED, 20))
    item = q.get(a)
    assert item is not None
    assert item.state == ItemState.FAILED
    assert item.status_text == "The connection dropped. Retry when you are back online."
    snap = q.snapshot()
    assert snap.percent == 100
    assert snap.failed == 1
    assert snap.headline() == "1 of 2 files need attention"

    assert q.retry(a)
    assert q.get(a).state == ItemState.WAITING  # type: ignore[union-attr]
    assert q.claim(5) == [a]
    assert not q.retry(b)  # only failed files are retried


def test_pause_stops_new_claims_and_resume_restarts_them(tmp_path: Path) -> None:
    a, b = _files(tmp_path, 1, 1)
    q = BackupQueue()
    q.add([a, b])
    q.pause()
    assert q.claim(5) == []
    assert not q.wait_for_work(timeout=0.01)
    assert q.snapshot().headline() == "Paused"
    q.resume()
    assert q.wait_for_work(timeout=0.01)
    assert q.claim(1) == [a]


def test_a_file_is_not_queued_twice_while_pending(tmp_path: Path) -> None:
    (a,) = _files(tmp_path, 5)
    q = BackupQueue()
    assert q.add([a]) == 1
    assert q.add([a]) == 0
    q.claim(1)
    q.on_done(result=FileResult(a, UPLOADED, 5))
    assert q.add([a]) == 1  # a finished file may be queued again (the engine dedupes)


def test_a_missing_file_is_a_failed_item_not_an_exception(tmp_path: Path) -> None:
    q = BackupQueue()
    q.add([tmp_path / "gone.jpg"])
    (item,) = q.snapshot().items
    assert item.state == ItemState.FAILED
    assert item.error is not None
    assert item.error.startswith("Can't read the file")


def test_files_received_from_the_browser_are_checked_before_queueing(tmp_path: Path) -> None:
    q = BackupQueue()
    whole, short = tmp_path / "a.jpg", tmp_path / "b.jpg"
    q.expect(whole, size=4)
    q.expect(short, size=10)
    assert q.claim(5) == []  # nothing to upload while the browser is still sending
    q.receiving(whole, 0.5)
    assert q.get(whole).status_text == "receiving from the browser… 50 %"  # type: ignore[union-attr]
    whole.write_bytes(b"abcd")
    short.write_bytes(b"abc")
    q.received(whole)
    q.received(short)
    assert q.get(whole).state == ItemState.WAITING  # type: ignore[union-attr]
    failed = q.get(short)
    assert failed is not None
    assert failed.state == ItemState.FAILED
    assert failed.error == "The browser sent an incomplete file. Pick it again."


def test_unfinished_items_survive_a_restart(tmp_path: Path) -> None:
    store = PendingStore(tmp_path / "queue.json")
    a, b, c = _files(tmp_path, 1, 2, 3)
    q = BackupQueue(store=store)
    q.add([a, b, c])
    q.claim(3)
    q.on_done(result=FileResult(a, UPLOADED, 1))
    q.on_done(result=FileResult(b, FAILED, 2, reason="storage refused the file: HTTP 403"))
    assert store.load() == [b, c]
    assert BackupQueue(store=store).add(store.load()) == 2


def test_a_damaged_queue_file_is_an_empty_queue(tmp_path: Path) -> None:
    path = tmp_path / "queue.json"
    path.write_text("{not json")
    assert PendingStore(path).load() == []


def test_clear_finished_keeps_failed_items(tmp_path: Path) -> None:
    a, b = _files(tmp_path, 1, 1)
    q = BackupQueue()
    q.add([a, b])
    q.claim(2)
    q.on_done(result=FileResult(a, UPLOADED, 1))
    q.on_done(result=FileResult(b, FAILED, 1, reason="x"))
    assert q.clear_finished() == 1
    assert [i.path for i in q.snapshot().items] == [b]


def test_hooks_see_finished_items_and_a_broken_hook_does_not_stop_the_queue(
    tmp_path: Path,
) -> None:
    (a,) = _files(tmp_path, 1)
    q = BackupQueue()
    seen: list[ItemState] = []
    q.on_finished(lambda item: seen.append(item.state))

    def broken(item: QueueItem) -> None:
        raise ZeroDivisionError("a hook's bug")

    q.on_finished(broken)
    q.add([a])
    q.claim(1)
    version = q.version
    q.on_done(result=FileResult(a, UPLOADED, 1))
    assert seen == [ItemState.DONE]
    assert q.version > version


def test_a_file_still_arriving_at_sign_out_stays_its_owners(tmp_path: Path) -> None:
    """Member A picks a file and signs out while the browser is still sending it: it must
    land in A's saved queue (not vanish, not join B's)."""
    a_store, b_store = PendingStore(tmp_path / "a.json"), PendingStore(tmp_path / "b.json")
    q = BackupQueue(store=a_store)
    late, back = tmp_path / "late.mp4", tmp_path / "back.mp4"
    q.expect(late, size=5)
    q.expect(back, size=3)
    q.switch(b_store)  # A signs out, B signs in
    assert q.snapshot().items == ()
    late.write_bytes(b"12345")
    q.received(late)  # the browser finishes A's file while B is signed in
    assert q.snapshot().items == ()  # not B's
    assert a_store.load() == [late]  # A's, for their next sign-in
    q.switch(a_store)  # A is back before `back` arrived: it is shown arriving again
    states = {i.name: i.state for i in q.snapshot().items}
    assert states == {"late.mp4": ItemState.WAITING, "back.mp4": ItemState.RECEIVING}
    back.write_bytes(b"123")
    q.received(back)
    arrived = q.get(back)
    assert arrived is not None
    assert arrived.state == ItemState.WAITING


def test_only_photos_and_videos_are_accepted_by_name_or_by_content(tmp_path: Path) -> None:
    """As the CLI's scan decides: a name says photo or video, else the first bytes do. What
    is neither is passed over (a skip, never a failure to retry: issue 31, item 3)."""
    from mobile_backup.app._queue_items import NOT_MEDIA_TEXT

    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    jpeg_without_a_name = tmp_path / "IMG_1"
    jpeg_without_a_name.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"x" * 64)
    q = BackupQueue()
    q.add([notes, jpeg_without_a_name])
    assert q.get(notes) == QueueItem(notes, "notes.txt", 13, ItemState.NOT_MEDIA)
    assert q.get(notes).status_text == NOT_MEDIA_TEXT  # type: ignore[union-attr]
    assert q.retry_failed() == 0
    assert q.get(jpeg_without_a_name).state == ItemState.WAITING  # type: ignore[union-attr]
    assert q.claim(5) == [jpeg_without_a_name]

    # From a browser: refused once it has arrived, and the app's copy is not kept.
    received = tmp_path / "incoming" / "letter.pdf"
    received.parent.mkdir()
    q.expect(received, size=4)
    received.write_bytes(b"%PDF")
    q.received(received)
    refused = q.get(received)
    assert refused is not None
    assert refused.state == ItemState.NOT_MEDIA
    assert not received.exists()
    q.on_done(result=FileResult(jpeg_without_a_name, UPLOADED, 74))
    snap = q.snapshot()
    assert (snap.failed, snap.not_media, snap.active) == (0, 2, False)
    assert snap.headline() == "All photos and videos backed up · 2 skipped"
    assert snap.percent == 100
    assert q.clear_finished() == 3


def test_the_header_says_finishing_once_every_byte_is_sent(tmp_path: Path) -> None:
    clock = Clock()
    q = BackupQueue(clock=clock)
    a, b = _files(tmp_path, 1000, 1000)
    q.add([a, b])
    q.claim(2)
    q.on_queued(path=a, size=1000)
    q.on_queued(path=b, size=1000)
    q.on_progress(path=a, bytes_sent=1000)
    clock.now += 1
    q.on_progress(path=b, bytes_sent=500)
    assert q.snapshot().headline() == "Backing up…"
    assert q.snapshot().rate().endswith("\u00a0KB/s")
    q.on_progress(path=b, bytes_sent=500)
    snap = q.snapshot()
    assert (snap.headline(), snap.percent) == ("Finishing…", 99)  # S3 has yet to confirm
    q.on_done(result=FileResult(a, UPLOADED, 1000))
    q.on_done(result=FileResult(b, UPLOADED, 1000))
    snap = q.snapshot()
    assert (snap.headline(), snap.percent, snap.rate()) == ("All files backed up", 100, "")
