"""`agent reconcile`: the ledger is the truth, the queue only the fast path.

Two passes:

- **fetch** — every ledger entry that is uploaded but not downloaded (the sparse
  `awaiting-download` index: a query, never a scan) is delivered exactly as a queue message
  would be. This covers a PC that was off longer than SQS keeps messages, a purged queue, and
  messages parked in the dead-letter queue. Then every file another PC has and this one
  does not (each member's entries without this PC's receipt) is fetched while the cloud
  still holds it: every PC ends up complete, a new one included.
- **dead letters** — this PC's letters in the shared downloads DLQ for files it now holds
  (they arrived through the fetch) are cleared, so the DLQ alarm rings only for work that
  is really stuck (`_dead_letters.py`).
- **audit** — every file the agent placed (its state file, plus this host's receipts in the
  ledger for the users it serves, in case the state file was lost) is checked on disk.
  Missing or altered files are reported and fetched again while the cloud copy exists; the
  altered file itself is never touched (the new copy gets a ` (n)` name).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._placement import FileState
from mobile_backup.agent._state import PlacedFile
from mobile_backup.aws import AwsFailure, Bucket
from mobile_backup.core import (
    ConfigError,
    DownloadMessage,
    FileRecord,
    FileStatus,
    MobileBackupError,
    ServiceError,
    object_key,
)
from mobile_backup.ledger import MAIN_PC

if TYPE_CHECKING:
    from mobile_backup.agent._dead_letters import DeadLetters
    from mobile_backup.agent._deliver import Delivery

logger = logging.getLogger(__name__)

PAGE = 1000  # entries per ledger query (DynamoDB answers at most 1 MB a page anyway)
FULL_EVERY = timedelta(days=7)
"""A periodic pass reads each member's whole ledger at least this often; in between it
reads only the entries changed since the last complete pass (the `by-change` index)."""
OVERLAP = timedelta(hours=1)
"""How far before the last pass's start an incremental pass reads: entries are stamped by
their writer's clock (the API's, the ingest's, other PCs'), which may lag this PC's."""


