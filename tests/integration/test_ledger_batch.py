"""`Ledger.get_many`: one batch read of a user's entries, on the emulator's DynamoDB."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import LedgerTable
from mobile_backup.core import FileMeta, FileStatus, ServiceError
from mobile_backup.ledger import Ledger

NOW = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def sub() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def ledger(ledger_table: LedgerTable) -> Ledger:
    return Ledger(ledger_table.client, ledger_table.name)


def reserve(ledger: Ledger, user: str, digest: str) -> None:
    ledger.reserve(
        user,
        FileMeta(sha256=digest, size=10, filename=f"{digest[:8]}.jpg", content_type="image/jpeg"),
        now=NOW,
    )


def test_returns_the_users_entries_with_their_status_and_leaves_out_unknown_ones(
    ledger: Ledger,
) -> None:
    alice = sub()
    reserve(ledger, alice, sha(1))
    reserve(ledger, alice, sha(2))
    ledger.mark_uploaded(alice, sha(2), size=10, now=NOW)

    found = ledger.get_many(alice, [sha(1), sha(2), sha(3), sha(1)])

    assert set(found) == {sha(1), sha(2)}
    assert found[sha(1)].status is FileStatus.PENDING
    assert found[sha(2)].status is FileStatus.UPLOADED
    assert found[sha(1)].filename == f"{sha(1)[:8]}.jpg"
    assert found[sha(1)] == ledger.get(alice, sha(1))


def test_never_returns_another_users_entry(ledger: Ledger) -> None:
    alice, bob = sub(), sub()
    reserve(ledger, alice, sha(1))
    assert ledger.get_many(bob, [sha(1)]) == {}
    assert set(ledger.get_many(alice, [sha(1)])) == {sha(1)}


def test_no_digests_is_no_entries(ledger: Ledger) -> None:
    assert ledger.get_many(sub(), []) == {}


def test_more_digests_than_one_batch_call_holds(ledger: Ledger) -> None:
    # DynamoDB takes at most 100 keys per BatchGetItem; 150 needs two calls.
    alice = sub()
    stored = [sha(n) for n in range(0, 150, 3)]
    for digest in stored:
        reserve(ledger, alice, digest)
    found = ledger.get_many(alice, [sha(n) for n in range(150)])
    assert set(found) == set(stored)


def test_statuses_read_each_entrys_status_alone_across_batches(ledger: Ledger) -> None:
    """A dry run's lookups (`verdicts=false`): the same entries as `get_many`, status only."""
    alice, bob = sub(), sub()
    stored = [sha(n) for n in range(0, 150, 3)]
    for digest in stored:
        reserve(ledger, alice, digest)
    ledger.mark_uploaded(alice, stored[0], size=10, now=NOW)
    statuses = ledger.statuses(alice, [sha(n) for n in range(150)])
    assert statuses == {d: "uploaded" if d == stored[0] else "pending" for d in stored}
    assert ledger.statuses(bob, stored) == {}


class Throttling:
    """A DynamoDB client whose batch reads leave keys unprocessed the first `times` calls."""

    def __init__(self, real: Any, times: int) -> None:
        self._real = real
        self.times = times
        self.calls = 0

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.times:
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return dict(self._real.batch_get_item(RequestItems=RequestItems))


def test_unprocessed_keys_are_asked_again(ledger_table: LedgerTable, ledger: Ledger) -> None:
    alice = sub()
    reserve(ledger, alice, sha(1))
    client = Throttling(ledger_table.client, times=2)
    throttled = Ledger(client, ledger_table.name)  # type: ignore[arg-type]
    assert set(throttled.get_many(alice, [sha(1), sha(2)])) == {sha(1)}
    assert client.calls == 3


def test_a_table_that_keeps_throttling_is_a_service_error(ledger_table: LedgerTable) -> None:
    client = Throttling(ledger_table.client, times=100)
    throttled = Ledger(client, ledger_table.name)  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match="throttling"):
        throttled.get_many(sub(), [sha(1)])


def test_a_missing_table_is_a_service_error(ledger_table: LedgerTable) -> None:
    broken = Ledger(ledger_table.client, "no-such-table")
    with pytest.raises(ServiceError, match="read the ledger"):
        broken.get_many(sub(), [sha(1)])


