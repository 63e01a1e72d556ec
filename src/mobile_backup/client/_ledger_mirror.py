"""What the ledger said of each content, kept in the journal between dry runs (issue 32).

A dry run of a folder of years asks the ledger about every file: 50,000 files are 500
lookups and tens of seconds of the API's time, on every run. The journal keeps each answer
(on a PC, in the cloud, or not backed up) and the time it held from (the API's `as_of`); the
next dry run first reads only the member's entries that changed since then (the ledger's
change index, `GET /v1/files?changed_since=`), then asks about the contents it never asked
about. The ledger never removes an entry, so nothing else can make a kept answer wrong; the
kept answers are dropped when they are another member's (a deployment made again at the same
address), older than `MAX_AGE`, or could not be brought up to date. A dry run is advice:
`upload` always asks the ledger itself.

A first run (nothing kept) of many files reads the member's whole list of contents instead
(`GET /v1/files/statuses`, about 1,100 a page: a megabyte of entries, 16 ranges of content
ids side by side): at 50,000 files that is 45 pages instead of 500 lookups, a quarter of the
read units and a third of the local stack's CPU (B9 measures it). Once every page is read, a
content not listed is not backed up; a member whose list is much longer than the folder
(`LIST_BUDGET`) is read only so far, and the rest asked about.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from mobile_backup.client._api import ApiClient, Lookup
from mobile_backup.client._journal import Journal
from mobile_backup.core import FileStatus, MobileBackupError
from mobile_backup.core.wire import CHANGE_MARGIN, MAX_PAGE_SIZE

__all__ = ["LedgerMirror"]

log = logging.getLogger(__name__)

MAX_AGE = timedelta(days=7)
"""Kept answers are read again whole this often (a safety net, not a need)."""
LIST_FROM = 1_000
"""A first run of at least this many files reads the member's list of contents."""
LIST_IN_FLIGHT = 8
"""Ranges of the list read at once: a home link's round trips overlap (45 pages at 50,000
entries are 6 rounds instead of 45), and the API's instances answer side by side."""
LIST_BUDGET = 3
"""...while the entries read stay under this many times the run's files: one entry listed
costs a quarter of the read units of one content asked about (a strongly consistent query
costs a unit per 4 KB read, and an entry is about 900 bytes; a lookup costs a unit per
entry) and a third of the local stack's CPU (B9)."""
AS_OF, MEMBER, SINCE = "ledger.as_of", "ledger.member", "ledger.since"
COMPLETE = "ledger.complete"
"""Set when the kept answers began from the member's whole list: every content not among
them is not backed up (the changes read since bring in every new entry)."""
ON_PC, IN_CLOUD, NOT_BACKED_UP = "pc", "cloud", "no"
_VERDICT = {FileStatus.DOWNLOADED: ON_PC, FileStatus.UPLOADED: IN_CLOUD}
_LOOKUP = {
    ON_PC: Lookup(backed_up=True, on_pc=True),
    IN_CLOUD: Lookup(backed_up=True, on_pc=False),
    NOT_BACKED_UP: Lookup(backed_up=False, on_pc=False),
}


