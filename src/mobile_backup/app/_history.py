"""The history screen's model: the member's files as the ledger has them, a page at a time,
and the backup at a glance (the status card and the top bar's link icon) drawn from it.

No Flet import: the controller owns one, the screens read `state` and call `refresh`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from mobile_backup.app._errors import user_message
from mobile_backup.app._queue import BackupQueue
from mobile_backup.app._receipts import (
    HistoryCounts,
    HistoryEntry,
    count,
    history,
    household_pcs,
    last_collected,
)
from mobile_backup.app._status import Glance, Link, glance
from mobile_backup.client import (
    ApiClient,
    FileStamp,
    Journal,
    NotLoggedInError,
    TransportError,
)
from mobile_backup.core import MobileBackupError, sha256_file
from mobile_backup.core.wire import FileView

log = logging.getLogger(__name__)

# The history reads the ledger a page at a time, newest capture first: a small first page,
# drawn before the next is asked for, then large ones (fewer requests for a long history).
HISTORY_FIRST_PAGE = 100
HISTORY_PAGE = 1000
# Once the whole history is in, a refresh reads only the entries that changed since the last
# read (the ledger's change index): at 50,000 files a whole read is 50 requests and 25 MB, a
# poll while nothing changes is one small request. The margin covers the clocks of the PCs
# that write receipts (a PC a few minutes slow writes its changes "in the past"); a whole
# read every FULL_READ_EVERY (and on a member's own refresh) catches anything else: an entry
# removed, a PC's clock further off than the margin, or a PC's check that makes older files
# freeable. The margin is shorter than a dry run's (core.wire's CHANGE_MARGIN, one read a
# run): a poll every few seconds that re-read an hour of changes would re-read every file
# of a big first backup at each poll for an hour.
POLL_MARGIN = timedelta(minutes=5)
FULL_READ_EVERY = 600.0  # seconds


@dataclass(frozen=True, slots=True)
class HistoryState:
    """What the history screen shows."""

    entries: tuple[HistoryEntry, ...] = ()
    counts: HistoryCounts = field(default_factory=HistoryCounts)
    error: str | None = None
    loaded: bool = False
    complete: bool = False
    """Every page has been read (until then the counts are of what has arrived)."""
    pcs: tuple[str, ...] = ()
    """The household's PCs that have written receipts for this member's files."""
    collected: dict[str, datetime] = field(default_factory=dict)
    """When each PC last collected one of this member's files."""
    member: str | None = None
    """The member's folder name in the PC library."""
    read_at: datetime | None = None
    """When the ledger was last read whole (the age of these figures when it cannot be)."""


class Member(Protocol):
    """What the history needs of the app: who is signed in, and their API."""

    @property
    def username(self) -> str | None: ...

    @property
    def account(self) -> str | None:
        """The signed-in account's key (None while signed out)."""

    @property
    def deployment(self) -> str: ...

    def api(self) -> ApiClient: ...

    def journal(self) -> Journal: ...

    def session_ended(self) -> None: ...


