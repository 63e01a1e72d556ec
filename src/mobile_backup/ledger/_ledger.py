"""The DynamoDB ledger: the single source of truth for every file's journey.

One table, `pk = USER#{sub}`, `sk = FILE#{sha256}`. A sparse GSI (`awaiting-download`) holds
exactly the items that are uploaded and not yet downloaded, so the agent's reconciler finds
them without a scan. Every transition is a conditional write, so replays are harmless.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import heapq
import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import ConditionFailedError, aws_call
from mobile_backup.core import (
    FileMeta,
    FileRecord,
    FileStatus,
    InvalidInputError,
    NotFoundError,
    Receipt,
    ServiceError,
    folder_candidates,
)
from mobile_backup.ledger._pcs import MAIN_PC, PcRegistry, partition_items
from mobile_backup.ledger._table import ledger_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AWAITING_INDEX = "awaiting-download"
RECEIPT_PREFIX = "receipt@"
MISSING_PREFIX = "missing@"
MEMBERS_PK = "MEMBERS"
MEMBER_PREFIX = "MEMBER#"
FOLDER_PREFIX = "FOLDER#"
FOLDER_SK = "FOLDER"
AWAITING_PK_VALUE = "UPLOADED"
MAX_PAGE = 1000
# DynamoDB's limit of keys per BatchGetItem call.
BATCH_GET_KEYS = 100
# Rounds of re-asking for UnprocessedKeys (throttling) before giving up.
BATCH_GET_ROUNDS = 5


def user_pk(user_sub: str) -> str:
    return f"USER#{user_sub}"


def file_sk(sha256: str) -> str:
    return f"FILE#{sha256}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _encode_cursor(key: dict[str, Any]) -> str:
    flat = {k: v["S"] for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(flat, sort_keys=True).encode()).decode()


TABLE_KEYS = frozenset({"pk", "sk"})
INDEX_KEYS = TABLE_KEYS | {"gsi1pk", "gsi1sk"}


def _decode_cursor(cursor: str, *, expect_pk: str | None, keys: frozenset[str]) -> dict[str, Any]:
    """The start key a cursor carries; exactly `keys`, all strings, or `invalid_cursor`.

    DynamoDB refuses a start key without the full key schema (a ValidationException, which
    would otherwise surface as a 503), so a cursor is checked before it is used.
    """
    try:
        flat = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError(
            "the cursor is not one this API issued", code="invalid_cursor"
        ) from exc
    if (
        not isinstance(flat, dict)
        or set(flat) != keys
        or not all(isinstance(v, str) for v in flat.values())
    ):
        raise InvalidInputError("the cursor is not one this API issued", code="invalid_cursor")
    if expect_pk is not None and flat.get("pk") != expect_pk:
        # A cursor from another user's listing must not open that user's partition.
        raise InvalidInputError("the cursor is not one this API issued", code="invalid_cursor")
    return {k: _s(v) for k, v in flat.items()}


def _member_key(user_sub: str) -> dict[str, Any]:
    return {"pk": _s(MEMBERS_PK), "sk": _s(f"{MEMBER_PREFIX}{user_sub}")}


def _receipt_from(r: dict[str, Any]) -> Receipt:
    return Receipt.model_validate({k: v["S"] for k, v in r.items() if "S" in v})


def _record_from_item(item: dict[str, Any]) -> FileRecord:
    def s(name: str) -> str | None:
        v = item.get(name)
        return v["S"] if v and "S" in v else None

    receipt = _receipt_from(item["receipt"]["M"]) if "receipt" in item else None
    receipts = {
        name.removeprefix(RECEIPT_PREFIX): _receipt_from(value["M"])
        for name, value in item.items()
        if name.startswith(RECEIPT_PREFIX) and "M" in value
    }
    if receipt is not None and not receipts:  # written before PCs had names
        receipts[receipt.pc or MAIN_PC] = receipt
    missing_on = {
        name.removeprefix(MISSING_PREFIX): value["S"]
        for name, value in item.items()
        if name.startswith(MISSING_PREFIX) and "S" in value
    }
    return FileRecord.model_validate(
        {
            "user_sub": item["pk"]["S"].removeprefix("USER#"),
            "sha256": item["sk"]["S"].removeprefix("FILE#"),
            "filename": s("filename"),
            "size": int(item["size"]["N"]),
            "content_type": s("content_type"),
            "taken_at": s("taken_at"),
            "taken_at_source": s("taken_src"),
            "device": s("device"),
            "owner_name": s("owner_name"),
            "status": s("status"),
            "created_at": s("created_at"),
            "uploaded_at": s("uploaded_at"),
            "announced_at": s("announced_at"),
            "downloaded_at": s("downloaded_at"),
            "failed_reason": s("failed_reason"),
            "receipt": receipt,
            "receipts": receipts,
            "missing_on": missing_on,
            # Entries of uploads started by older clients hold a CRC64NVME under its name.
            "full_checksum": s("full_crc") or s("crc64nvme"),
            "checksum_algorithm": s("crc_algo") or ("CRC64NVME" if s("crc64nvme") else None),
        }
    )


class UnreservedUploadError(NotFoundError):
    """An object the API never presigned: there is no ledger entry for it."""

    code = "unreserved_upload"


class Ledger:
    """Repository over the ledger table; the client is injected."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = ledger_table(client)
        self._table = table

    # Reads -----------------------------------------------------------------------------
    def get(self, user_sub: str, sha256: str) -> FileRecord | None:
        with aws_call("read the ledger"):
            resp = self._db.get_item(
                TableName=self._table,
                Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
                ConsistentRead=True,
            )
        item = resp.get("Item")
        return _record_from_item(item) if item else None

    def get_many(self, user_sub: str, sha256s: Iterable[str]) -> dict[str, FileRecord]:
        """The user's entries for these digests, by digest (absent ones are left out).

        One strongly consistent BatchGetItem per 100 distinct digests, instead of one
        request per file; keys DynamoDB leaves unprocessed (throttling) are asked again.
        """
        wanted = list(dict.fromkeys(sha256s))
        pk = _s(user_pk(user_sub))
        found: dict[str, FileRecord] = {}
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            keys: list[dict[str, Any]] = [
                {"pk": pk, "sk": _s(file_sk(sha))} for sha in wanted[start : start + BATCH_GET_KEYS]
            ]
            for round_ in range(BATCH_GET_ROUNDS):
                with aws_call("read the ledger"):
                    resp = self._db.batch_get_item(
                        RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                    )
                for item in resp.get("Responses", {}).get(self._table, []):
                    record = _record_from_item(item)
                    found[record.sha256] = record
                unprocessed = resp.get("UnprocessedKeys", {}).get(self._table)
                keys = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not keys:
                    break
                time.sleep(0.02 * 2**round_)  # DynamoDB asks callers to back off
            else:
                raise ServiceError("could not read the ledger: the table kept throttling reads")
        return found

    def list_files(
        self, user_sub: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """One page of a user's files and the cursor of the next page (None at the end)."""
        pk = user_pk(user_sub)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, expect_pk=pk, keys=TABLE_KEYS)
        with aws_call("list the ledger"):
            resp = self._db.query(**kwargs)
        records = [_record_from_item(i) for i in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        return records, (_encode_cursor(last) if last else None)

    def summary(self, user_sub: str, *, recent: int) -> tuple[dict[str, int], list[FileRecord]]:
        """How many of a user's files are in each status, and the `recent` newest ones.

        One pass over the user's entries reading three small attributes each (status,
        creation time, key), not the whole entries a listing returns: at 50,000 files that
        is about 2 MB over the wire instead of 25 MB, then one batch read of the newest.
        """
        pk = user_pk(user_sub)
        counts: dict[str, int] = {}
        newest: list[tuple[str, str]] = []  # a min-heap of (created_at, sha256), `recent` long
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ProjectionExpression": "sk, #st, created_at",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":pk": _s(pk)},
        }
        while True:
            with aws_call("count the ledger"):
                resp = self._db.query(**kwargs)
            for item in resp.get("Items", []):
                if not item["sk"]["S"].startswith("FILE#"):
                    continue
                status = item.get("status", {}).get("S", "unknown")
                counts[status] = counts.get(status, 0) + 1
                entry = (item.get("created_at", {}).get("S", ""), item["sk"]["S"])
                if len(newest) < recent:
                    heapq.heappush(newest, entry)
                elif recent and entry > newest[0]:
                    heapq.heapreplace(newest, entry)
            last = resp.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        order = [sk.removeprefix("FILE#") for _, sk in sorted(newest, reverse=True)]
        found = self.get_many(user_sub, order)
        return counts, [found[sha] for sha in order if sha in found]

    def awaiting_download(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """Uploaded-but-not-downloaded items, oldest first, through the sparse GSI."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": AWAITING_INDEX,
            "KeyConditionExpression": "gsi1pk = :v",
            "ExpressionAttributeValues": {":v": _s(AWAITING_PK_VALUE)},
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, expect_pk=None, keys=INDEX_KEYS)
        with aws_call("query the ledger index"):
            resp = self._db.query(**kwargs)
        records = [_record_from_item(i) for i in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        return records, (_encode_cursor(last) if last else None)

    def pc_registry(self, *, downloads_queue_url: str | None = None) -> PcRegistry:
        """The household's PCs, kept in this table."""
        return PcRegistry(self._db, self._table, downloads_queue_url=downloads_queue_url)

    # Members ---------------------------------------------------------------------------
    def member_folder(self, user_sub: str) -> str | None:
        """The folder name this member was given, if they have one yet."""
        with aws_call("read the ledger"):
            resp = self._db.get_item(
                TableName=self._table,
                Key=_member_key(user_sub),
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
                    Key={"pk": _s(f"{FOLDER_PREFIX}{candidate.casefold()}"), "sk": _s(FOLDER_SK)},
                    UpdateExpression="SET #owner = :sub",
                    ConditionExpression="attribute_not_exists(pk) OR #owner = :sub",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":sub": _s(user_sub)},
                )
            except ConditionFailedError:
                continue  # another member's
            # A concurrent request of the same member may be first: theirs stands.
            with contextlib.suppress(ConditionFailedError):
                self._db.update_item(
                    TableName=self._table,
                    Key=_member_key(user_sub),
                    UpdateExpression="SET folder = :f",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeValues={":f": _s(candidate)},
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
            "filename": _s(file.filename),
            "size": {"N": str(file.size)},
            "content_type": _s(file.content_type),
            "status": _s(FileStatus.PENDING),
        }
        optional = {
            "taken_at": _iso(file.taken_at),
            "taken_src": file.taken_at_source if file.taken_at else None,
            "device": file.device,
            "owner_name": owner_name,
        }
        fields.update({attr: _s(value) for attr, value in optional.items() if value})
        if full_checksum:
            fields["crc_algo"], fields["full_crc"] = _s(full_checksum[0]), _s(full_checksum[1])
        key = {"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(file.sha256))}
        try:
            if absent:
                item = {**key, **fields, "created_at": _s(now.isoformat())}
                try:
                    self._db.put_item(
                        TableName=self._table,
                        Item=item,
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    return _record_from_item(item)
                except ConditionFailedError:
                    pass  # written meanwhile: the update decides
            names = {"#st": "status"} | {f"#f{i}": attr for i, attr in enumerate(fields)}
            values = {f":f{i}": value for i, value in enumerate(fields.values())}
            values |= {
                ":pending": _s(FileStatus.PENDING),
                ":failed": _s(FileStatus.FAILED),
                ":now": _s(now.isoformat()),
            }
            sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
            sets.append("created_at = if_not_exists(created_at, :now)")
            removes = ["failed_reason", *(attr for attr, value in optional.items() if not value)]
            resp = self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="attribute_not_exists(pk) OR #st IN (:pending, :failed)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ConditionFailedError:
            existing = self.get(user_sub, file.sha256)
            if existing is None:  # deleted between the two calls: try once more
                return self.reserve(
                    user_sub, file, now=now, full_checksum=full_checksum, owner_name=owner_name
                )
            return existing
        return _record_from_item(resp["Attributes"])

    def mark_uploaded(self, user_sub: str, sha256: str, *, size: int, now: datetime) -> FileRecord:
        """Move to `uploaded` (idempotent); returns the record as it now stands.

        Raises UnreservedUploadError when there is no entry: the API writes one before it
        presigns anything, so the object was put into the bucket some other way (by anyone
        with write access to it, under any member's key) and is not filed.
        """
        values: dict[str, Any] = {
            ":uploaded": _s(FileStatus.UPLOADED),
            ":pending": _s(FileStatus.PENDING),
            ":failed": _s(FileStatus.FAILED),
            ":now": _s(now.isoformat()),
            ":size": {"N": str(size)},
            ":gpk": _s(AWAITING_PK_VALUE),
            ":gsk": _s(f"{now.isoformat()}#{user_sub}#{sha256}"),
        }
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
                UpdateExpression=(
                    "SET #st = :uploaded, uploaded_at = :now, #size = :size, gsi1pk = :gpk, "
                    "gsi1sk = :gsk REMOVE failed_reason, announced_at"
                ),
                ConditionExpression="attribute_exists(pk) AND #st IN (:pending, :failed)",
                ExpressionAttributeNames={"#st": "status", "#size": "size"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ConditionFailedError:
            existing = self.get(user_sub, sha256)
            if existing is None:
                raise UnreservedUploadError(
                    f"no upload of {sha256[:12]}… was ever presigned for {user_sub}"
                ) from None
            return existing
        return _record_from_item(resp["Attributes"])

    def mark_announced(self, user_sub: str, sha256: str, *, now: datetime) -> bool:
        """Note that a download message was sent; False if one already had been."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
                UpdateExpression="SET announced_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(announced_at)",
                ExpressionAttributeValues={":now": _s(now.isoformat())},
            )
        except ConditionFailedError:
            return False
        return True

    def mark_downloaded(self, user_sub: str, sha256: str, receipt: Receipt) -> None:
        """Write a PC's receipt (its own, and as the latest); leaves the awaiting index."""
        pc = receipt.pc or MAIN_PC
        pc_receipt = f"{RECEIPT_PREFIX}{pc}"
        self._db.update_item(
            TableName=self._table,
            Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
            UpdateExpression=(
                "SET #st = :downloaded, downloaded_at = :at, receipt = :receipt, "
                "#pcr = :receipt REMOVE gsi1pk, gsi1sk, failed_reason, #miss"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={
                "#st": "status",
                "#pcr": pc_receipt,
                "#miss": f"{MISSING_PREFIX}{pc}",
            },
            ExpressionAttributeValues={
                ":downloaded": _s(FileStatus.DOWNLOADED),
                ":at": _s(receipt.at.isoformat()),
                ":receipt": {"M": _receipt_map(receipt)},
            },
        )

    def flag_missing(self, user_sub: str, sha256: str, *, pc: str, now: datetime) -> None:
        """PC `pc`'s audit found its copy missing or altered: its receipt no longer vouches
        for the file (free-up keeps the phone's copy) until it writes a new one."""
        gone = ConditionFailedError  # not in the ledger at all
        with aws_call("write the ledger"), contextlib.suppress(gone):
            self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
                UpdateExpression="SET #miss = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#miss": f"{MISSING_PREFIX}{pc}"},
                ExpressionAttributeValues={":now": _s(now.isoformat())},
            )

    def mark_failed(self, user_sub: str, sha256: str, *, reason: str, now: datetime) -> bool:
        """Record why a file cannot be delivered; never downgrades a `downloaded` entry."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(user_pk(user_sub)), "sk": _s(file_sk(sha256))},
                UpdateExpression=(
                    "SET #st = :failed, failed_reason = :reason, failed_at = :now "
                    "REMOVE gsi1pk, gsi1sk"
                ),
                ConditionExpression="attribute_exists(pk) AND #st <> :downloaded",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={
                    ":failed": _s(FileStatus.FAILED),
                    ":downloaded": _s(FileStatus.DOWNLOADED),
                    ":reason": _s(reason[:1000]),
                    ":now": _s(now.isoformat()),
                },
            )
        except ConditionFailedError:
            return False
        return True


def _receipt_map(receipt: Receipt) -> dict[str, Any]:
    item = {
        "host": _s(receipt.host),
        "path": _s(receipt.path),
        "sha256": _s(receipt.sha256),
        "at": _s(receipt.at.isoformat()),
    }
    if receipt.captured_at is not None:
        item["captured_at"] = _s(receipt.captured_at.isoformat())
    if receipt.capture_source:
        item["capture_source"] = _s(receipt.capture_source)
    if receipt.pc:
        item["pc"] = _s(receipt.pc)
    return item
