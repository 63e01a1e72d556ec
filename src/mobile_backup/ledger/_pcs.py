"""The household's PCs: each has its own downloads queue, and every file goes to every PC.

The registry lives in the ledger table (partition `PCS`, one item per PC). The first PC uses
the template's downloads queue under the name `main`; `agent register NAME` gives another PC
its own queue, `{downloads queue}-pc-{NAME}`, made with the downloads queue's own settings
(visibility, retention, encryption, dead-letter queue), and the ingest sends every new file
to each registered queue. A PC's queue is consumed by one library at a time: `claim` records
which, and an agent from another library is refused until the holder stops cleanly
(`release`) or has been silent for `STALE_AFTER` (killed, or its PC switched off).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import ConditionFailedError, Queue, aws_call
from mobile_backup.core import ConfigError, InvalidInputError
from mobile_backup.ledger._table import ledger_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

MAIN_PC = "main"
PCS_PK = "PCS"
PC_PREFIX = "PC#"
STALE_AFTER = timedelta(minutes=5)
"""A holder silent this long (no heartbeat) no longer keeps another library out."""
HEARTBEAT_EVERY = timedelta(minutes=1)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")
# What a PC's queue copies from the downloads queue.
_COPIED = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "ReceiveMessageWaitTimeSeconds",
)
LIBRARY_ID_FILE = "library-id"
PC_ATTRIBUTE = "pc"
"""The message attribute that names the PC a download message is for (SQS keeps it when it
moves a message to the dead-letter queue, so a letter can be sent home)."""


@dataclass(frozen=True, slots=True)
class PcQueue:
    """Where one PC's download messages go."""

    name: str
    url: str


def partition_items(
    db: DynamoDBClient, table: str, pk: str, *, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """Every item of one small partition of the ledger table (the PCs, the members)."""
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": consistent,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = db.query(**kwargs)
        yield from resp.get("Items", [])
        start = resp.get("LastEvaluatedKey")
        if not start:
            return


class PcInUseError(ConfigError):
    """Another library already collects this PC's queue."""


def check_pc_name(name: str) -> str:
    """A PC name: 1-20 of a-z, 0-9 and '-', starting with a letter or digit."""
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"{name!r} is not a PC name: use 1-20 lower-case letters, digits and '-' "
            "(e.g. 'laptop' or 'office-pc')"
        )
    return name


def pc_queue_name(downloads_queue_url: str, name: str) -> str:
    """`{stack}-downloads` → `{stack}-downloads-pc-{name}` (what the IAM grants cover)."""
    base = downloads_queue_url.rstrip("/").rsplit("/", 1)[-1]
    return f"{base}-pc-{check_pc_name(name)}"


def library_id(hidden_dir: Path) -> str:
    """This library's permanent id (made on first use), stored in its hidden folder."""
    path = hidden_dir / LIBRARY_ID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if re.fullmatch(r"[0-9a-f]{32}", text):
        return text
    text = uuid.uuid4().hex
    hidden_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n", encoding="ascii")
    tmp.replace(path)
    return text


@dataclass(frozen=True, slots=True)
class PcRecord:
    """One registered PC."""

    name: str
    queue_url: str
    library_id: str | None = None
    host: str | None = None
    library: str | None = None
    seen_at: datetime | None = None
    audited_at: datetime | None = None
    """When this PC's last complete audit started: every file it had placed by then was
    found on its disk, intact (or flagged `missing@PC` on its ledger entry)."""
    check_requested_at: datetime | None = None
    """When a member last asked the PCs to check their copies now ("Check now" in the app);
    the agent starts a check at its next heartbeat if it has not started one since."""