class LedgerMirror:
    """One dry run's view of the kept answers: `catch_up`, then `known` and `ask` for each
    batch, then `finish` to keep the time they hold from."""

    def __init__(self, api: ApiClient, journal: Journal) -> None:
        self._api = api
        self._journal = journal
        self._member: str | None = None
        self._since: str | None = None
        self._usable = False  # the kept answers are up to date: `known` may use them
        self._fresh = False  # none were kept: the journal holds only this run's answers
        self._complete = False  # every entry of the member was listed: the rest are not
        self._reads: list[datetime | None] = []  # each read's `as_of`, None if not said
        self.changes_read = 0
        self.listed = 0

    def catch_up(self, files: int = 0) -> None:
        """Read what changed since the kept answers' time; drop them if they cannot be
        trusted (then, for a run of `files` at least `LIST_FROM`, read the member's list of
        contents). Never raises for the API: the lookups then ask about everything."""
        self._member = self._api.member()
        marks = self._journal.marks()
        as_of, since = _when(marks.get(AS_OF)), _when(marks.get(SINCE))
        now = datetime.now(UTC)
        if (
            self._member is None
            or marks.get(MEMBER) != self._member
            or as_of is None
            or since is None
            or now - since > MAX_AGE
        ):
            self._journal.forget_ledger(**{AS_OF: None, MEMBER: None, SINCE: None, COMPLETE: None})
            self._fresh = True
            if self._member is not None and files >= LIST_FROM:
                self._list(budget=LIST_BUDGET * files)
            return
        # The kept time stays true whatever happens next: every answer kept from now on
        # holds from a later time.
        cursor: str | None = None
        try:
            while True:
                page = self._api.list_files(
                    limit=MAX_PAGE_SIZE, cursor=cursor, changed_since=as_of - CHANGE_MARGIN
                )
                self._reads.append(page.as_of)
                self.changes_read += len(page.files)
                self._journal.remember_ledger(
                    (f.sha256, _VERDICT.get(f.status, NOT_BACKED_UP)) for f in page.files
                )
                if not page.next_cursor:
                    break
                cursor = page.next_cursor
        except MobileBackupError as exc:  # the next run reads the changes again
            log.info("the kept ledger answers are not used this time: %s", exc)
            return
        self._since = marks[SINCE]
        self._usable = True
        self._complete = marks.get(COMPLETE) == "1"

    def _list(self, *, budget: int) -> None:
        """Read the member's contents and their statuses into the journal, the 16 ranges of
        content ids side by side (`LIST_IN_FLIGHT` at once), each page after page, until
        every range ends (then a content not listed is not backed up), `budget` entries are
        read or a read fails."""
        enough = threading.Event()
        counted = threading.Lock()

        def read(prefix: str) -> bool:
            """One range, from its first page to its last (True) or until `enough`."""
            cursor: str | None = None
            while not enough.is_set():
                page = self._api.statuses(prefix=prefix, cursor=cursor)
                self._reads.append(page.as_of)
                self._journal.remember_ledger(
                    (sha, _VERDICT.get(status, NOT_BACKED_UP))
                    for sha, status in page.statuses.items()
                )
                with counted:
                    self.listed += len(page.statuses)
                    if self.listed >= budget:  # asking about the rest costs less
                        enough.set()
                self._usable = True  # what was read holds from its page's `as_of` on
                if not page.next_cursor:
                    return True
                cursor = page.next_cursor
            return False

        with ThreadPoolExecutor(LIST_IN_FLIGHT, thread_name_prefix="list") as pool:
            ranges = [pool.submit(read, f"{digit:x}") for digit in range(16)]
            ended = 0
            for done in ranges:
                try:
                    ended += done.result()
                except MobileBackupError as exc:  # (an API older than the list: 404)
                    enough.set()  # the others stop after their page
                    log.info("the ledger's list of contents is not used this time: %s", exc)
        self._complete = ended == len(ranges)

    def known(self, sha256s: Sequence[str]) -> dict[str, Lookup]:
        """The kept answers of these contents, when they are up to date (every content's,
        once the member's whole list was read)."""
        if not self._usable:
            return {}
        said = self._journal.ledger_said(sha256s)
        if self._complete:
            return {sha: _LOOKUP[said.get(sha, NOT_BACKED_UP)] for sha in sha256s}
        return {sha: _LOOKUP[v] for sha, v in said.items()}

    def ask(self, sha256s: Sequence[str]) -> dict[str, Lookup]:
        """The ledger's answers (`ApiClient.lookup`), kept for the next run."""
        found, as_of = self._api.lookup_as_of(sha256s, verdicts=False)
        self._reads.append(as_of)
        self._journal.remember_ledger(
            (sha, _verdict(found[sha]) if sha in found else NOT_BACKED_UP) for sha in sha256s
        )
        return found

    def finish(self) -> None:
        """Keep the time the kept answers hold from: the earliest read of this run (every
        answer kept before was brought up to date by then). Not when they could not be
        brought up to date, nor when the API did not say when it read."""
        ok = self._usable or self._fresh
        if not ok or self._member is None or not self._reads or None in self._reads:
            return
        earliest = min(r for r in self._reads if r is not None)
        self._journal.remember_ledger(
            [],
            **{
                AS_OF: earliest.isoformat(),
                MEMBER: self._member,
                SINCE: self._since or earliest.isoformat(),
                COMPLETE: "1" if self._complete else None,
            },
        )


def _verdict(found: Lookup) -> str:
    return ON_PC if found.on_pc else IN_CLOUD if found.backed_up else NOT_BACKED_UP


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
