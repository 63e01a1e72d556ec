"""Each member's counts by status, kept beside the ledger (issue 32: `status` at 50,000
files in well under 2 s).

Counting a member's entries reads all of them: 50,000 entries are 25 MB of reads and several
seconds. Instead one small item per member (`pk = COUNTS#{sub}`, its own partition, so no
listing of the member's files meets it) holds how many entries are in each status. Every
transition that changes an entry's status adds to the new status and takes from the old one
(`ADD`, one more write after the entry's own); the transitions know the old status from
their conditions or from what DynamoDB returns.

A writer that makes many transitions in a row (the agent writing receipts) gathers them in
a `Tally` and writes one `ADD` per member for the lot (`Counts.write_tally`): the agent's
ledger writes per photo halve. It writes the tally before it acknowledges the messages
whose receipts it holds, so a count is never later than its message's deletion. An agent
killed with counts in its tally asks, when it starts again, for its members' next counts
to be whole (`recount_later`): what the kill lost is made good at the next `status`.

The item starts from a whole count (the first `status` of a member with none, e.g. after an
update from a version without counts), and is counted whole again every `RECOUNT_EVERY`:
an `ADD` lost to a crash between the two writes is then made good. A whole count only
replaces the kept numbers if no transition added to them while it read (`v`, bumped by
every `ADD`, is the condition); until an item exists, transitions leave it alone.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import ConditionFailedError, aws_call
from mobile_backup.core import FileStatus, MobileBackupError
from mobile_backup.ledger._items import FILE_PREFIX, s_, user_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["RECOUNT_EVERY", "Counts", "Tally", "counts_key"]

log = logging.getLogger(__name__)

RECOUNT_EVERY = timedelta(days=7)
STATUSES = tuple(str(s) for s in FileStatus)
COUNTS_PREFIX, COUNTS_SK = "COUNTS#", "COUNTS"


def counts_key(user_sub: str) -> dict[str, Any]:
    return {"pk": s_(f"{COUNTS_PREFIX}{user_sub}"), "sk": s_(COUNTS_SK)}


def _transition(old: str | None, new: str) -> dict[str, int]:
    """What an entry going from `old` (None: it is new) to `new` adds to each status."""
    if old == new:
        return {}
    return {new: 1} | ({old: -1} if old else {})


class Tally:
    """Transitions gathered to be written together, one `ADD` per member (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._adds: dict[str, Counter[str]] = {}

    def add(self, user_sub: str, old: str | None, new: str) -> None:
        """An entry of `user_sub` went from `old` (None: it is new) to `new`."""
        adds = _transition(old, new)
        if adds:
            with self._lock:
                self._adds.setdefault(user_sub, Counter()).update(adds)

    def take(self) -> dict[str, dict[str, int]]:
        """Every member's gathered additions (those that do not cancel out); empties it."""
        with self._lock:
            taken, self._adds = self._adds, {}
        return {
            sub: nonzero
            for sub, adds in taken.items()
            if (nonzero := {status: n for status, n in adds.items() if n})
        }


class Counts:
    """The counts' reads and writes; `Ledger` provides the client and the table."""

    _db: DynamoDBClient
    _table: str

    def _count(self, user_sub: str, old: str | None, new: str, tally: Tally | None = None) -> None:
        """An entry went from `old` (None: it is new) to `new`: counted now, or gathered in
        `tally` (written by `write_tally`). Never raises: a lost `ADD` is made good by the
        next whole count."""
        if tally is not None:
            tally.add(user_sub, old, new)
        else:
            self._add(user_sub, _transition(old, new))

    def write_tally(self, tally: Tally) -> int:
        """Write what `tally` gathered, one `ADD` per member; returns how many were sent.
        Never raises, as `_count`."""
        taken = tally.take()
        for user_sub, adds in taken.items():
            self._add(user_sub, adds)
        return len(taken)

    def recount_later(self, user_sub: str) -> None:
        """Have the next `counts` of this member count whole (its kept numbers may lack an
        `ADD`: a writer killed with a tally). Never raises, as `_count`."""
        try:
            with aws_call("count the ledger"):
                self._db.update_item(
                    TableName=self._table,
                    Key=counts_key(user_sub),
                    UpdateExpression="REMOVE counted_at",
                    ConditionExpression="attribute_exists(v)",
                )
        except ConditionFailedError:
            pass  # no counts kept yet: the first whole count starts them
        except MobileBackupError as exc:
            log.warning("could not ask for a whole count (the weekly one will do): %s", exc)

    def _add(self, user_sub: str, adds: dict[str, int]) -> None:
        if not adds:
            return
        names = {f"#c{i}": status for i, status in enumerate(adds)}
        values = {f":c{i}": {"N": str(n)} for i, n in enumerate(adds.values())}
        added = ", ".join(f"{name} :c{i}" for i, name in enumerate(names))
        try:
            with aws_call("count the ledger"):
                self._db.update_item(
                    TableName=self._table,
                    Key=counts_key(user_sub),
                    UpdateExpression=f"ADD {added}, v :one",
                    ConditionExpression="attribute_exists(v)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":one": {"N": "1"}},
                )
        except ConditionFailedError:
            pass  # no counts kept yet: the first whole count starts them
        except MobileBackupError as exc:
            log.warning("a count was not kept (the next whole count makes it good): %s", exc)

    def counts(self, user_sub: str, *, now: datetime) -> dict[str, int]:
        """How many of a user's entries are in each status: the kept counts, or a whole
        count (kept, when no transition ran meanwhile) when there are none or they are
        older than `RECOUNT_EVERY`."""
        with aws_call("count the ledger"):
            item = self._db.get_item(
                TableName=self._table, Key=counts_key(user_sub), ConsistentRead=True
            ).get("Item")
        if item is not None and "counted_at" in item:
            counted_at = datetime.fromisoformat(item["counted_at"]["S"])
            if now - counted_at < RECOUNT_EVERY:
                kept = {s: max(0, int(item[s]["N"])) for s in STATUSES if s in item}
                return {s: n for s, n in kept.items() if n}
        if item is None or "v" not in item:
            # Transitions add to the item from now on; the count below is kept only if none
            # ran while it read (else a transition between its read and its write is lost).
            try:
                with aws_call("count the ledger"):
                    self._db.update_item(
                        TableName=self._table,
                        Key=counts_key(user_sub),
                        UpdateExpression="SET v = :zero",
                        ConditionExpression="attribute_not_exists(v)",
                        ExpressionAttributeValues={":zero": {"N": "0"}},
                    )
                version = "0"
            except ConditionFailedError:
                version = ""  # another count started them: theirs stands
        else:
            version = item["v"]["N"]
        whole = self.count_whole(user_sub)
        if not version:
            return whole
        values: dict[str, Any] = {f":{s}": {"N": str(whole.get(s, 0))} for s in STATUSES}
        values[":at"], values[":v"] = s_(now.isoformat()), {"N": version}
        condition = "v = :v"
        sets = ", ".join(f"#{s} = :{s}" for s in STATUSES)
        try:
            with aws_call("count the ledger"):
                self._db.update_item(
                    TableName=self._table,
                    Key=counts_key(user_sub),
                    UpdateExpression=f"SET {sets}, counted_at = :at",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={f"#{s}": s for s in STATUSES},
                    ExpressionAttributeValues=values,
                )
        except ConditionFailedError:
            pass  # counted meanwhile, or a transition ran: the kept numbers stand
        return whole

    def count_whole(self, user_sub: str) -> dict[str, int]:
        """Count a user's entries by reading them all (three small attributes each)."""
        counts: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ProjectionExpression": "sk, #st",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":pk": s_(user_pk(user_sub))},
        }
        while True:
            with aws_call("count the ledger"):
                resp = self._db.query(**kwargs)
            for item in resp.get("Items", []):
                if item["sk"]["S"].startswith(FILE_PREFIX):
                    status = item.get("status", {}).get("S", "unknown")
                    counts[status] = counts.get(status, 0) + 1
            last = resp.get("LastEvaluatedKey")
            if not last:
                return counts
            kwargs["ExclusiveStartKey"] = last
