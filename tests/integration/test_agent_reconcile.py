"""`agent reconcile` against the emulator: the ledger's GSI finds what the queue lost, and
the audit finds what the library lost."""

from __future__ import annotations

import random
from datetime import UTC
from pathlib import Path

import pytest

from _agentkit import SUB, TAKEN, Cloud, agent_for, files_under
from mobile_backup.agent import Agent, FileState, OutcomeKind
from mobile_backup.core import FileStatus

pytestmark = pytest.mark.integration


def make_agent(cloud: Cloud, root: Path, host: str = "test-pc") -> Agent:
    return Agent(
        settings=cloud.settings,
        s3=cloud.s3,
        sqs=cloud.sqs,
        ledger=cloud.ledger,
        library=root,
        host=host,
        wait_seconds=0,
    )


def test_a_purged_queue_still_delivers_every_file(cloud: Cloud, tmp_path: Path) -> None:
    rng = random.Random(11)
    expected = {}
    for i in range(12):
        data = rng.randbytes(3000 + i)
        # Some without a phone time: filed by upload month (the bytes carry no EXIF).
        message = cloud.upload(data, filename=f"IMG_{i}.jpg", taken_at=TAKEN if i % 3 else None)
        cloud.send(message.to_json())
        when = (message.taken_at or message.uploaded_at).astimezone(UTC)
        expected[f"{SUB}/{when.year:04d}/{when.month:02d}/IMG_{i}.jpg"] = data
    # The PC was off longer than SQS kept the messages.
    cloud.sqs.purge_queue(QueueUrl=cloud.queue)
    root = tmp_path / "library"
    agent = make_agent(cloud, root)
    assert agent.poll_once() == 0

    report = agent.reconciler().run()

    assert report.count(OutcomeKind.PLACED) == 12
    assert report.ok
    assert files_under(root) == expected
    awaiting, _ = cloud.ledger.awaiting_download(limit=100)
    assert awaiting == []
    # A second pass finds nothing left to do and every file intact.
    again = agent.reconciler().run()
    assert again.outcomes == {}
    assert again.checked == 12
    assert again.findings == []
    agent.close()


def test_the_audit_reports_and_refetches_missing_and_altered_files(
    cloud: Cloud, tmp_path: Path
) -> None:
    root = tmp_path / "library"
    agent = make_agent(cloud, root)
    gone = cloud.upload(b"deleted by someone", filename="gone.jpg")
    edited = cloud.upload(b"edited by someone", filename="edited.jpg")
    fine = cloud.upload(b"left alone", filename="fine.jpg")
    for m in (gone, edited, fine):
        cloud.send(m.to_json())
    agent.poll_once()
    folder = root / SUB / "2024" / "07"
    (folder / "gone.jpg").unlink()
    (folder / "edited.jpg").write_bytes(b"EDITED by someone")  # same size, other bytes

    report = agent.reconciler().audit()

    assert report.checked == 3
    found = {f.path.name: f for f in report.findings}
    assert set(found) == {"gone.jpg", "edited.jpg"}
    assert found["gone.jpg"].state == FileState.MISSING
    assert found["gone.jpg"].action == f"refetched → {SUB}/2024/07/gone.jpg"
    assert found["edited.jpg"].state == FileState.ALTERED
    assert found["edited.jpg"].action == f"refetched → {SUB}/2024/07/edited (1).jpg"
    assert report.ok
    # The user's edit is never overwritten; the original comes back beside it.
    assert files_under(root) == {
        f"{SUB}/2024/07/gone.jpg": b"deleted by someone",
        f"{SUB}/2024/07/edited.jpg": b"EDITED by someone",
        f"{SUB}/2024/07/edited (1).jpg": b"edited by someone",
        f"{SUB}/2024/07/fine.jpg": b"left alone",
    }
    record = cloud.ledger.get(SUB, edited.sha256)
    assert record is not None
    assert record.receipt is not None
    assert record.receipt.path == f"{SUB}/2024/07/edited (1).jpg"
    agent.close()


