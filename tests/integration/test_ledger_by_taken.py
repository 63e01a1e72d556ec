"""The capture-time index (issue 32, item 1): a member's files newest capture time first, a
page at a time, from any month, moved by a receipt's capture time, and the backfill of
entries written before the index existed. On the emulator's DynamoDB, with the template's
own table definition."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conftest import LedgerTable
from mobile_backup.core import FileMeta, InvalidInputError, Receipt
from mobile_backup.ledger import Ledger

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture
def ledger(ledger_table: LedgerTable) -> Ledger:
    return Ledger(ledger_table.client, ledger_table.name)


def reserve(ledger: Ledger, user: str, n: int, taken: datetime | None) -> None:
    meta = FileMeta(sha(n), 10, f"IMG_{n:04d}.jpg", "image/jpeg", taken_at=taken)
    ledger.reserve(user, meta, now=NOW + timedelta(seconds=n))


def walk(ledger: Ledger, user: str, *, limit: int, month_end: datetime | None = None) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        records, cursor = ledger.list_by_taken(user, limit=limit, cursor=cursor, before=month_end)
        assert len(records) <= limit
        names.extend(r.filename for r in records)
        if cursor is None:
            return names


def test_files_come_newest_capture_first_a_page_at_a_time_and_from_any_month(
    ledger: Ledger,
) -> None:
    anna, ben = str(uuid.uuid4()), str(uuid.uuid4())
    # One photo a month through 2024, sent in a shuffled order; one with no capture time
    # (filed by when it was sent, 2026-12); Ben's are his own.
    for n in (7, 2, 11, 5, 1, 12, 9, 3, 6, 10, 4, 8):
        reserve(ledger, anna, n, datetime(2024, n, 15, 12, tzinfo=UTC))
    reserve(ledger, anna, 99, None)
    reserve(ledger, ben, 50, datetime(2024, 6, 1, tzinfo=UTC))

    expected = ["IMG_0099.jpg", *(f"IMG_{n:04d}.jpg" for n in range(12, 0, -1))]
    assert walk(ledger, anna, limit=5) == expected
    assert walk(ledger, ben, limit=5) == ["IMG_0050.jpg"]
    # From May 2024 on (the files taken before June), still newest first.
    june = datetime(2024, 6, 1, tzinfo=UTC)
    assert walk(ledger, anna, limit=2, month_end=june) == [
        f"IMG_{n:04d}.jpg" for n in range(5, 0, -1)
    ]

    # The PC files a photo by the capture time it reads: the gallery follows it.
    ledger.mark_uploaded(anna, sha(3), size=10, now=NOW)
    ledger.mark_downloaded(
        anna,
        sha(3),
        Receipt(host="pc", path="anna/2024/12/IMG_0003.jpg", sha256=sha(3), at=NOW,
                captured_at=datetime(2024, 12, 31, 23, tzinfo=UTC)),
    )  # fmt: skip
    moved = walk(ledger, anna, limit=100)
    assert moved[:3] == ["IMG_0099.jpg", "IMG_0003.jpg", "IMG_0012.jpg"]
    assert len(moved) == len(expected)


def test_a_cursor_of_another_members_listing_is_refused(ledger: Ledger) -> None:
    anna, ben = str(uuid.uuid4()), str(uuid.uuid4())
    for n in range(3):
        reserve(ledger, anna, n, datetime(2024, 1, n + 1, tzinfo=UTC))
    _, cursor = ledger.list_by_taken(anna, limit=1)
    assert cursor is not None
    with pytest.raises(InvalidInputError) as refused:
        ledger.list_by_taken(ben, limit=1, cursor=cursor)
    assert refused.value.code == "invalid_cursor"


def test_entries_written_before_the_index_are_put_into_it_once(
    ledger: Ledger, ledger_table: LedgerTable
) -> None:
    anna = str(uuid.uuid4())
    reserve(ledger, anna, 1, datetime(2023, 3, 1, tzinfo=UTC))
    reserve(ledger, anna, 2, None)
    reserve(ledger, anna, 3, datetime(2023, 1, 1, tzinfo=UTC))
    # As an older version wrote them: no index attributes at all.
    for n in (1, 2):
        ledger_table.client.update_item(
            TableName=ledger_table.name,
            Key={"pk": {"S": f"USER#{anna}"}, "sk": {"S": f"FILE#{sha(n)}"}},
            UpdateExpression="REMOVE gsi2pk, gsi2sk",
        )
    assert walk(ledger, anna, limit=10) == ["IMG_0003.jpg"]
    assert ledger.index_by_taken() == 2
    assert walk(ledger, anna, limit=10) == ["IMG_0002.jpg", "IMG_0001.jpg", "IMG_0003.jpg"]
    assert ledger.index_by_taken() == 0  # nothing left to add
