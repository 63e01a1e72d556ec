"""The DynamoDB ledger: the single source of truth for every file's journey.

One table, `pk = USER#{sub}`, `sk = FILE#{sha256}`. A sparse GSI (`awaiting-download`) holds
exactly the items that are uploaded and not yet downloaded, so the agent's reconciler finds
them without a scan; another (`by-taken`) lists each member's files by capture time. Every
transition is a conditional write, so replays are harmless. Keys, cursors and the item
codec are in `_items.py`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import ConditionFailedError, aws_call
from mobile_backup.core import (
    FileMeta,
    FileRecord,
    FileStatus,
    NotFoundError,
    Receipt,
    ServiceError,
    folder_candidates,
)
from mobile_backup.ledger._backfill import index_by_taken
from mobile_backup.ledger._counts import Tally
from mobile_backup.ledger._items import (
    AWAITING_PK_VALUE,
    FOLDER_PREFIX,
    FOLDER_SK,
    MEMBER_PREFIX,
    MEMBERS_PK,
    MISSING_PREFIX,
    RECEIPT_PREFIX,
    file_sk,
    iso,
    member_key,
    receipt_map,
    record_from_item,
    s_,
    taken_key,
    user_pk,
)
from mobile_backup.ledger._listings import Listings
from mobile_backup.ledger._pcs import MAIN_PC, PcRegistry, partition_items
from mobile_backup.ledger._table import ledger_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CHANGED_SET = "gsi3pk = :cpk, gsi3sk = :csk"


def changed(user_sub: str, sha256: str, now: datetime) -> dict[str, dict[str, Any]]:
    """The change index's attributes of an entry written at `now`."""
    return {"gsi3pk": s_(user_pk(user_sub)), "gsi3sk": s_(taken_key(now, sha256))}


def _changed_values(user_sub: str, sha256: str, now: datetime) -> dict[str, dict[str, Any]]:
    return {":cpk": s_(user_pk(user_sub)), ":csk": s_(taken_key(now, sha256))}


class UnreservedUploadError(NotFoundError):
    """An object the API never presigned: there is no ledger entry for it."""

    code = "unreserved_upload"


