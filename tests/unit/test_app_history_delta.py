"""Issue 32: once the whole history is in, the app's polls read only what changed since the
last read (the ledger's change index), not all 50 pages of a family's years; a member's own
refresh, a new member and the passing of `FULL_READ_EVERY` read it whole again."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobile_backup.app import _history
from mobile_backup.app._history import POLL_MARGIN, HistoryModel
from mobile_backup.app._queue import BackupQueue
from mobile_backup.client import Journal
from mobile_backup.core import FileStatus
from mobile_backup.core.wire import FilesPage, FileView, ReceiptView

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def view(n: int, status: FileStatus = FileStatus.UPLOADED, *, at: datetime = T0) -> FileView:
    receipt = None
    if status is FileStatus.DOWNLOADED:
        receipt = ReceiptView(host="den", path=f"ann/IMG_{n}.jpg", sha256=f"{n:064x}", at=at)
    return FileView(
        sha256=f"{n:064x}", filename=f"IMG_{n}.jpg", size=10, content_type="image/jpeg",
        status=status, created_at=T0 + timedelta(minutes=n), receipt=receipt,
    )  # fmt: skip


class Api:
    """The API as the history uses it: a ledger of views with the time each last changed."""

    def __init__(self) -> None:
        self.now = T0
        self.files: dict[str, tuple[FileView, datetime]] = {}
        self.calls: list[dict[str, Any]] = []

    def put(self, v: FileView) -> None:
        self.files[v.sha256] = (v, self.now)

    def list_files(self, *, limit: int, cursor: str | None = None, **kw: Any) -> FilesPage:
        self.calls.append(kw)
        since = kw.get("changed_since")
        rows = sorted(self.files.values(), key=lambda row: row[1])
        picked = [v for v, at in rows if since is None or at > since]
        start = int(cursor or 0)
        page = picked[start : start + limit]
        more = start + limit < len(picked)
        # As over the wire: the app gets copies, never the objects kept here.
        return FilesPage(
            files=[v.model_copy(deep=True) for v in page],
            next_cursor=str(start + limit) if more else None,
            as_of=self.now,
        )


class Member:
    def __init__(self, api: Api) -> None:
        self.username = self.account = "ann@example.com"
        self.deployment = "home"
        self._api = api

    def api(self) -> Any:
        return self._api

    def journal(self) -> Journal:
        return Journal.memory()

    def session_ended(self) -> None:  # pragma: no cover - not signed out here
        raise AssertionError("signed out")


@pytest.fixture
def api() -> Api:
    api = Api()
    for n in range(250):
        api.put(view(n))
    return api


def test_polls_read_only_what_changed_and_the_gallery_keeps_the_rest(api: Api) -> None:
    model = HistoryModel(Member(api), BackupQueue(), lambda: None)
    whole = model.refresh()
    assert len(whole.entries) == 250
    assert whole.counts.waiting_for_pc == 250
    assert all("changed_since" not in c for c in api.calls)  # read whole, a page at a time
    api.calls.clear()

    api.now = T0 + timedelta(minutes=5)
    api.put(view(7, FileStatus.DOWNLOADED, at=api.now))  # the PC received one
    api.put(view(900))  # and the phone sent a new one
    polled = model.refresh()
    assert api.calls == [{"changed_since": T0 - POLL_MARGIN}]
    assert len(polled.entries) == 251
    assert polled.counts.on_pc == 1
    assert polled.counts.waiting_for_pc == 250

    # The next poll asks from the last read's time (the API's clock), less the margin; with
    # nothing new in it, the gallery is the same one.
    api.calls.clear()
    api.now = T0 + timedelta(minutes=90)
    again = model.refresh()
    assert api.calls == [{"changed_since": T0 + timedelta(minutes=5) - POLL_MARGIN}]
    assert again.entries == polled.entries
    assert again.read_at is not None


def test_a_members_own_refresh_and_time_read_it_whole(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = HistoryModel(Member(api), BackupQueue(), lambda: None)
    model.refresh()
    api.calls.clear()
    model.refresh(whole=True)
    assert api.calls
    assert all("changed_since" not in c for c in api.calls)

    api.calls.clear()
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    model.refresh(whole=True)  # read whole at "1000"
    api.calls.clear()
    clock[0] += _history.FULL_READ_EVERY - 1
    model.refresh()
    assert [set(c) for c in api.calls] == [{"changed_since"}]
    api.calls.clear()
    clock[0] += 2
    model.refresh()
    assert all("changed_since" not in c for c in api.calls)


def test_another_member_never_gets_the_last_ones_changes(api: Api) -> None:
    member = Member(api)
    model = HistoryModel(member, BackupQueue(), lambda: None)
    model.refresh()
    model.clear()  # signed out
    member.account = "ben@example.com"
    api.calls.clear()
    model.refresh()
    assert all("changed_since" not in c for c in api.calls)


def test_records_are_kept_lighter_and_unchanged(api: Api) -> None:
    """At 50,000 files the records are most of the app's memory: the latest receipt is kept
    once (it is sent twice), and the records say exactly what the API sent."""
    api.put(v := view(3, FileStatus.DOWNLOADED))
    v.receipts["main"] = v.receipt.model_copy() if v.receipt else None  # type: ignore[assignment]
    model = HistoryModel(Member(api), BackupQueue(), lambda: None)
    state = model.refresh()
    (entry,) = [e for e in state.entries if e.sha256 == v.sha256]
    record = entry.record
    assert record is not None
    assert record == v
    assert record.receipt is not None
    assert record.receipts["main"] is record.receipt
    assert record is not v
    assert record.model_dump() == v.model_dump()
    assert record.model_dump(exclude_unset=True) == v.model_dump(exclude_unset=True)
