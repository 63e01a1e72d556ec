"""Ledger records → the history's two-step receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mobile_backup.app import CLOUD_DONE, history, history_entry, pc_done
from mobile_backup.app._receipts import PC_WAITING, count
from mobile_backup.core import FileStatus
from mobile_backup.core.wire import FileView, ReceiptView

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _record(status: FileStatus, *, n: int = 0, receipt: bool = False, **extra: object) -> FileView:
    """A file as `GET /v1/files` shows it (what the app reads)."""
    return FileView.model_validate(
        {
            "sha256": f"{n:064x}",
            "filename": f"IMG_{n}.jpg",
            "size": 1000 + n,
            "content_type": "image/jpeg",
            "status": status,
            "created_at": T0 + timedelta(minutes=n),
            "receipt": ReceiptView(
                host="pc", path=f"2024/05/IMG_{n}.jpg", sha256=f"{n:064x}", at=T0
            )
            if receipt
            else None,
            **extra,
        }
    )


def test_downloaded_with_a_receipt_shows_both_ticks_and_the_path() -> None:
    e = history_entry(_record(FileStatus.DOWNLOADED, n=1, receipt=True))
    assert e.cloud_text == CLOUD_DONE == "in the cloud ✓ (checksum verified by S3)"
    assert e.pc_text == pc_done("2024/05/IMG_1.jpg") == "on your PC ✓ (verified, 2024/05/IMG_1.jpg)"
    assert e.in_cloud
    assert e.on_pc
    assert not e.failed
    assert e.host == "pc"
    # On the PC is not yet "safe to delete": that waits for the PC's audit (the ledger says).
    assert not e.safe_to_delete
    audited = history_entry(_record(FileStatus.DOWNLOADED, n=1, receipt=True, deletable=True))
    assert audited.safe_to_delete


def test_uploaded_is_in_the_cloud_and_waits_for_the_pc() -> None:
    e = history_entry(_record(FileStatus.UPLOADED))
    assert e.in_cloud
    assert not e.on_pc
    assert not e.safe_to_delete
    assert e.pc_text == PC_WAITING


def test_downloaded_without_a_receipt_is_not_claimed_safe() -> None:
    e = history_entry(_record(FileStatus.DOWNLOADED, receipt=False))
    assert e.in_cloud
    assert not e.on_pc
    assert not e.safe_to_delete


def test_pending_is_in_neither_place() -> None:
    e = history_entry(_record(FileStatus.PENDING))
    assert not e.in_cloud
    assert not e.on_pc
    assert "✓" not in e.cloud_text + e.pc_text


def test_failed_shows_the_reason() -> None:
    e = history_entry(_record(FileStatus.FAILED, failed_reason="checksum mismatch on the PC"))
    assert e.failed
    assert not e.safe_to_delete
    assert e.failed_text == "Failed: checksum mismatch on the PC."
    assert history_entry(_record(FileStatus.FAILED)).failed_text == (
        "Failed: no reason was recorded."
    )


def test_history_is_newest_first_with_failures_on_top_and_counted() -> None:
    records = [
        _record(FileStatus.DOWNLOADED, n=1, receipt=True),
        _record(FileStatus.UPLOADED, n=3),
        _record(FileStatus.FAILED, n=0, failed_reason="x"),
        _record(FileStatus.DOWNLOADED, n=2, receipt=True),
    ]
    entries = history(records)
    assert [e.filename for e in entries] == ["IMG_0.jpg", "IMG_3.jpg", "IMG_2.jpg", "IMG_1.jpg"]
    counts = count(entries)
    assert (counts.total, counts.in_cloud, counts.on_pc, counts.failed) == (4, 3, 2, 1)
    assert counts.waiting_for_pc == 1
    assert counts.summary() == "4 files · 3 in the cloud · 2 on your PC · 1 failed"


def test_several_pcs_each_get_their_own_tick() -> None:
    def receipt(pc: str, host: str) -> ReceiptView:
        return ReceiptView(
            host=host, path="anna/2024/05/IMG_2.jpg", sha256=f"{2:064x}", at=T0, pc=pc
        )

    e = history_entry(
        _record(
            FileStatus.DOWNLOADED,
            n=2,
            receipt=True,
            receipts={"main": receipt("main", "desk"), "laptop": receipt("laptop", "lap")},
        )
    )
    assert e.pc_lines == (
        "on PC laptop ✓ (verified, anna/2024/05/IMG_2.jpg)",
        "on PC main ✓ (verified, anna/2024/05/IMG_2.jpg)",
    )
    # One PC: the household's words stay "on your PC".
    single = history_entry(_record(FileStatus.DOWNLOADED, n=3, receipt=True))
    assert single.pc_lines == (pc_done("2024/05/IMG_3.jpg"),)