def test_a_file_lost_after_its_cloud_copy_expired_is_reported_not_hidden(
    cloud: Cloud, tmp_path: Path
) -> None:
    root = tmp_path / "library"
    agent = make_agent(cloud, root)
    message = cloud.upload(b"only copy was here", filename="lost.jpg")
    cloud.send(message.to_json())
    agent.poll_once()
    (root / SUB / "2024" / "07" / "lost.jpg").unlink()
    cloud.s3.delete_object(Bucket=message.bucket, Key=message.key)  # lifecycle expiry

    report = agent.reconciler().audit(refetch=True)

    assert [(f.state, f.action) for f in report.findings] == [
        (FileState.MISSING, "cloud copy gone")
    ]
    assert not report.ok
    only_reported = agent.reconciler().audit(refetch=False)
    assert [f.action for f in only_reported.findings] == ["reported"]
    agent.close()


def test_a_lost_state_file_is_rebuilt_from_this_hosts_receipts(
    cloud: Cloud, tmp_path: Path
) -> None:
    root = tmp_path / "library"
    agent = make_agent(cloud, root)
    message = cloud.upload(b"receipted", filename="r.jpg")
    cloud.send(message.to_json())
    agent.poll_once()
    # Keep one other file so the audit knows which users this PC serves.
    other = cloud.upload(b"another", filename="o.jpg")
    cloud.send(other.to_json())
    agent.poll_once()
    agent.state.forget_placed(SUB, message.sha256)

    report = agent.reconciler().audit()

    assert report.checked == 2
    assert report.findings == []
    placed = agent.state.placed(SUB, message.sha256)
    assert placed is not None
    assert placed.path.as_posix() == f"{SUB}/2024/07/r.jpg"
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.DOWNLOADED
    agent.close()


def test_a_periodic_pass_reads_only_what_changed_since_the_last(
    cloud: Cloud, tmp_path: Path
) -> None:
    """Issue 32, item 3: the first pass reads every entry; the next reads the entries
    changed since it (none here: < 1 % of the full pass); a change made meanwhile is
    found; a week on, or with `--full`, every entry is read again."""
    import hashlib
    from datetime import datetime, timedelta

    from mobile_backup.agent._reconcile import FULL_EVERY
    from mobile_backup.core import FileMeta, Receipt

    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    clock = [t0]
    # The agent's own clients (the IAM test proves its grant on the change index with them).
    agent = agent_for(cloud, tmp_path / "library", host="desk", clock=lambda: clock[0])
    placed = cloud.upload(b"one photo of ours", filename="ours.jpg")
    cloud.send(placed.to_json())
    assert agent.poll_once() == 1  # this PC serves SUB now: its audit reads SUB's entries

    def entry(n: int, at: datetime) -> None:
        """A file of SUB's that another host of this PC received (a receipt at `at`)."""
        data = f"old photo {n}".encode()
        sha = hashlib.sha256(data).hexdigest()
        cloud.ledger.reserve(SUB, FileMeta(sha, len(data), f"OLD_{n}.jpg", "image/jpeg"), now=at)
        cloud.ledger.mark_uploaded(SUB, sha, size=len(data), now=at)
        receipt = Receipt(host="old-desk", path=f"x/OLD_{n}.jpg", sha256=sha, at=at)
        cloud.ledger.mark_downloaded(SUB, sha, receipt)

    for n in range(300):
        entry(n, t0)

    clock[0] = t0 + timedelta(hours=2)
    full = agent.reconciler().run()
    assert full.ok, full.problems
    assert full.changed_since is None
    assert full.ledger_entries_read >= 301

    clock[0] = t0 + timedelta(hours=8)
    quiet = agent.reconciler().run()
    assert quiet.ok, quiet.problems
    assert quiet.changed_since == t0 + timedelta(hours=1)  # the last start, less an hour
    assert quiet.ledger_entries_read < full.ledger_entries_read / 100
    assert quiet.checked == full.checked  # the disk check is whole all the same

    entry(300, t0 + timedelta(hours=9))  # changed meanwhile
    clock[0] = t0 + timedelta(hours=14)
    changed = agent.reconciler().run()
    assert changed.ok, changed.problems
    assert changed.ledger_entries_read == 1
    assert "1 ledger entries changed since" in changed.summary()

    assert agent.reconciler(full=True).run().ledger_entries_read >= 302
    clock[0] = t0 + timedelta(hours=14) + FULL_EVERY
    weekly = agent.reconciler().run()
    assert weekly.changed_since is None
    assert weekly.ledger_entries_read >= 302
    agent.close()
