"""The ledger's answers a dry run keeps in the journal (issue 32): when they are used, and
when they are not (another member, a failed catch-up, an API that does not say when)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobile_backup.client import Journal
from mobile_backup.client._api import Lookup
from mobile_backup.client._ledger_mirror import AS_OF, MAX_AGE, SINCE, LedgerMirror
from mobile_backup.client.exceptions import TransportError
from mobile_backup.core.wire import CHANGE_MARGIN, FilesPage

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


def run(api: Api, journal: Journal, shas: Sequence[str] = SHAS) -> dict[str, Lookup]:
    mirror = LedgerMirror(api, journal)  # type: ignore[arg-type]
    mirror.catch_up()
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
