"""The ledger against a real DynamoDB API, end to end: an entry's life from reservation to
receipt, the listings (a member's files, the awaiting index, what changed, the summary),
folder names and the PC registry. Each test runs on moto and on dynalite (`ledger_table`),
so a conditional write, an index or a page that only one emulator forgives fails here."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from conftest import LedgerTable, offline_presigner
from mobile_backup.core import FileMeta, FileRecord, FileStatus, Receipt
from mobile_backup.ledger import Ledger, PcInUseError, UnreservedUploadError

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def sub() -> str:
    return str(uuid.uuid4())


def meta(n: int, *, name: str | None = None, size: int = 10) -> FileMeta:
    return FileMeta(sha(n), size, name or f"IMG_{n:04d}.jpg", "image/jpeg")


def receipt(n: int, at: datetime, *, pc: str = "main") -> Receipt:
    return Receipt(
        host="den-pc",
        path=f"anna/2026/12/IMG_{n:04d}.jpg",
        sha256=sha(n),
        at=at,
        captured_at=datetime(2026, 11, 30, tzinfo=UTC),
        capture_source="exif",
        pc=pc,
    )


def got(ledger: Ledger, user: str, n: int) -> FileRecord:
    record = ledger.get(user, sha(n))
    assert record is not None, f"no entry for file {n}"
    return record


@pytest.fixture
def ledger(ledger_table: LedgerTable) -> Ledger:
    return Ledger(ledger_table.client, ledger_table.name)


def test_an_entry_goes_from_reserved_to_received_and_never_back(ledger: Ledger) -> None:
    anna = sub()
    first = ledger.reserve(anna, meta(1), now=NOW)
    assert first.status is FileStatus.PENDING
    # A retried upload refreshes a pending entry with what the phone says now.
    again = ledger.reserve(anna, meta(1, name="renamed.jpg"), now=NOW + timedelta(seconds=1))
    assert (again.status, again.filename) == (FileStatus.PENDING, "renamed.jpg")

    uploaded = ledger.mark_uploaded(anna, sha(1), size=11, now=NOW + timedelta(seconds=2))
    assert (uploaded.status, uploaded.size) == (FileStatus.UPLOADED, 11)
    assert ledger.mark_uploaded(anna, sha(1), size=11, now=NOW).status is FileStatus.UPLOADED
    waiting, _ = ledger.awaiting_download(limit=1000)
    assert sha(1) in {r.sha256 for r in waiting}
    assert ledger.mark_announced(anna, sha(1), now=NOW) is True
    assert ledger.mark_announced(anna, sha(1), now=NOW) is False

    ledger.mark_downloaded(anna, sha(1), receipt(1, NOW + timedelta(minutes=1)))
    done = got(ledger, anna, 1)
    assert done.status is FileStatus.DOWNLOADED
    assert done.receipt is not None
    assert done.receipt.path == "anna/2026/12/IMG_0001.jpg"
    assert set(done.receipts) == {"main"}
    waiting, _ = ledger.awaiting_download(limit=1000)
    assert sha(1) not in {r.sha256 for r in waiting}

    # Nothing moves a received file back: not a new reservation, not a failure.
    assert ledger.reserve(anna, meta(1, name="other.jpg"), now=NOW).status is FileStatus.DOWNLOADED
    assert ledger.mark_failed(anna, sha(1), reason="boom", now=NOW) is False
    kept = got(ledger, anna, 1)
    assert (kept.status, kept.filename) == (FileStatus.DOWNLOADED, "renamed.jpg")


class _Counting:
    """A DynamoDB client that counts the calls made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def test_a_repeated_upload_event_is_settled_by_the_entry_the_refused_write_sends_back(
    ledger_table: LedgerTable, request: pytest.FixtureRequest
) -> None:
    counting = _Counting(ledger_table.client)
    ledger = Ledger(cast(Any, counting), ledger_table.name)
    anna = sub()
    ledger.reserve(anna, meta(1), now=NOW)
    ledger.mark_uploaded(anna, sha(1), size=10, now=NOW)
    counting.calls.clear()
    again = ledger.mark_uploaded(anna, sha(1), size=10, now=NOW + timedelta(seconds=1))
    assert again.status is FileStatus.UPLOADED
    # DynamoDB (and moto) send the entry with the refusal: one call. dynalite does not, so
    # the ledger reads it.
    expected = ["update_item", "get_item"] if "dynalite" in request.node.name else ["update_item"]
    assert counting.calls == expected


