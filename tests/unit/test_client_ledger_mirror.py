"""The ledger's answers a dry run keeps in the journal (issue 32): when they are used, and
when they are not (another member, a failed catch-up, an API that does not say when)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobile_backup.client import Journal, _ledger_mirror
from mobile_backup.client._api import Lookup
from mobile_backup.client._ledger_mirror import AS_OF, MAX_AGE, SINCE, LedgerMirror
from mobile_backup.client.exceptions import ApiError, TransportError
from mobile_backup.core import FileStatus
from mobile_backup.core.wire import CHANGE_MARGIN, FilesPage, StatusesPage

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
SHAS = [f"{n:064x}" for n in range(6)]


class Api:
    """The two reads a dry run makes; the ledger is a dict of sha256 -> Lookup."""

    def __init__(self, member: str | None = "alice", *, says_when: bool = True) -> None:
        self.ledger = {SHAS[0]: Lookup(backed_up=True, on_pc=True)}
        self.member_id = member
        self.says_when = says_when
        self.now = T0
        self.asked: list[list[str]] = []
        self.changes: list[datetime] = []
        self.fail_changes = False
        self.pages: list[tuple[str, str | None]] = []  # (prefix, cursor) of each page read
        self.fail_list: set[str] = set()  # the ranges (prefixes) whose reads fail

    def member(self) -> str | None:
        return self.member_id

    def lookup_as_of(
        self, shas: Sequence[str], *, verdicts: bool = True
    ) -> tuple[dict[str, Lookup], datetime | None]:
        assert not verdicts  # a dry run asks for statuses only
        self.asked.append(list(shas))
        found = {s: self.ledger[s] for s in shas if s in self.ledger}
        return found, self.now if self.says_when else None

    def list_files(self, **kwargs: Any) -> FilesPage:
        if self.fail_changes:
            raise TransportError("cannot reach the API")
        self.changes.append(kwargs["changed_since"])
        return FilesPage(files=[], as_of=self.now if self.says_when else None)

    def statuses(self, *, prefix: str = "", cursor: str | None = None) -> StatusesPage:
        """Two entries a page, in content-id order; the cursor is the next one's index."""
        if prefix in self.fail_list:
            raise ApiError("Not Found (http_error, HTTP 404)", status=404, code="http_error")
        self.pages.append((prefix, cursor))
        shas = sorted(s for s in self.ledger if s.startswith(prefix))
        start = int(cursor) if cursor else 0
        page = {
            s: FileStatus.DOWNLOADED if self.ledger[s].on_pc else FileStatus.UPLOADED
            for s in shas[start : start + 2]
        }
        more = start + 2 < len(shas)
        return StatusesPage(
            statuses=page,
            next_cursor=str(start + 2) if more else None,
            as_of=self.now if self.says_when else None,
        )


def run(
    api: Api, journal: Journal, shas: Sequence[str] = SHAS, *, files: int = 0
) -> dict[str, Lookup]:
    mirror = LedgerMirror(api, journal)  # type: ignore[arg-type]
    mirror.catch_up(files=files)
    known = mirror.known(shas)
    ask = [s for s in shas if s not in known]
    found = known | (mirror.ask(ask) if ask else {})
    mirror.finish()
    return {s: found.get(s, Lookup(backed_up=False, on_pc=False)) for s in shas}


def test_kept_answers_are_used_once_brought_up_to_date_from_the_first_reads_time() -> None:
    api, journal = Api(), Journal.memory()
    first = run(api, journal)
    assert api.asked == [SHAS]
    assert api.changes == []
    api.now = T0 + timedelta(minutes=10)
    assert run(api, journal) == first
    assert api.asked == [SHAS]  # nothing asked again
    assert api.changes == [T0 - CHANGE_MARGIN]
    assert journal.marks()[AS_OF] == api.now.isoformat()
    assert journal.marks()[SINCE] == T0.isoformat()  # when they were first read whole


@pytest.mark.parametrize("case", ["another member", "no member", "too old", "failed catch-up"])
def test_kept_answers_are_not_used_when_they_cannot_be_trusted(case: str) -> None:
    api, journal = Api(), Journal.memory()
    run(api, journal)
    if case == "another member":
        api.member_id = "bob"
    elif case == "no member":
        api.member_id = None
    elif case == "too old":
        long_ago = datetime.now(UTC) - MAX_AGE - timedelta(minutes=1)
        journal.remember_ledger([], **{SINCE: long_ago.isoformat()})
    else:
        api.fail_changes = True
    api.asked.clear()
    run(api, journal)
    assert api.asked == [SHAS]
    if case == "failed catch-up":  # kept, with their old time: the next run catches up
        api.fail_changes = False
        api.asked.clear()
        run(api, journal)
        assert api.asked == []
        assert api.changes[-1] == T0 - CHANGE_MARGIN