class PcRegistry:
    """The PCs of a deployment; the DynamoDB and SQS clients are injected."""

    def __init__(
        self, db: DynamoDBClient, table: str, *, downloads_queue_url: str | None = None
    ) -> None:
        self._db = ledger_table(db)
        self._table = table
        self._main_queue = downloads_queue_url

    def _key(self, name: str) -> dict[str, Any]:
        return {"pk": {"S": PCS_PK}, "sk": {"S": f"{PC_PREFIX}{name}"}}

    def all(self, *, consistent: bool = False) -> list[PcRecord]:
        """Every registered PC (`main` is listed once it has run); `consistent` sees a
        registration the moment it returned."""
        with aws_call("read the PC registry"):
            items = partition_items(self._db, self._table, PCS_PK, consistent=consistent)
            return [_record(item) for item in items]

    def queue_targets(self) -> list[PcQueue]:
        """The queues every new file goes to: the downloads queue (the first PC's) and each
        other PC's own, as the registry is now (a PC registered a moment ago included)."""
        targets = [PcQueue(MAIN_PC, self._main_queue)] if self._main_queue else []
        for pc in self.all(consistent=True):
            if pc.queue_url and pc.queue_url not in {t.url for t in targets}:
                targets.append(PcQueue(pc.name, pc.queue_url))
        return targets

    def get(self, name: str) -> PcRecord | None:
        with aws_call("read the PC registry"):
            resp = self._db.get_item(TableName=self._table, Key=self._key(name))
        item = resp.get("Item")
        return _record(item) if item else None

    def queue_url(self, name: str) -> str:
        """The queue of PC `name`; ConfigError naming the fix if it is not registered."""
        if name == MAIN_PC and self._main_queue:
            return self._main_queue
        pc = self.get(check_pc_name(name))
        if pc is None:
            raise ConfigError(
                f"no PC named {name!r} is registered: run `mobile-backup agent register {name}`"
            )
        return pc.queue_url

    def register(self, sqs: SQSClient, name: str) -> PcRecord:
        """Give PC `name` its own queue (idempotent) and record it."""
        if self._main_queue is None:
            raise ConfigError("registering a PC needs the downloads queue (`downloads_queue_url`)")
        check_pc_name(name)
        if name == MAIN_PC:
            raise InvalidInputError("'main' is the downloads queue's own PC; pick another name")
        made = Queue(sqs, self._main_queue).create_like(
            pc_queue_name(self._main_queue, name), _COPIED
        )
        url = made.url
        with aws_call("record the PC"):
            self._db.update_item(
                TableName=self._table,
                Key=self._key(name),
                UpdateExpression="SET queue_url = :q",
                ExpressionAttributeValues={":q": {"S": url}},
            )
        return PcRecord(name=name, queue_url=url)

    def claim(
        self, name: str, *, queue_url: str, library_id: str, host: str, library: str, now: datetime
    ) -> PcRecord:
        """Record that this library collects PC `name`'s queue, or raise PcInUseError.

        Also the heartbeat: a holder calls it again every `HEARTBEAT_EVERY`, and learns from
        the record returned whether a member asked for a check (`check_requested_at`).
        """
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=self._key(name),
                UpdateExpression=(
                    "SET queue_url = :q, library_id = :lib, host = :host, library = :path, "
                    "seen_at = :now"
                ),
                ConditionExpression=(
                    "attribute_not_exists(library_id) OR library_id = :lib OR seen_at < :stale"
                ),
                ExpressionAttributeValues={
                    ":q": {"S": queue_url},
                    ":lib": {"S": library_id},
                    ":host": {"S": host},
                    ":path": {"S": library},
                    ":now": {"S": now.isoformat()},
                    ":stale": {"S": (now - STALE_AFTER).isoformat()},
                },
                ReturnValues="ALL_NEW",
            )
        except ConditionFailedError:
            holder = self.get(name)
            where = f"{holder.library} on {holder.host}" if holder else "another library"
            seen = (
                f", seen {holder.seen_at:%Y-%m-%d %H:%M} UTC" if holder and holder.seen_at else ""
            )
            raise PcInUseError(
                f"PC {name!r} is already collecting into {where}{seen}; give this library "
                f"its own PC name: `mobile-backup agent register NAME`, then run with --pc NAME"
            ) from None
        return _record(resp["Attributes"])

    def request_check(self, now: datetime) -> list[PcRecord]:
        """Ask every registered PC to check its copies now; the PCs as they are after.

        Each PC's entry gets `check_requested_at`; an entry that went away meanwhile is
        not made again.
        """
        asked = []
        for pc in self.all():
            try:
                with aws_call("ask the PCs for a check"):
                    resp = self._db.update_item(
                        TableName=self._table,
                        Key=self._key(pc.name),
                        UpdateExpression="SET check_requested_at = :now",
                        ConditionExpression="attribute_exists(sk)",
                        ExpressionAttributeValues={":now": {"S": now.isoformat()}},
                        ReturnValues="ALL_NEW",
                    )
            except ConditionFailedError:
                continue
            asked.append(_record(resp["Attributes"]))
        return asked

    def mark_audited(self, name: str, *, started_at: datetime) -> None:
        """Record a complete audit of PC `name`'s library, started at `started_at`."""
        with aws_call("record the PC's audit"):
            self._db.update_item(
                TableName=self._table,
                Key=self._key(name),
                UpdateExpression="SET audited_at = :at",
                ExpressionAttributeValues={":at": {"S": started_at.isoformat()}},
            )

    def release(self, name: str, *, library_id: str) -> None:
        """Let another library take PC `name`'s queue at once (a clean stop); best effort."""
        # Another library may hold it now: nothing of ours to release then.
        with contextlib.suppress(ConditionFailedError):
            self._db.update_item(
                TableName=self._table,
                Key=self._key(name),
                UpdateExpression="REMOVE library_id, seen_at",
                ConditionExpression="library_id = :lib",
                ExpressionAttributeValues={":lib": {"S": library_id}},
            )


def _record(item: dict[str, Any]) -> PcRecord:
    def s(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value and "S" in value else None

    seen = s("seen_at")
    audited = s("audited_at")
    asked = s("check_requested_at")
    return PcRecord(
        name=item["sk"]["S"].removeprefix(PC_PREFIX),
        queue_url=s("queue_url") or "",
        library_id=s("library_id"),
        host=s("host"),
        library=s("library"),
        seen_at=datetime.fromisoformat(seen) if seen else None,
        audited_at=datetime.fromisoformat(audited) if audited else None,
        check_requested_at=datetime.fromisoformat(asked) if asked else None,
    )