class HistoryModel:
    """The member's history and the glance built on it; refreshed off the UI loop."""

    def __init__(self, member: Member, queue: BackupQueue, on_change: Callable[[], None]) -> None:
        self._member = member
        self._queue = queue
        self._changed = on_change
        self._lock = threading.Lock()
        self.state = HistoryState()
        self.link = Link.UNKNOWN
        self.link_message: str | None = None
        # The content of each failed queue item, by path and stamp (settling reads it).
        self._hashed: dict[tuple[Path, FileStamp], str] = {}
        # Whose history was read whole, when (monotonic), and from when (the API's clock)
        # the next refresh asks for changes.
        self._read_whole: tuple[str | None, float, datetime] | None = None

    def clear(self) -> None:
        """Signed out: nothing of the last member stays on screen."""
        self.state = HistoryState()
        self.link, self.link_message = Link.UNKNOWN, None
        self._read_whole = None

    def refresh(self, *, wait: bool = True, whole: bool = False) -> HistoryState:
        """Read the ledger (blocking): the whole history a page at a time the first time, on
        `whole` and every `FULL_READ_EVERY`, else only what changed since the last read.
        Errors become a message on the history screen and set the top bar's icon. The first
        page is shown as soon as it arrives, so a long history paints at once and fills in.
        Without `wait`, a refresh already under way is enough (a periodic poll)."""
        if self._member.username is None:
            return self.state
        if not self._lock.acquire(blocking=wait):
            return self.state
        try:
            account, old = self._member.account, self.state
            read = self._read_whole
            if (
                whole
                or read is None
                or read[0] != account
                or not old.complete
                or time.monotonic() - read[1] > FULL_READ_EVERY
            ):
                state = self._read(old, account)
            else:
                state = self._read_changes(old, account, since=read[2])
            if account != self._member.account:  # signed out meanwhile: not the next member's
                return self.state
            self.state = state
        finally:
            self._lock.release()
        if state.complete and state.error is None:
            self._settle_queue(state)
        self._changed()
        return state

    def _settle_queue(self, state: HistoryState) -> None:
        """A file the queue gave up on (a sign-out or a lost connection mid-run) that the
        ledger holds after all is backed up: the queue says so, not "needs attention"."""
        held = {e.sha256 for e in state.entries}
        try:
            journal = self._member.journal()
        except MobileBackupError:
            return

        def in_ledger(path: Path) -> bool:
            try:
                stamp = FileStamp.of(path)
                sha = self._hashed.get((path, stamp))
                if sha is None:  # hashed once per content, not at every refresh
                    known = journal.cached_hash(path, stamp)
                    sha = known.sha256 if known else sha256_file(path)
                    self._hashed[(path, stamp)] = sha
                return sha in held
            except (OSError, MobileBackupError):
                return False

        settled = self._queue.settle_backed_up(in_ledger)
        if settled:
            log.info("%d failed file(s) of the queue are in the ledger: backed up", settled)

    def _read(self, old: HistoryState, account: str | None) -> HistoryState:
        records: list[FileView] = []
        cursor: str | None = None
        started = time.monotonic()
        as_of: datetime | None = None
        try:
            while True:
                # Newest capture first, as the gallery shows them: the first page's tiles
                # are the top of the final gallery and stay where they are drawn.
                limit = HISTORY_PAGE if records else min(HISTORY_FIRST_PAGE, HISTORY_PAGE)
                page = self._member.api().list_files(limit=limit, cursor=cursor, by_taken=True)
                first = not records
                as_of = as_of or page.as_of
                records.extend(_compact(page.files))
                cursor = page.next_cursor
                if not cursor:
                    break
                # The first paint: once, not at every page (a state is built from every
                # record so far: at each of 50 pages that would be 25 times the work).
                if first and not old.loaded and account == self._member.account:
                    self.state = _state(records, complete=False)
                    self._changed()
        except MobileBackupError as exc:
            return self._unread(old, exc)
        self.link, self.link_message = Link.OK, None
        # An API older than `as_of` answers no time: every refresh then reads it all.
        self._read_whole = (account, started, as_of) if as_of else None
        return _state(records, complete=True)

    def _unread(self, old: HistoryState, exc: MobileBackupError) -> HistoryState:
        """`old` with the reason the ledger could not be read (the top bar's icon says it
        too); signed out when the session has ended."""
        if isinstance(exc, NotLoggedInError):
            self._member.session_ended()
            return HistoryState(entries=old.entries, error=user_message(exc))
        self.link = Link.OFFLINE if isinstance(exc, TransportError) else Link.ERROR
        self.link_message = user_message(exc)
        return replace(old, error=user_message(exc))

    def _read_changes(
        self, old: HistoryState, account: str | None, since: datetime
    ) -> HistoryState:
        """`old` with the entries that changed since `since` (less the margin) as they are
        now; `old` itself, newly dated, when none did. A page's entries that are as `old`
        has them are let go at once: after a PC files 50,000 photos, the next polls read
        them all again and must not hold a second copy of the history."""
        records = {e.sha256: e.record for e in old.entries if e.record is not None}
        fresh: dict[str, FileView] = {}
        cursor: str | None = None
        as_of: datetime | None = None
        try:
            while True:
                page = self._member.api().list_files(
                    limit=HISTORY_PAGE, cursor=cursor, changed_since=since - POLL_MARGIN
                )
                as_of = as_of or page.as_of
                news = [f for f in page.files if records.get(f.sha256) != f]
                fresh.update((f.sha256, f) for f in _compact(news))
                cursor = page.next_cursor
                if not cursor:
                    break
        except MobileBackupError as exc:
            return self._unread(old, exc)
        self.link, self.link_message = Link.OK, None
        if self._read_whole is not None and as_of is not None:
            self._read_whole = (account, self._read_whole[1], as_of)
        if not fresh:
            return replace(old, error=None, read_at=datetime.now(UTC))
        records.update(fresh)
        return _state(list(records.values()), complete=True)

    def glance(self) -> Glance:
        """The backup at a glance (the Back up screen's status card and the top bar)."""
        h = self.state
        snap = self._queue.snapshot()
        return glance(
            username=self._member.username,
            member=h.member,
            deployment=self._member.deployment,
            on_pc=h.counts.on_pc,
            waiting_for_pc=h.counts.waiting_for_pc,
            failed=h.counts.failed + snap.failed,
            to_upload=len(snap.items) - snap.finished,
            loaded=h.loaded,
            collected=h.collected,
            link=self.link,
            link_message=self.link_message,
            now=datetime.now(UTC),
            read_at=h.read_at,
        )

    def needs_polling(self) -> bool:
        """True while some file is in the cloud but not yet on the PC."""
        return self.state.counts.waiting_for_pc > 0 or self._queue.snapshot().active