def test_a_reservation_known_to_be_new_is_created_and_never_overwrites(ledger: Ledger) -> None:
    """`absent=True` (the API's batch read found nothing) creates the entry with a
    conditional PutItem; an entry written meanwhile is decided by the usual update."""
    alice = sub()

    def meta(name: str, digest: str) -> FileMeta:
        return FileMeta(sha256=digest, size=10, filename=name, content_type="image/jpeg",
                        taken_at=NOW, taken_at_source="exif", device="phone")  # fmt: skip

    created = ledger.reserve(alice, meta("a.jpg", sha(1)), now=NOW, owner_name="al", absent=True)
    assert created == ledger.get(alice, sha(1))  # what it returns is what was stored
    assert (created.status, created.owner_name, created.taken_at) == (
        FileStatus.PENDING, "al", NOW,
    )  # fmt: skip
    updated = ledger.reserve(alice, meta("b.jpg", sha(1)), now=NOW, absent=False)
    assert updated.filename == "b.jpg"  # a retry refreshes a pending entry
    # Uploaded since the caller's read: returned as it is, not overwritten.
    ledger.mark_uploaded(alice, sha(1), size=10, now=NOW)
    again = ledger.reserve(alice, meta("c.jpg", sha(1)), now=NOW, absent=True)
    assert (again.status, again.filename) == (FileStatus.UPLOADED, "b.jpg")


def test_a_lookup_reads_only_what_the_verdict_weighs_and_reaches_the_same_one(
    ledger_table: LedgerTable, ledger: Ledger
) -> None:
    """`receipts_of` (the dry run's and free-up's lookups) projects status, the PCs'
    receipts and missing flags: every verdict is the one the whole entries give, an entry
    received before PCs had names (only `receipt`) included."""
    from mobile_backup.core import Receipt, may_free
    from mobile_backup.ledger._items import receipt_map, s_

    alice = sub()
    for n in range(1, 8):
        reserve(ledger, alice, sha(n))
    for n in range(2, 8):
        ledger.mark_uploaded(alice, sha(n), size=10, now=NOW)

    def receipt(n: int, pc: str, at: datetime) -> Receipt:
        return Receipt(host="h", path=f"a/{n}.jpg", sha256=sha(n), at=at, pc=pc)

    ledger.mark_downloaded(alice, sha(3), receipt(3, "main", NOW))
    ledger.mark_downloaded(alice, sha(4), receipt(4, "den", NOW))
    ledger.mark_downloaded(alice, sha(5), receipt(5, "main", NOW))
    ledger.mark_downloaded(alice, sha(5), receipt(5, "den", NOW))
    ledger.flag_missing(alice, sha(5), pc="main", now=NOW)
    ledger.mark_downloaded(alice, sha(6), receipt(6, "main", NOW.replace(year=2025)))
    # Received before PCs had names: the latest receipt only, no `receipt@main`.
    ledger_table.client.update_item(
        TableName=ledger_table.name,
        Key={"pk": s_(f"USER#{alice}"), "sk": s_(f"FILE#{sha(7)}")},
        UpdateExpression="SET #st = :d, receipt = :r",
        ExpressionAttributeNames={"#st": "status"},
        ExpressionAttributeValues={
            ":d": s_("downloaded"), ":r": {"M": receipt_map(receipt(7, "main", NOW))},
        },
    )  # fmt: skip
    audited = {"main": NOW.replace(month=8), "den": None}
    now = NOW.replace(month=8, day=2)
    digests = [sha(n) for n in range(1, 9)]
    whole = ledger.get_many(alice, digests)
    light = ledger.get_many(alice, digests, receipts_of=audited)
    assert set(light) == set(whole) == {sha(n) for n in range(1, 8)}
    for digest, record in whole.items():
        assert may_free(light[digest], audited, now=now) == may_free(record, audited, now=now)
        assert light[digest].status == record.status
        assert light[digest].receipts == record.receipts
        assert light[digest].missing_on == record.missing_on
    deletable = {n for n in range(1, 8) if may_free(light[sha(n)], audited, now=now).deletable}
    assert deletable == {3, 7}  # 5: missing on main, den never checked; 6: not since 2025
