"""Ledger records → the history's two-step receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mobile_backup.app import CLOUD_DONE, history, history_entry, pc_done
from mobile_backup.app._receipts import (
    PC_WAITING,
    Filter,
    badge_text,
    by_month,
    check_answer,
    count,
    detail_lines,
    household_pcs,
    last_collected,
)
from mobile_backup.core import FileStatus
from mobile_backup.core.wire import CheckResponse, FileView, PcView, ReceiptView

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
    pcs = ("laptop", "main")
    assert e.pcs == pcs
    assert badge_text(e, pcs) == "IMG_2.jpg: in the cloud, on PC laptop and main"
    lines = dict(detail_lines(e))
    assert lines["PC laptop"].startswith("✓ saved and checked, ")
    assert "lap" not in lines["PC laptop"]  # the PC's name says which; its hostname is noise
    assert lines["PC main"].startswith("✓ saved and checked, ")
    # A file only one of the household's PCs has says which one is still to come.
    one = history_entry(
        _record(FileStatus.DOWNLOADED, n=4, receipt=True, receipts={"main": receipt("main", "d")})
    )
    assert badge_text(one, pcs) == "IMG_4.jpg: in the cloud, on PC main, not yet on laptop"
    # One PC: the household's words stay "on your PC".
    single = history_entry(_record(FileStatus.DOWNLOADED, n=3, receipt=True))
    assert badge_text(single, ("main",)) == "IMG_3.jpg: in the cloud, on your PC"
    assert dict(detail_lines(single))["Saved as"] == "2024/05/IMG_3.jpg"


def test_the_gallery_groups_by_the_month_the_pc_files_under_newest_first() -> None:
    # The PC's receipt says when it filed the file; that month wins over the phone's guess.
    filed = ReceiptView(
        host="pc",
        path="demo/2023/12/IMG_1.jpg",
        sha256=f"{1:064x}",
        at=T0,
        captured_at=datetime(2023, 12, 31, 23, 30),
        capture_source="exif",
    )
    records = [
        _record(FileStatus.DOWNLOADED, n=1, receipt=False, receipts={"main": filed},
                taken_at=datetime(2024, 1, 1, 0, 30, tzinfo=UTC)),
        _record(FileStatus.UPLOADED, n=2, taken_at=datetime(2024, 3, 2, 10, 0)),
        _record(FileStatus.UPLOADED, n=3, taken_at=datetime(2024, 3, 9, 10, 0)),
        _record(FileStatus.FAILED, n=4, failed_reason="x"),
    ]  # fmt: skip
    records[0] = records[0].model_copy(update={"receipt": filed})
    entries = history(records)
    months = by_month(entries)
    assert [m.title for m in months] == ["Failed", "March 2024", "December 2023"]
    assert [e.filename for e in months[1].entries] == ["IMG_3.jpg", "IMG_2.jpg"]
    assert [m.title for m in by_month(entries, Filter.NOT_ON_PC)] == ["March 2024"]
    assert [m.title for m in by_month(entries, Filter.FAILED)] == ["Failed"]
    assert household_pcs(entries) == ("main",)
    assert last_collected(entries) == {"main": T0}
    taken = dict(detail_lines(next(e for e in entries if e.filename == "IMG_1.jpg")))
    assert taken["Taken"] == "31 Dec 2023, 23:30 (from the photo's EXIF)"


def test_the_detail_sheet_labels_every_date_and_says_when_no_time_was_found() -> None:
    waiting = dict(detail_lines(history_entry(_record(FileStatus.UPLOADED, n=5))))
    assert waiting["Taken"] == "unknown: the PC files it by its upload time"
    assert waiting["Uploaded"] == "01 May 2024, 12:05"
    assert waiting["PC"] == PC_WAITING
    assert "Saved as" not in waiting
    failed = dict(detail_lines(history_entry(_record(FileStatus.FAILED, failed_reason="gone"))))
    assert failed["Problem"] == "Failed: gone."
    assert "Cloud" not in failed


def test_a_video_is_told_by_its_recorded_content_type() -> None:
    clip = _record(FileStatus.UPLOADED).model_copy(update={"content_type": "video/quicktime"})
    video = history_entry(clip)
    assert video.is_video
    assert not history_entry(_record(FileStatus.UPLOADED)).is_video


def test_every_reason_the_free_up_rule_gives_is_said_plainly_with_one_date_format() -> None:
    """Issue 31, item 16: the reasons come from the rule itself (`core.may_free`), so a new
    or reworded reason that the app does not translate fails here."""
    from mobile_backup.app._receipts import plain_keep_reason
    from mobile_backup.core._freeing import VERIFIED_WITHIN, may_free
    from mobile_backup.core._models import FileRecord, Receipt

    sha = "a" * 64
    receipt = Receipt(host="vm", path="2024/05/IMG_1.jpg", sha256=sha, at=T0)

    def record(status: FileStatus, **extra: object) -> FileRecord:
        return FileRecord.model_validate(
            {"user_sub": "u", "sha256": sha, "filename": "IMG_1.jpg", "size": 1,
             "content_type": "image/jpeg", "status": status, "created_at": T0, **extra}
        )  # fmt: skip

    now = T0 + timedelta(days=30)
    on_pc = {"receipts": {"laptop": receipt}}
    reasons = [
        may_free(None, {}, now=now).reason,
        may_free(record(FileStatus.UPLOADED), {}, now=now).reason,
        may_free(record(FileStatus.DOWNLOADED, **on_pc), {}, now=now).reason,
        may_free(
            record(FileStatus.DOWNLOADED, **on_pc, missing_on={"laptop": T0}), {}, now=now
        ).reason,
        may_free(
            record(FileStatus.DOWNLOADED, **on_pc),
            {"laptop": now - VERIFIED_WITHIN - timedelta(days=1)},
            now=now,
        ).reason,
    ]
    said = [plain_keep_reason(r) for r in reasons]
    assert all(s.startswith("Keep it") for s in said), said
    joined = " ".join(said)
    assert "re-verified" not in joined
    assert "UTC" not in joined
    assert "audit" not in joined
    assert "2024-" not in joined  # one date format: "01 May 2024"
    assert "PC laptop no longer has its copy (noticed 01 May 2024)" in said[3]
    # Two PCs, two reasons: both said.
    both = plain_keep_reason(f"{reasons[2]}; {reasons[3]}")
    assert both.count("Keep it") == 2


def test_check_now_says_which_pcs_will_check_and_which_are_not_running() -> None:
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    answer = CheckResponse(
        requested_at=now,
        pcs=[
            PcView(name="main", running=True, seen_at=now),
            PcView(name="laptop", running=False, seen_at=now - timedelta(days=2)),
            PcView(name="attic", running=False),
        ],
    )
    said = check_answer(answer)
    assert said.startswith("Asked PC main to check its copies now: this takes a few minutes.")
    assert "PC laptop is not running (last seen 2 days ago): it checks when it next runs." in said
    assert "PC attic is not running: it checks when it next runs." in said
    assert check_answer(CheckResponse(requested_at=now, pcs=[])).startswith("No PC has collected")