def test_nothing_is_kept_from_an_api_that_does_not_say_when_it_read() -> None:
    api, journal = Api(says_when=False), Journal.memory()
    run(api, journal)
    run(api, journal)
    assert api.asked == [SHAS, SHAS]
    assert AS_OF not in journal.marks()


def test_a_content_asked_about_later_is_kept_beside_the_others() -> None:
    api, journal = Api(), Journal.memory()
    run(api, journal, SHAS[:3])
    assert run(api, journal)[SHAS[0]].on_pc
    assert api.asked == [SHAS[:3], SHAS[3:]]
    run(api, journal)
    assert api.asked == [SHAS[:3], SHAS[3:]]


# A first run of many files: the member's list of contents -------------------------------

MANY = [f"{n:064x}" for n in range(100, 112)]  # all in the range of prefix "0"
SPREAD = [hashlib.sha256(b"%d" % n).hexdigest() for n in range(40)]  # in every range


def many(api: Api, shas: Sequence[str] = MANY) -> None:
    """Half of the contents backed up (a third of those on the PC), beside SHAS[0]."""
    for i, sha in enumerate(shas[: len(shas) // 2]):
        api.ledger[sha] = Lookup(backed_up=True, on_pc=i % 3 == 0)


def expected(api: Api, shas: Sequence[str]) -> dict[str, Lookup]:
    return {s: api.ledger.get(s, Lookup(backed_up=False, on_pc=False)) for s in shas}


def test_a_first_run_of_many_files_reads_the_members_list_instead_of_asking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_ledger_mirror, "LIST_FROM", len(SPREAD))
    api, journal = Api(), Journal.memory()
    many(api, SPREAD)
    assert run(api, journal, SPREAD, files=len(SPREAD)) == expected(api, SPREAD)
    assert api.asked == []  # every page read: a content not listed is not backed up
    # Each of the 16 ranges read from its first page to its last, 2 entries a page.
    pages: list[tuple[str, str | None]] = []
    for prefix in "0123456789abcdef":
        n = sum(s.startswith(prefix) for s in api.ledger)
        pages += [(prefix, None), *((prefix, str(k)) for k in range(2, n, 2))]
    assert sorted(api.pages, key=str) == sorted(pages, key=str)
    assert journal.marks()[AS_OF] == T0.isoformat()
    # The next run keeps them, as answers asked about are kept.
    api.now = T0 + timedelta(minutes=5)
    assert run(api, journal, SPREAD, files=len(SPREAD)) == expected(api, SPREAD)
    assert api.asked == []
    assert len(api.pages) == len(pages)  # not listed again: only the changes read
    assert api.changes == [T0 - CHANGE_MARGIN]


def test_a_run_of_fewer_files_than_list_from_asks_about_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_ledger_mirror, "LIST_FROM", len(MANY) + 1)
    api, journal = Api(), Journal.memory()
    many(api)
    assert run(api, journal, MANY, files=len(MANY)) == expected(api, MANY)
    assert api.pages == []
    assert api.asked == [MANY]


@pytest.mark.parametrize("case", ["budget", "failed list", "no member"])
def test_a_list_read_only_in_part_answers_what_it_read_and_the_rest_is_asked(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """A member whose list is much longer than the folder is read only so far (`LIST_BUDGET`
    times the files); a list that fails (an older API: 404) is read no further; without a
    member (signed out) nothing is listed. Every answer is the ledger's all the same."""
    monkeypatch.setattr(_ledger_mirror, "LIST_FROM", 1)
    monkeypatch.setattr(_ledger_mirror, "LIST_BUDGET", 2)  # 2 files: 4 entries, 2 pages
    api, journal = Api(), Journal.memory()
    many(api)
    if case == "failed list":
        api.fail_list = {"f"}  # one range fails: the list is not whole
    if case == "no member":
        api.member_id = None
    shas = [MANY[0], MANY[9]]  # the first listed, and one not backed up
    assert run(api, journal, shas, files=len(shas)) == expected(api, shas)
    if case == "budget":
        assert [c for p, c in api.pages if p == "0"] == [None, "2"]
        assert api.asked == [[MANY[9]]]  # what was listed is not asked about
    elif case == "failed list":
        # (Range "0" is read first, so its first page is in, whenever "f" failed.)
        assert ("0", None) in api.pages
        assert api.asked == [[MANY[9]]]
    else:
        assert api.pages == []
        assert api.asked == [shas]