def test_an_object_nobody_reserved_is_refused_and_a_failure_can_be_retried(ledger: Ledger) -> None:
    anna = sub()
    with pytest.raises(UnreservedUploadError):
        ledger.mark_uploaded(anna, sha(2), size=10, now=NOW)
    assert ledger.get(anna, sha(2)) is None

    ledger.reserve(anna, meta(3), now=NOW)
    assert ledger.mark_failed(anna, sha(3), reason="x" * 5000, now=NOW) is True
    failed = got(ledger, anna, 3)
    assert failed.status is FileStatus.FAILED
    assert failed.failed_reason == "x" * 1000  # bounded
    retried = ledger.reserve(anna, meta(3), now=NOW + timedelta(seconds=5))
    assert (retried.status, retried.failed_reason) == (FileStatus.PENDING, None)


def test_a_pcs_missing_copy_is_flagged_until_it_writes_a_new_receipt(ledger: Ledger) -> None:
    anna = sub()
    ledger.reserve(anna, meta(4), now=NOW)
    ledger.mark_uploaded(anna, sha(4), size=10, now=NOW)
    ledger.mark_downloaded(anna, sha(4), receipt(4, NOW))
    ledger.flag_missing(anna, sha(4), pc="main", now=NOW + timedelta(hours=1))
    assert set(got(ledger, anna, 4).missing_on) == {"main"}
    ledger.mark_downloaded(anna, sha(4), receipt(4, NOW + timedelta(hours=2)))
    assert got(ledger, anna, 4).missing_on == {}
    ledger.flag_missing(sub(), sha(4), pc="main", now=NOW)  # no such entry: nothing made


def test_a_members_files_come_a_page_at_a_time_and_only_theirs(ledger: Ledger) -> None:
    anna, ben = sub(), sub()
    for n in range(23):
        ledger.reserve(anna, meta(n), now=NOW)
    ledger.reserve(ben, meta(100), now=NOW)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        records, cursor = ledger.list_files(anna, limit=10, cursor=cursor)
        assert len(records) <= 10
        seen.extend(r.sha256 for r in records)
        pages += 1
        if cursor is None:
            break
    assert sorted(seen) == sorted(sha(n) for n in range(23))
    assert pages in (3, 4)  # the last page may come back empty with no cursor after it
    assert [r.sha256 for r in ledger.list_files(ben)[0]] == [sha(100)]


def test_what_changed_since_a_time_is_all_that_is_read(ledger: Ledger) -> None:
    anna = sub()
    for n in range(5):
        ledger.reserve(anna, meta(n), now=NOW + timedelta(minutes=n))
    ledger.mark_uploaded(anna, sha(1), size=10, now=NOW + timedelta(hours=1))
    ledger.mark_downloaded(anna, sha(1), receipt(1, NOW + timedelta(hours=2)))
    ledger.mark_failed(anna, sha(3), reason="gone", now=NOW + timedelta(hours=3))

    changed, cursor = ledger.list_changed(anna, since=NOW + timedelta(minutes=30), limit=100)
    assert cursor is None
    assert [r.sha256 for r in changed] == [sha(1), sha(3)]  # oldest change first
    everything, _ = ledger.list_changed(anna, since=NOW - timedelta(days=1), limit=100)
    assert len(everything) == 5
    assert ledger.list_changed(anna, since=NOW + timedelta(hours=4))[0] == []
    assert ledger.list_changed(sub(), since=NOW - timedelta(days=1))[0] == []


def test_the_summary_counts_every_status_and_names_the_latest_changed(ledger: Ledger) -> None:
    anna = sub()
    for n in range(12):
        ledger.reserve(anna, meta(n), now=NOW + timedelta(minutes=n))
    for n in range(4):
        ledger.mark_uploaded(anna, sha(n), size=10, now=NOW + timedelta(hours=1, minutes=n))
    ledger.mark_downloaded(anna, sha(0), receipt(0, NOW + timedelta(hours=2)))
    ledger.mark_failed(anna, sha(11), reason="no", now=NOW + timedelta(hours=3))

    counts, latest = ledger.summary(anna, recent=3, now=NOW + timedelta(hours=4))
    assert counts == {"downloaded": 1, "uploaded": 3, "pending": 7, "failed": 1}
    assert [r.sha256 for r in latest] == [sha(11), sha(0), sha(3)]
    assert ledger.summary(anna, recent=0, now=NOW)[1] == []
    assert ledger.summary(sub(), recent=5, now=NOW) == ({}, [])