RECONCILED_AT = "reconciled_at"
FULLY_RECONCILED_AT = "fully_reconciled_at"


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One missing or altered file and what was done about it."""

    user_sub: str
    sha256: str
    path: PurePosixPath
    state: FileState
    action: str
    """`refetched → {path}`, `cloud copy gone`, `reported` (no re-fetch asked), or an error."""


@dataclass(slots=True)
class ReconcileReport:
    """What a reconcile pass did."""

    outcomes: dict[OutcomeKind, int] = field(default_factory=dict)
    checked: int = 0
    elsewhere_only: int = 0
    """Files only other PCs have, whose cloud copy has already expired."""
    dead_letters_cleared: int = 0
    """This PC's dead letters for files it holds now (stale: nothing was stuck)."""
    deferred: int = 0
    """Entries not tried because the library refused files (disk full): the pass that
    follows the end of the pause fetches them."""
    findings: list[AuditFinding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ledger_entries_read: int = 0
    """Members' entries read from the ledger (not counting the awaiting index)."""
    changed_since: datetime | None = None
    """Set when the pass read only entries changed since then (incremental)."""

    def count(self, kind: OutcomeKind) -> int:
        return self.outcomes.get(kind, 0)

    @property
    def ok(self) -> bool:
        """True when everything awaiting was delivered and no file is left missing."""
        bad = (
            OutcomeKind.FAILED,
            OutcomeKind.ERROR,
            OutcomeKind.BLOCKED,
            OutcomeKind.RELEASED,
        )
        unresolved = [f for f in self.findings if not f.action.startswith("refetched")]
        return (
            not any(self.count(k) for k in bad)
            and not unresolved
            and not self.problems
            and not self.deferred
        )

    def summary(self) -> str:
        parts = [f"{n} {kind}" for kind, n in sorted(self.outcomes.items()) if n]
        if self.checked:
            parts.append(f"{self.checked} checked on disk")
        if self.findings:
            parts.append(f"{len(self.findings)} missing/altered")
        if self.elsewhere_only:
            parts.append(f"{self.elsewhere_only} only on other PCs (expired from the cloud)")
        if self.deferred:
            parts.append(f"{self.deferred} deferred until the library takes files again")
        if self.dead_letters_cleared:
            parts.append(f"{self.dead_letters_cleared} stale dead letter(s) cleared")
        if self.ledger_entries_read or self.changed_since:
            since = (
                f" changed since {self.changed_since:%Y-%m-%d %H:%M} UTC"
                if self.changed_since
                else ""
            )
            parts.append(f"{self.ledger_entries_read} ledger entries{since} read")
        return ", ".join(parts) or "nothing to do"


class Reconciler:
    """Reconciles one agent's library with the ledger; uses the agent's own delivery path
    (`Agent.reconciler()` builds one).

    Args:
        delivery: the agent's delivery (and its ledger, S3 client, state and library).
        workers: files delivered at the same time.
        prepare: readies the agent (takes the library) before the first file.
        progress: called with each finished outcome (CLI progress bars).
    """

    def __init__(
        self,
        delivery: Delivery,
        *,
        workers: int,
        prepare: Callable[[], None],
        progress: Callable[[Outcome], None] | None = None,
        dead_letters: Callable[[], DeadLetters | None] | None = None,
        full: bool = False,
    ) -> None:
        self._delivery = delivery
        self._started = delivery.now()
        self._since = None if full else self._changes_since()
        self._dead_letters = dead_letters
        self._workers = workers
        self._prepare = prepare
        self._progress = progress
        bucket = delivery.bucket
        if not bucket:
            raise ConfigError("reconcile needs the bucket name (setting `bucket`)")
        self._bucket = bucket

    def _changes_since(self) -> datetime | None:
        """Where an incremental pass starts reading, or None for a full pass: the first
        pass, one after a lost state file, and one a week after the last full pass."""
        state = self._delivery.state
        try:
            last, full = state.value(RECONCILED_AT), state.value(FULLY_RECONCILED_AT)
        except MobileBackupError:
            return None
        if not last or not full:
            return None
        last_at, full_at = datetime.fromisoformat(last), datetime.fromisoformat(full)
        if self._started - full_at >= FULL_EVERY or last_at > self._started:
            return None
        return last_at - OVERLAP

    @property
    def incremental(self) -> bool:
        return self._since is not None

    def _passed(self) -> None:
        """A complete pass (every entry it meant to read was read): the next one may read
        only what changed since this one started."""
        values = {RECONCILED_AT: self._started}
        if self._since is None:
            values[FULLY_RECONCILED_AT] = self._started
        try:
            self._delivery.state.set_values(**values)
        except MobileBackupError as exc:  # a full disk: the next pass is a full one
            logger.warning("could not note the reconcile pass in the state file: %s", exc)

    def run(
        self, *, audit: bool = True, refetch: bool = True, verify: bool = False
    ) -> ReconcileReport:
        """Fetch what is awaiting, clear stale dead letters, then audit the library."""
        report = self.fetch_awaiting()
        self.sweep_dead_letters(report)
        if audit:
            self.audit(report=report, refetch=refetch, verify=verify)
        return report

    def sweep_dead_letters(self, report: ReconcileReport) -> None:
        """Clear this PC's dead letters for files it holds (best effort: a DLQ that cannot
        be read is a problem for the report, not a failed pass)."""
        found = self._dead_letters() if self._dead_letters is not None else None
        if found is None:
            return
        try:
            report.dead_letters_cleared += found.sweep(self._delivery.pc_name, self._delivery.holds)
        except ServiceError as exc:
            logger.warning("could not look at the dead-letter queue: %s", exc)

    # Fetch -----------------------------------------------------------------------------
    def awaiting(self) -> Iterator[FileRecord]:
        """Every uploaded-but-not-downloaded ledger entry, page by page (GSI query)."""
        cursor: str | None = None
        while True:
            records, cursor = self._delivery.ledger.awaiting_download(limit=PAGE, cursor=cursor)
            yield from records
            if cursor is None:
                return

    def fetch_awaiting(
        self,
        *,
        report: ReconcileReport | None = None,
        cancel: threading.Event | None = None,
    ) -> ReconcileReport:
        """Deliver every awaiting entry with the agent's workers."""
        report = report or ReconcileReport()
        report.changed_since = self._since
        lock = threading.Lock()

        def one(record: FileRecord) -> None:
            outcome = self._delivery.deliver(
                DownloadMessage.for_record(record, bucket=self._bucket),
                message_id=f"ledger:{record.sha256[:12]}",
                cancel=cancel,
            )
            with lock:
                report.outcomes[outcome.kind] = report.outcomes.get(outcome.kind, 0) + 1
                if outcome.kind not in (OutcomeKind.PLACED, OutcomeKind.ALREADY_PLACED):
                    report.problems.append(
                        f"{object_key(record.user_sub, record.sha256)}: {outcome.kind}"
                        f"{': ' + outcome.detail if outcome.detail else ''}"
                    )
            if self._progress is not None:
                self._progress(outcome)

        self._prepare()
        with ThreadPoolExecutor(self._workers, thread_name_prefix="reconcile") as pool:
            futures = []
            for record in self.awaiting():
                if cancel is not None and cancel.is_set():
                    break
                if record.status != FileStatus.UPLOADED:
                    continue
                if self._delivery.paused:  # the disk refuses files: no download is wasted
                    report.deferred += 1
                    continue
                futures.append(pool.submit(one, record))
            for future in futures:
                future.result()
            futures = []
            for record in self.missing_here(report):
                if cancel is not None and cancel.is_set():
                    break
                if self._delivery.paused:
                    report.deferred += 1
                    continue
                futures.append(pool.submit(one, record))
            for future in futures:
                future.result()
        return report

    def missing_here(self, report: ReconcileReport) -> Iterator[FileRecord]:
        """Files another PC has received and this PC has not, whose cloud copy is still
        there (the others are counted in `report.elsewhere_only`)."""
        d = self._delivery
        pc = d.pc_name
        try:
            if pc == MAIN_PC and not [p for p in d.ledger.pc_registry().all() if p.name != pc]:
                return  # the only PC: nothing can be on another one (and no listing to pay)
            users = set(d.ledger.members()) | set(d.state.users())
        except ServiceError as exc:
            report.problems.append(f"could not list the household's members: {exc}")
            return
        for user in sorted(users):
            for record in self._files_of(user, report):
                if (
                    record.status != FileStatus.DOWNLOADED
                    or pc in record.receipts
                    or d.state.placed(user, record.sha256) is not None
                ):
                    continue
                key = object_key(user, record.sha256)
                try:
                    size = Bucket(d.s3, self._bucket).size_of(key)
                except AwsFailure as exc:
                    report.problems.append(f"{key}: {exc}")
                    continue
                if size is None:
                    report.elsewhere_only += 1  # expired from the cloud: another PC's
                    continue
                yield record

    def _files_of(self, user: str, report: ReconcileReport) -> Iterator[FileRecord]:
        """A member's entries: every one (a full pass), or those changed since the last."""
        ledger = self._delivery.ledger
        cursor: str | None = None
        while True:
            try:
                if self._since is None:
                    records, cursor = ledger.list_files(user, limit=PAGE, cursor=cursor)
                else:
                    records, cursor = ledger.list_changed(
                        user, since=self._since, limit=PAGE, cursor=cursor
                    )
            except ServiceError as exc:
                report.problems.append(f"could not list the ledger for {user}: {exc}")
                return
            report.ledger_entries_read += len(records)
            yield from records
            if cursor is None:
                return

    # Audit -----------------------------------------------------------------------------
    def audit(
        self,
        *,
        report: ReconcileReport | None = None,
        refetch: bool = True,
        verify: bool = False,
    ) -> ReconcileReport:
        """Check every placed file; re-fetch missing/altered ones while the cloud has them.

        `verify` hashes every file (slow: reads the whole library); otherwise files whose
        size and modification time are unchanged count as intact and only changed ones are
        hashed.
        """
        report = report or ReconcileReport()
        report.changed_since = self._since
        self._prepare()
        d = self._delivery
        started, problems = d.now(), len(report.problems)
        for placed in self._placed_files(report):
            report.checked += 1
            found = self._check(placed, verify=verify)
            if found == FileState.OK:
                continue
            # This PC's receipt no longer vouches for the file (a phone keeps its copy)
            # until a new receipt, which a successful refetch writes.
            try:
                d.ledger.flag_missing(placed.user_sub, placed.sha256, pc=d.pc_name, now=d.now())
            except ServiceError as exc:
                report.problems.append(f"could not flag {placed.path.as_posix()}: {exc}")
            action = self._refetch(placed) if refetch else "reported"
            finding = AuditFinding(
                user_sub=placed.user_sub,
                sha256=placed.sha256,
                path=placed.path,
                state=found,
                action=action,
            )
            logger.warning(
                "audit: %s is %s (%s)", placed.path.as_posix(), found.value, finding.action
            )
            report.findings.append(finding)
        if len(report.problems) == problems:  # complete: every placed file was looked at
            try:
                d.ledger.pc_registry().mark_audited(d.pc_name, started_at=started)
            except ServiceError as exc:
                report.problems.append(f"could not record the audit: {exc}")
        if not report.problems:
            self._passed()
        return report

    def _placed_files(self, report: ReconcileReport) -> Iterator[PlacedFile]:
        """The state file's placements, then this host's receipts it does not know."""
        state = self._delivery.state
        yield from state.iter_placed()
        for user in state.users():
            for record in self._files_of(user, report):
                receipt = record.receipts.get(self._delivery.pc_name)
                if (
                    record.status != FileStatus.DOWNLOADED
                    or receipt is None
                    or receipt.host != self._delivery.host
                    or state.placed(user, record.sha256) is not None
                ):
                    continue
                yield PlacedFile(
                    user_sub=user,
                    sha256=record.sha256,
                    path=PurePosixPath(receipt.path),
                    size=record.size,
                    mtime_ns=-1,  # unknown: the file is hashed
                    placed_at=receipt.at,
                )

    def _check(self, placed: PlacedFile, *, verify: bool) -> FileState:
        check = self._delivery.library.check(
            placed.path,
            sha256=placed.sha256,
            size=placed.size,
            mtime_ns=None if placed.mtime_ns == -1 else placed.mtime_ns,
            verify=verify,
        )
        if check.state == FileState.OK and check.hashed and check.mtime_ns != placed.mtime_ns:
            # Adopt the file as it is now, so the next audit need not hash it again.
            self._delivery.state.record_placed(
                user_sub=placed.user_sub,
                sha256=placed.sha256,
                path=placed.path,
                size=placed.size,
                mtime_ns=check.mtime_ns if check.mtime_ns is not None else -1,
                at=placed.placed_at,
                new_file=False,
            )
        return check.state

    def _refetch(self, placed: PlacedFile) -> str:
        d = self._delivery
        try:
            record = d.ledger.get(placed.user_sub, placed.sha256)
        except ServiceError as exc:
            return f"error: {exc}"
        if record is None:
            return "not in the ledger"
        key = object_key(placed.user_sub, placed.sha256)
        try:
            if Bucket(d.s3, self._bucket).size_of(key) is None:
                return "cloud copy gone"
        except AwsFailure as exc:
            return f"error: {exc}"
        outcome = d.deliver(DownloadMessage.for_record(record, bucket=self._bucket))
        if outcome.placement is not None and outcome.kind in (
            OutcomeKind.PLACED,
            OutcomeKind.ALREADY_PLACED,
        ):
            return f"refetched → {outcome.placement.relative.as_posix()}"
        return f"error: {outcome.kind}: {outcome.detail or ''}".rstrip(": ")