class Ledger(Listings):
    """Repository over the ledger table; the client is injected. Its listings (many
    entries a page at a time) are in `_listings.py`."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = ledger_table(client)
        self._table = table

    # Reads -----------------------------------------------------------------------------
    def get(self, user_sub: str, sha256: str) -> FileRecord | None:
        with aws_call("read the ledger"):
            resp = self._db.get_item(
                TableName=self._table,
                Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
                ConsistentRead=True,
            )
        item = resp.get("Item")
        return record_from_item(item) if item else None

    def index_by_taken(self) -> int:
        """Put entries written before the capture-time index into it (`_backfill.py`)."""
        return index_by_taken(self._db, self._table)

    def pc_registry(self, *, downloads_queue_url: str | None = None) -> PcRegistry:
        """The household's PCs, kept in this table."""
        return PcRegistry(self._db, self._table, downloads_queue_url=downloads_queue_url)

    # Members ---------------------------------------------------------------------------
    def member_folder(self, user_sub: str) -> str | None:
        """The folder name this member was given, if they have one yet."""
        with aws_call("read the ledger"):
            resp = self._db.get_item(
                TableName=self._table,
                Key=member_key(user_sub),
                ConsistentRead=True,
            )
        item = resp.get("Item")
        return item["folder"]["S"] if item and "folder" in item else None

    def members(self) -> dict[str, str]:
        """Every member who has uploaded: their folder name, by user id."""
        with aws_call("list the household's members"):
            return {
                item["sk"]["S"].removeprefix(MEMBER_PREFIX): item["folder"]["S"]
                for item in partition_items(self._db, self._table, MEMBERS_PK)
            }

    def claim_folder(self, user_sub: str, wanted: str) -> str:
        """Give this member a folder name (`wanted`, else `wanted-2`, ...) once and for good.

        Names are claimed case-insensitively (`Anna` and `anna` would be one folder on
        Windows and macOS), each by a conditional write, so two members asking at once
        never get the same one; a member who already has a folder keeps it.
        """
        existing = self.member_folder(user_sub)
        if existing is not None:
            return existing
        for candidate in folder_candidates(wanted):
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"pk": s_(f"{FOLDER_PREFIX}{candidate.casefold()}"), "sk": s_(FOLDER_SK)},
                    UpdateExpression="SET #owner = :sub",
                    ConditionExpression="attribute_not_exists(pk) OR #owner = :sub",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":sub": s_(user_sub)},
                )
            except ConditionFailedError:
                continue  # another member's
            # A concurrent request of the same member may be first: theirs stands.
            with contextlib.suppress(ConditionFailedError):
                self._db.update_item(
                    TableName=self._table,
                    Key=member_key(user_sub),
                    UpdateExpression="SET folder = :f",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeValues={":f": s_(candidate)},
                )
            settled = self.member_folder(user_sub)
            if settled is None:
                raise ServiceError("could not read back the member's folder name")
            return settled
        raise ServiceError(f"every folder name from {wanted!r} to {wanted!r}-99 is taken")

    # Transitions -----------------------------------------------------------------------
    def reserve(
        self,
        user_sub: str,
        file: FileMeta,
        *,
        now: datetime,
        full_checksum: tuple[str, str] | None = None,
        owner_name: str | None = None,
        absent: bool = False,
        tally: Tally | None = None,
    ) -> FileRecord:
        """Record an intended upload as `pending`, or return what the ledger already has.

        A `pending` or `failed` entry is refreshed with the new request's metadata (the
        upload is being retried); `uploaded`/`downloaded` entries are left untouched.
        `full_checksum` (multipart uploads: algorithm, base64 value) is the file's
        full-object CRC that completing the upload is checked against, whatever a later
        request says; a new multipart start records its own (a restarted upload may change
        the algorithm). `absent`: the caller
        has just read that there is no entry (the API's batch read), so it is created by a
        conditional PutItem that returns nothing, a quarter of the cost of the update below
        (which still decides if an entry appeared meanwhile).
        """
        fields: dict[str, dict[str, Any]] = {
            "filename": s_(file.filename),
            "size": {"N": str(file.size)},
            "content_type": s_(file.content_type),
            "status": s_(FileStatus.PENDING),
        }
        optional = {
            "taken_at": iso(file.taken_at),
            "taken_src": file.taken_at_source if file.taken_at else None,
            "device": file.device,
            "owner_name": owner_name,
        }
        fields.update({attr: s_(value) for attr, value in optional.items() if value})
        # In the capture-time index from the start: by the phone's capture time, else now
        # (a receipt moves it to the time the PC files it by).
        fields["gsi2pk"] = s_(user_pk(user_sub))
        fields["gsi2sk"] = s_(taken_key(file.taken_at or now, file.sha256))
        fields.update(changed(user_sub, file.sha256, now))
        if full_checksum:
            fields["crc_algo"], fields["full_crc"] = s_(full_checksum[0]), s_(full_checksum[1])
        key = {"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(file.sha256))}
        try:
            if absent:
                item = {**key, **fields, "created_at": s_(now.isoformat())}
                try:
                    self._db.put_item(
                        TableName=self._table,
                        Item=item,
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    self._count(user_sub, None, FileStatus.PENDING, tally)
                    return record_from_item(item)
                except ConditionFailedError:
                    pass  # written meanwhile: the update decides
            names = {"#st": "status"} | {f"#f{i}": attr for i, attr in enumerate(fields)}
            values = {f":f{i}": value for i, value in enumerate(fields.values())}
            values[":now"] = s_(now.isoformat())
            sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
            sets.append("created_at = if_not_exists(created_at, :now)")
            removes = ["failed_reason", *(attr for attr, value in optional.items() if not value)]
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                "ExpressionAttributeNames": names,
                "ReturnValues": "ALL_NEW",
            }
            # New or pending (a retry), else failed: two conditions, so that the counts
            # know which status the entry left.
            left: str | None
            try:
                resp = self._db.update_item(
                    ConditionExpression="attribute_not_exists(pk) OR #st = :pending",
                    ExpressionAttributeValues={**values, ":pending": s_(FileStatus.PENDING)},
                    **update,
                )
                left = None if resp["Attributes"]["created_at"]["S"] == now.isoformat() else ""
            except ConditionFailedError:
                resp = self._db.update_item(
                    ConditionExpression="#st = :failed",
                    ExpressionAttributeValues={**values, ":failed": s_(FileStatus.FAILED)},
                    **update,
                )
                left = FileStatus.FAILED
            if left != "":  # "": it was pending, and still is
                self._count(user_sub, left, FileStatus.PENDING, tally)
        except ConditionFailedError:
            existing = self.get(user_sub, file.sha256)
            if existing is None:  # deleted between the two calls: try once more
                return self.reserve(
                    user_sub, file, now=now, full_checksum=full_checksum, owner_name=owner_name,
                    tally=tally,
                )  # fmt: skip
            return existing
        return record_from_item(resp["Attributes"])

    def mark_uploaded(self, user_sub: str, sha256: str, *, size: int, now: datetime) -> FileRecord:
        """Move to `uploaded` (idempotent); returns the record as it now stands.

        Raises UnreservedUploadError when there is no entry: the API writes one before it
        presigns anything, so the object was put into the bucket some other way (by anyone
        with write access to it, under any member's key) and is not filed.
        """
        values: dict[str, Any] = {
            ":uploaded": s_(FileStatus.UPLOADED),
            ":now": s_(now.isoformat()),
            ":size": {"N": str(size)},
            ":gpk": s_(AWAITING_PK_VALUE),
            ":gsk": s_(f"{now.isoformat()}#{user_sub}#{sha256}"),
            **_changed_values(user_sub, sha256, now),
        }
        # From pending (the usual), else from failed: one condition each, so that the
        # counts know which status the entry left. A refused condition sends the entry as it
        # stands, so a repeated event (already uploaded) costs one call, not three.
        left = FileStatus.PENDING
        while True:
            try:
                resp = self._db.update_item(
                    TableName=self._table,
                    Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
                    UpdateExpression=(
                        "SET #st = :uploaded, uploaded_at = :now, #size = :size, gsi1pk = :gpk, "
                        f"gsi1sk = :gsk, {CHANGED_SET} REMOVE failed_reason, announced_at"
                    ),
                    ConditionExpression="attribute_exists(pk) AND #st = :left",
                    ExpressionAttributeNames={"#st": "status", "#size": "size"},
                    ExpressionAttributeValues={**values, ":left": s_(left)},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ConditionFailedError as refused:
                # No item sent: none there, or a service that does not send it; read it.
                existing = (
                    record_from_item(refused.item) if refused.item else self.get(user_sub, sha256)
                )
                if existing is None:
                    raise UnreservedUploadError(
                        f"no upload of {sha256[:12]}… was ever presigned for {user_sub}"
                    ) from None
                if existing.status == FileStatus.FAILED and left == FileStatus.PENDING:
                    left = FileStatus.FAILED
                    continue
                return existing
            self._count(user_sub, left, FileStatus.UPLOADED)
            return record_from_item(resp["Attributes"])

    def mark_announced(self, user_sub: str, sha256: str, *, now: datetime) -> bool:
        """Note that a download message was sent; False if one already had been."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
                UpdateExpression="SET announced_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(announced_at)",
                ExpressionAttributeValues={":now": s_(now.isoformat())},
            )
        except ConditionFailedError:
            return False
        return True

    def mark_downloaded(
        self, user_sub: str, sha256: str, receipt: Receipt, *, tally: Tally | None = None
    ) -> None:
        """Write a PC's receipt (its own, and as the latest); leaves the awaiting index.
        With `tally`, the count of the transition is gathered there (written later by
        `write_tally`) instead of being written now."""
        pc = receipt.pc or MAIN_PC
        pc_receipt = f"{RECEIPT_PREFIX}{pc}"
        values: dict[str, Any] = {
            ":downloaded": s_(FileStatus.DOWNLOADED),
            ":at": s_(receipt.at.isoformat()),
            ":receipt": {"M": receipt_map(receipt)},
            **_changed_values(user_sub, sha256, receipt.at),
        }
        moved = ""
        if receipt.captured_at is not None:  # the gallery's month is the PC's folder
            moved = ", gsi2pk = :gpk, gsi2sk = :gsk"
            values[":gpk"] = s_(user_pk(user_sub))
            values[":gsk"] = s_(taken_key(receipt.captured_at, sha256))
        resp = self._db.update_item(
            TableName=self._table,
            Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
            UpdateExpression=(
                "SET #st = :downloaded, downloaded_at = :at, receipt = :receipt, "
                f"#pcr = :receipt{moved}, {CHANGED_SET} "
                "REMOVE gsi1pk, gsi1sk, failed_reason, #miss"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={
                "#st": "status",
                "#pcr": pc_receipt,
                "#miss": f"{MISSING_PREFIX}{pc}",
            },
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_OLD",
        )
        # Every entry has a status: one not returned did not change (moto returns only
        # the attributes whose value changed).
        left = resp.get("Attributes", {}).get("status", {}).get("S", FileStatus.DOWNLOADED)
        self._count(user_sub, left, FileStatus.DOWNLOADED, tally)

    def flag_missing(self, user_sub: str, sha256: str, *, pc: str, now: datetime) -> None:
        """PC `pc`'s audit found its copy missing or altered: its receipt no longer vouches
        for the file (free-up keeps the phone's copy) until it writes a new one."""
        gone = ConditionFailedError  # not in the ledger at all
        with aws_call("write the ledger"), contextlib.suppress(gone):
            self._db.update_item(
                TableName=self._table,
                Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
                UpdateExpression=f"SET #miss = :now, {CHANGED_SET}",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#miss": f"{MISSING_PREFIX}{pc}"},
                ExpressionAttributeValues={
                    ":now": s_(now.isoformat()),
                    **_changed_values(user_sub, sha256, now),
                },
            )

    def mark_failed(self, user_sub: str, sha256: str, *, reason: str, now: datetime) -> bool:
        """Record why a file cannot be delivered; never downgrades a `downloaded` entry."""
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key={"pk": s_(user_pk(user_sub)), "sk": s_(file_sk(sha256))},
                UpdateExpression=(
                    f"SET #st = :failed, failed_reason = :reason, failed_at = :now, {CHANGED_SET} "
                    "REMOVE gsi1pk, gsi1sk"
                ),
                ConditionExpression="attribute_exists(pk) AND #st <> :downloaded",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={
                    ":failed": s_(FileStatus.FAILED),
                    ":downloaded": s_(FileStatus.DOWNLOADED),
                    ":reason": s_(reason[:1000]),
                    ":now": s_(now.isoformat()),
                    **_changed_values(user_sub, sha256, now),
                },
                ReturnValues="UPDATED_OLD",
            )
        except ConditionFailedError:
            return False
        left = resp.get("Attributes", {}).get("status", {}).get("S", FileStatus.FAILED)
        self._count(user_sub, left, FileStatus.FAILED)  # (as for a receipt above)
        return True