def test_the_counts_are_kept_by_each_transition_and_counted_whole_weekly(
    ledger: Ledger, ledger_table: LedgerTable
) -> None:
    """The first summary counts whole and keeps the numbers; every transition after it
    moves one file from its old status to its new one (an entry written around the ledger
    is only seen by the next whole count, a week on)."""
    from mobile_backup.ledger._counts import RECOUNT_EVERY

    anna = sub()
    for n in range(6):
        ledger.reserve(anna, meta(n), now=NOW)
    ledger.mark_uploaded(anna, sha(0), size=10, now=NOW)
    assert ledger.counts(anna, now=NOW) == {"pending": 5, "uploaded": 1}  # counted whole

    ledger.reserve(anna, meta(6), now=NOW)  # new
    ledger.reserve(anna, meta(6), now=NOW + timedelta(minutes=1))  # a retry: still pending
    ledger.mark_uploaded(anna, sha(1), size=10, now=NOW)  # pending -> uploaded
    ledger.mark_uploaded(anna, sha(1), size=10, now=NOW)  # again: nothing moves
    ledger.mark_failed(anna, sha(2), reason="gone", now=NOW)  # pending -> failed
    ledger.reserve(anna, meta(2), now=NOW)  # failed -> pending (sent again)
    ledger.mark_failed(anna, sha(3), reason="gone", now=NOW)
    ledger.mark_uploaded(anna, sha(3), size=10, now=NOW)  # failed -> uploaded
    ledger.mark_downloaded(anna, sha(0), receipt(0, NOW))  # uploaded -> downloaded
    ledger.mark_downloaded(anna, sha(0), receipt(0, NOW, pc="den"))  # a second PC: no move
    assert not ledger.mark_failed(anna, sha(0), reason="no", now=NOW)  # never downgraded
    later = NOW + timedelta(hours=1)
    assert ledger.counts(anna, now=later) == {"pending": 4, "uploaded": 2, "downloaded": 1}

    raw = ledger_table.client.get_item(
        TableName=ledger_table.name,
        Key={"pk": {"S": f"USER#{anna}"}, "sk": {"S": f"FILE#{sha(5)}"}},
    )["Item"]
    raw["sk"] = {"S": f"FILE#{sha(99)}"}
    ledger_table.client.put_item(TableName=ledger_table.name, Item=raw)  # around the ledger
    assert ledger.counts(anna, now=later)["pending"] == 4  # the kept numbers
    assert ledger.counts(anna, now=NOW + RECOUNT_EVERY)["pending"] == 5  # counted whole again
    ledger.mark_uploaded(anna, sha(99), size=10, now=NOW + RECOUNT_EVERY)
    assert ledger.counts(anna, now=NOW + RECOUNT_EVERY) == {
        "pending": 4, "uploaded": 3, "downloaded": 1
    }  # fmt: skip


def test_receipts_gathered_in_a_tally_are_counted_by_one_write_per_member(
    ledger_table: LedgerTable,
) -> None:
    """The agent's receipts: their transitions wait in a tally and go out as one ADD per
    member (not one per receipt); a receipt that moves nothing adds nothing."""
    from mobile_backup.ledger import Tally

    counting = _Counting(ledger_table.client)
    ledger = Ledger(cast(Any, counting), ledger_table.name)
    anna, bob = sub(), sub()
    for member, files in ((anna, range(5)), (bob, range(5, 7))):
        for n in files:
            ledger.reserve(member, meta(n), now=NOW)
            ledger.mark_uploaded(member, sha(n), size=10, now=NOW)
        assert ledger.counts(member, now=NOW) == {"uploaded": len(files)}  # kept from now on
    tally = Tally()
    counting.calls.clear()
    for member, files in ((anna, range(5)), (bob, range(5, 7))):
        for n in files:
            ledger.mark_downloaded(member, sha(n), receipt(n, NOW), tally=tally)
    ledger.mark_downloaded(anna, sha(0), receipt(0, NOW, pc="den"), tally=tally)  # no move
    assert counting.calls == ["update_item"] * 8  # the receipts alone
    assert ledger.counts(anna, now=NOW) == {"uploaded": 5}  # not written yet

    counting.calls.clear()
    assert ledger.write_tally(tally) == 2
    assert counting.calls == ["update_item"] * 2  # one per member
    assert ledger.counts(anna, now=NOW) == {"downloaded": 5}
    assert ledger.counts(bob, now=NOW) == {"downloaded": 2}
    assert ledger.write_tally(tally) == 0  # taken: nothing is written twice
    assert ledger.counts(anna, now=NOW + timedelta(days=8)) == {"downloaded": 5}  # whole count