def _compact(views: list[FileView]) -> list[FileView]:
    """The same records, lighter: at 50,000 files they are most of the app's memory (4.7 KB
    each as parsed, 235 MB). The latest receipt is the same object as that PC's own (it is
    sent twice), and records given the same fields share one set of their names (pydantic
    keeps a 728-byte set per model, which only assignment changes: these records are read,
    never assigned to): 2.4 KB each."""
    for view in views:
        latest = view.receipt
        if latest is not None and view.receipts.get(latest.pc or "main") == latest:
            view.receipts[latest.pc or "main"] = latest
        # Words most files share (a type, a PC, a reason) once each; a receipt's content id
        # is the file's own.
        _intern(view.__dict__, _SHARED_WORDS)
        for receipt in view.receipts.values():
            _intern(receipt.__dict__, _SHARED_RECEIPT_WORDS)
            if receipt.sha256 == view.sha256:
                receipt.__dict__["sha256"] = view.sha256
        for model in (view, *view.receipts.values(), *([latest] if latest else [])):
            given = model.__pydantic_fields_set__
            shared = _FIELDS_GIVEN.setdefault(frozenset(given), given)
            object.__setattr__(model, "__pydantic_fields_set__", shared)
    return views


_FIELDS_GIVEN: dict[frozenset[str], set[str]] = {}
_SHARED_WORDS = ("content_type", "taken_at_source", "free_reason", "owner_name")
_SHARED_RECEIPT_WORDS = ("host", "capture_source", "pc")


def _intern(fields: dict[str, object], names: tuple[str, ...]) -> None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = sys.intern(value)


def _state(records: Sequence[FileView], *, complete: bool) -> HistoryState:
    entries = history(records)
    return HistoryState(
        entries=tuple(entries),
        counts=count(entries),
        loaded=True,
        complete=complete,
        pcs=household_pcs(entries),
        collected=last_collected(entries),
        member=next((r.owner_name for r in records if r.owner_name), None),
        read_at=datetime.now(UTC) if complete else None,
    )
