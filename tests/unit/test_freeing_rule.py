"""The one rule for deleting a phone's copy (`core.may_free`), case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mobile_backup.core import (
    NOT_BACKED_UP,
    VERIFIED_WITHIN,
    FileRecord,
    FileStatus,
    Receipt,
    may_free,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PLACED = NOW - timedelta(days=2)
SHA = "ab" * 32


def record(
    status: FileStatus,
    *,
    pcs: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
    placed: datetime = PLACED,
) -> FileRecord:
    receipts = {
        pc: Receipt(host=pc, path=f"anna/2024/05/{pc}.jpg", sha256=SHA, at=placed, pc=pc)
        for pc in pcs
    }
    return FileRecord(
        user_sub="u",
        sha256=SHA,
        filename="a.jpg",
        size=1,
        content_type="image/jpeg",
        status=status,
        created_at=PLACED,
        receipt=next(iter(receipts.values()), None),
        receipts=receipts,
        missing_on={pc: NOW - timedelta(hours=1) for pc in missing},
    )


def audited(**when: datetime) -> dict[str, datetime | None]:
    return dict(when)


def test_nothing_unknown_or_unfinished_may_go() -> None:
    for rec in (None, record(FileStatus.PENDING), record(FileStatus.FAILED)):
        assert may_free(rec, {}, now=NOW).reason == NOT_BACKED_UP
    cloud_only = may_free(record(FileStatus.UPLOADED), {}, now=NOW)
    assert (cloud_only.deletable, cloud_only.reason) == (False, "in the cloud, not on a PC yet")


def test_a_receipt_needs_an_audit_after_it_and_a_recent_one() -> None:
    rec = record(FileStatus.DOWNLOADED, pcs=("main",))
    never = may_free(rec, {}, now=NOW)
    assert not never.deletable
    assert "not re-verified since" in never.reason
    before = may_free(rec, audited(main=PLACED - timedelta(minutes=1)), now=NOW)
    assert not before.deletable
    stale = NOW - VERIFIED_WITHIN - timedelta(minutes=1)
    long_ago = record(FileStatus.DOWNLOADED, pcs=("main",), placed=stale - timedelta(days=1))
    old = may_free(long_ago, audited(main=stale), now=NOW)
    assert not old.deletable
    assert "too long ago" in old.reason
    ok = may_free(rec, audited(main=NOW - timedelta(hours=3)), now=NOW)
    assert ok.deletable
    assert ok.reason.startswith("on PC main, verified ")


def test_a_copy_the_audit_found_missing_vouches_for_nothing() -> None:
    recent = NOW - timedelta(hours=3)
    gone = record(FileStatus.DOWNLOADED, pcs=("main",), missing=("main",))
    verdict = may_free(gone, audited(main=recent), now=NOW)
    assert not verdict.deletable
    assert verdict.reason.startswith("missing on PC main")
    # Another PC that has it, verified, is enough.
    both = record(FileStatus.DOWNLOADED, pcs=("main", "laptop"), missing=("main",))
    assert may_free(both, audited(main=recent, laptop=recent), now=NOW).deletable