def test_a_batch_of_reservations_is_counted_by_one_write(ledger_table: LedgerTable) -> None:
    """The API's upload plan: each new file is reserved by its own conditional write, on
    several threads, and the batch's count changes go out as one ADD afterwards."""
    from mobile_backup.api import Principal
    from mobile_backup.api._service import UploadService
    from mobile_backup.aws import Bucket
    from mobile_backup.core.wire import UploadRequest

    counting = _Counting(ledger_table.client)
    ledger = Ledger(cast(Any, counting), ledger_table.name)
    anna = sub()
    ledger.reserve(anna, meta(0), now=NOW)
    ledger.mark_uploaded(anna, sha(0), size=10, now=NOW)
    assert ledger.counts(anna, now=NOW) == {"uploaded": 1}  # kept from now on
    service = UploadService(
        ledger=ledger,
        objects=Bucket(offline_presigner(), "media"),
        clock=lambda: NOW,
        expiry_seconds=60,
    )
    files = [{**meta(n).fields(), "taken_at": None} for n in range(7)]
    counting.calls.clear()
    plan = service.plan(
        Principal(sub=anna, username="anna"), UploadRequest.model_validate({"files": files})
    )
    assert [r.status for r in plan.results] == ["duplicate"] + ["upload"] * 6
    assert sorted(counting.calls) == sorted(["batch_get_item", *["put_item"] * 6, "update_item"])
    assert ledger.counts(anna, now=NOW) == {"uploaded": 1, "pending": 6}
    assert ledger.counts(anna, now=NOW + timedelta(days=8)) == {"uploaded": 1, "pending": 6}


def test_two_members_asking_for_one_folder_name_get_two(ledger: Ledger) -> None:
    anna, other_anna = sub(), sub()
    assert ledger.claim_folder(anna, "Anna") == "Anna"
    assert ledger.claim_folder(other_anna, "anna") == "anna-2"  # names are case-blind
    assert ledger.claim_folder(anna, "Someone") == "Anna"  # kept for good
    assert ledger.members() == {anna: "Anna", other_anna: "anna-2"}


def test_one_library_holds_a_pc_until_it_lets_go(ledger: Ledger) -> None:
    pcs = ledger.pc_registry(downloads_queue_url="http://queue/main")
    first = {"queue_url": "http://queue/den", "library_id": "a" * 32, "host": "h1", "library": "/p"}
    second = {**first, "library_id": "b" * 32, "host": "h2", "library": "/q"}
    held = pcs.claim("den", **first, now=NOW)
    assert (held.name, held.library_id, held.check_requested_at) == ("den", "a" * 32, None)
    with pytest.raises(PcInUseError, match="already collecting into /p on h1"):
        pcs.claim("den", **second, now=NOW)
    asked = pcs.request_check(NOW + timedelta(minutes=1))
    assert [(pc.name, pc.check_requested_at) for pc in asked] == [
        ("den", NOW + timedelta(minutes=1))
    ]
    beat = pcs.claim("den", **first, now=NOW)
    assert beat.check_requested_at == NOW + timedelta(minutes=1)  # the heartbeat hears it
    pcs.mark_audited("den", started_at=NOW)
    pcs.release("den", library_id="b" * 32)  # not the holder: nothing happens
    holder = pcs.get("den")
    assert holder is not None
    assert holder.library_id == "a" * 32
    pcs.release("den", library_id="a" * 32)
    taken = pcs.claim("den", **second, now=NOW)
    assert (taken.library_id, taken.audited_at) == ("b" * 32, NOW)
    assert [pc.name for pc in pcs.all(consistent=True)] == ["den"]
    assert pcs.queue_url("den") == "http://queue/den"


def test_a_local_stack_can_keep_its_ledger_on_dynalite(emulator: Any, dynalite: Any) -> None:
    """What B1 does to tell the ledger's cost from moto's: the tables on dynalite, everything
    else on the emulator, and every component's DynamoDB client sent there by its settings."""
    from mobile_backup.aws import dynamodb_client, sqs_client
    from mobile_backup.local import local_settings, provision
    from mobile_backup.local._provision_stack import client

    resources = provision(
        endpoint_url=emulator.endpoint_url,
        stack_name=f"t{uuid.uuid4().hex[:10]}",
        dynamodb_endpoint_url=dynalite.endpoint_url,
    )
    settings = local_settings(resources, api_url=None, library=None, profile="test")
    anna = sub()
    Ledger(dynamodb_client(settings, component="test"), resources.table).reserve(
        anna, meta(7), now=NOW
    )
    on_dynalite = dynalite.client().list_tables()["TableNames"]
    on_moto = client("dynamodb", emulator.endpoint_url, "us-east-1").list_tables()["TableNames"]
    assert resources.table in on_dynalite
    assert resources.table not in on_moto
    assert got(Ledger(dynalite.client(), resources.table), anna, 7).status is FileStatus.PENDING
    # The queues stay on the emulator.
    queue = sqs_client(settings, component="test").get_queue_url(
        QueueName=resources.downloads_queue_url.rsplit("/", 1)[1]
    )
    assert queue["QueueUrl"] == resources.downloads_queue_url
