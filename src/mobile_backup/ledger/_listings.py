"""The ledger's listings: many entries a page at a time, by content id, capture time or
change, the awaiting index, and a member's counts. `Ledger` inherits them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import aws_call
from mobile_backup.core import FileRecord, InvalidInputError, ServiceError
from mobile_backup.ledger._counts import Counts
from mobile_backup.ledger._items import (
    AWAITING_PK_VALUE,
    CHANGED_KEYS,
    FILE_PREFIX,
    INDEX_KEYS,
    MAX_PAGE,
    MISSING_PREFIX,
    RECEIPT_PREFIX,
    TABLE_KEYS,
    TAKEN_KEYS,
    decode_cursor,
    encode_cursor,
    file_sk,
    record_from_item,
    s_,
    taken_key,
    user_pk,
)
from mobile_backup.ledger._pcs import MAIN_PC

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AWAITING_INDEX = "awaiting-download"
TAKEN_INDEX = "by-taken"
"""Each member's files by capture time (`gsi2pk = USER#{sub}`, `gsi2sk = {UTC time}#{sha}`):
the capture time the PC filed the file by once a receipt has it, else the phone's, else the
time it was first sent. Newest first, a page at a time, from any month."""
CHANGED_INDEX = "by-change"
"""Each member's files by when their entry last changed (`gsi3pk = USER#{sub}`, `gsi3sk =
{UTC time}#{sha}`, the writer's clock): what a PC's incremental reconcile reads."""


STATUS_PAGE = 5000
"""At most this many entries a page of `statuses_page` (DynamoDB's megabyte a query ends
a page sooner)."""
# DynamoDB's limit of keys per BatchGetItem call.
BATCH_GET_KEYS = 100
# Rounds of re-asking for UnprocessedKeys (throttling) before giving up.
BATCH_GET_ROUNDS = 5


def _verdict_projection(pcs: Iterable[str]) -> dict[str, Any]:
    """BatchGetItem's projection of what `core.may_free` weighs for PCs `pcs`."""
    attributes = ["pk", "sk", "status", "filename", "size", "content_type", "created_at"]
    for pc in sorted({*pcs, MAIN_PC}):  # `main` receipts before its agent registered it
        attributes += [f"{RECEIPT_PREFIX}{pc}", f"{MISSING_PREFIX}{pc}"]
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    # `receipt.pc` only tells an entry received before PCs had names (no `receipt@` map).
    projection = ", ".join([*names, "#r.#p"])
    return {
        "ProjectionExpression": projection,
        "ExpressionAttributeNames": {**names, "#r": "receipt", "#p": "pc"},
    }


class Listings(Counts):
    """Reads of many entries; `Ledger` provides the client and the table."""

    _db: DynamoDBClient
    _table: str

    def get_many(
        self, user_sub: str, sha256s: Iterable[str], *, receipts_of: Iterable[str] | None = None
    ) -> dict[str, FileRecord]:
        """The user's entries for these digests, by digest (absent ones are left out).

        `receipts_of` (the household's PCs) reads only what `core.may_free` weighs: status,
        those PCs' receipts and missing flags, and the fields every record has (free-up's
        lookups: half of an entry's attributes, whose decoding is most of such a request's
        cost); `receipt` (the latest) is then left out of the records.
        """
        found: dict[str, FileRecord] = {}
        request: dict[str, Any] = {}
        if receipts_of is not None:
            request |= _verdict_projection(receipts_of)
        legacy: list[str] = []
        for item in self._batch_get(user_sub, sha256s, request):
            if receipts_of is not None and "receipt" in item:
                if not any(name.startswith(RECEIPT_PREFIX) for name in item):
                    # Received before PCs had names: its one receipt is `receipt`.
                    legacy.append(item["sk"]["S"].removeprefix(FILE_PREFIX))
                    continue
                del item["receipt"]  # only its `pc` was read
            record = record_from_item(item)
            found[record.sha256] = record
        if legacy:
            found |= self.get_many(user_sub, legacy)
        return found

    def statuses(self, user_sub: str, sha256s: Iterable[str]) -> dict[str, str]:
        """The status of each of the user's entries for these digests (absent ones are
        left out): `get_many` reading one attribute an entry, for a dry run's lookups."""
        request = {"ProjectionExpression": "sk, #st", "ExpressionAttributeNames": {"#st": "status"}}
        return {
            item["sk"]["S"].removeprefix(FILE_PREFIX): item["status"]["S"]
            for item in self._batch_get(user_sub, sha256s, request)
        }

    def _batch_get(
        self, user_sub: str, sha256s: Iterable[str], request: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The user's items for these digests (`request`: a projection), one strongly
        consistent BatchGetItem per 100 distinct digests instead of one request per file;
        keys DynamoDB leaves unprocessed (throttling) are asked again."""
        wanted = list(dict.fromkeys(sha256s))
        pk = s_(user_pk(user_sub))
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            keys: list[dict[str, Any]] = [
                {"pk": pk, "sk": s_(file_sk(sha))} for sha in wanted[start : start + BATCH_GET_KEYS]
            ]
            for round_ in range(BATCH_GET_ROUNDS):
                with aws_call("read the ledger"):
                    asked: dict[str, Any] = {
                        self._table: {"Keys": keys, "ConsistentRead": True, **request}
                    }
                    resp = self._db.batch_get_item(RequestItems=asked)
                yield from resp.get("Responses", {}).get(self._table, [])
                unprocessed = resp.get("UnprocessedKeys", {}).get(self._table)
                keys = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not keys:
                    break
                time.sleep(0.02 * 2**round_)  # DynamoDB asks callers to back off
            else:
                raise ServiceError("could not read the ledger: the table kept throttling reads")

    def _page(
        self,
        kwargs: dict[str, Any],
        cursor: str | None,
        *,
        expect_pk: str | None,
        keys: frozenset[str],
        doing: str,
    ) -> tuple[list[FileRecord], str | None]:
        """One page of a query, from a cursor this API issued (checked), and the next one."""
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor, expect_pk=expect_pk, keys=keys)
        with aws_call(doing):
            resp = self._db.query(**kwargs)
        records = [record_from_item(i) for i in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        return records, (encode_cursor(last) if last else None)

    def list_files(
        self, user_sub: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """One page of a user's files and the cursor of the next page (None at the end)."""
        pk = user_pk(user_sub)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s_(pk)},
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        return self._page(kwargs, cursor, expect_pk=pk, keys=TABLE_KEYS, doing="list the ledger")

    def statuses_page(
        self, user_sub: str, *, prefix: str = "", cursor: str | None = None
    ) -> tuple[dict[str, str], str | None]:
        """One page of a user's entries whose content id starts with `prefix` (lowercase
        hex), as content -> status, in content-id order (as many as one query reads: about
        1,100 entries a megabyte, at most `STATUS_PAGE`), and the next page's cursor (None
        at the end). One attribute an entry, strongly consistent: a first dry run of a folder
        of years reads its answers from here, for a quarter of the read units that asking
        about each content costs (`statuses`), one prefix beside another."""
        pk = user_pk(user_sub)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
            "ProjectionExpression": "sk, #st",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":pk": s_(pk), ":sk": s_(file_sk(prefix))},
            "ConsistentRead": True,
            "Limit": STATUS_PAGE,
        }
        if cursor:
            start = decode_cursor(cursor, expect_pk=pk, keys=TABLE_KEYS)
            if not start["sk"]["S"].startswith(file_sk(prefix)):
                # Another range's cursor: DynamoDB would refuse it (a ValidationException).
                raise InvalidInputError(
                    "the cursor is not one this API issued", code="invalid_cursor"
                )
            kwargs["ExclusiveStartKey"] = start
        with aws_call("list the ledger"):
            resp = self._db.query(**kwargs)
        statuses = {
            item["sk"]["S"].removeprefix(FILE_PREFIX): item["status"]["S"]
            for item in resp.get("Items", [])
            if item["sk"]["S"].startswith(FILE_PREFIX) and "status" in item
        }
        last = resp.get("LastEvaluatedKey")
        return statuses, (encode_cursor(last) if last else None)

    def awaiting_download(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """Uploaded-but-not-downloaded items, oldest first, through the sparse GSI."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": AWAITING_INDEX,
            "KeyConditionExpression": "gsi1pk = :v",
            "ExpressionAttributeValues": {":v": s_(AWAITING_PK_VALUE)},
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        return self._page(
            kwargs, cursor, expect_pk=None, keys=INDEX_KEYS, doing="query the ledger index"
        )

    def list_by_taken(
        self,
        user_sub: str,
        *,
        limit: int = 100,
        cursor: str | None = None,
        before: datetime | None = None,
    ) -> tuple[list[FileRecord], str | None]:
        """One page of a user's files, newest capture time first (the capture-time index),
        starting with the files taken before `before` (a month's end, say), and the cursor
        of the next page (None at the end)."""
        pk = user_pk(user_sub)
        condition = "gsi2pk = :pk"
        values: dict[str, Any] = {":pk": s_(pk)}
        if before is not None:
            condition += " AND gsi2sk < :before"
            values[":before"] = s_(taken_key(before, ""))
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": TAKEN_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        return self._page(
            kwargs, cursor, expect_pk=pk, keys=TAKEN_KEYS, doing="list the ledger by capture time"
        )

    def list_changed(
        self, user_sub: str, *, since: datetime, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """One page of a user's entries written after `since` (by the writer's clock), oldest
        change first, and the cursor of the next page (None at the end)."""
        pk = user_pk(user_sub)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CHANGED_INDEX,
            "KeyConditionExpression": "gsi3pk = :pk AND gsi3sk > :since",
            "ExpressionAttributeValues": {":pk": s_(pk), ":since": s_(taken_key(since, ""))},
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        return self._page(
            kwargs, cursor, expect_pk=pk, keys=CHANGED_KEYS, doing="list the ledger's changes"
        )

    def summary(
        self, user_sub: str, *, recent: int, now: datetime
    ) -> tuple[dict[str, int], list[FileRecord]]:
        """How many of a user's files are in each status (the kept counts: `_counts.py`),
        and the `recent` most recently changed (the change index, newest first)."""
        counts = self.counts(user_sub, now=now)
        if not recent:
            return counts, []
        pk = user_pk(user_sub)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CHANGED_INDEX,
            "KeyConditionExpression": "gsi3pk = :pk",
            "ExpressionAttributeValues": {":pk": s_(pk)},
            "ScanIndexForward": False,
            "Limit": max(1, min(recent, MAX_PAGE)),
        }
        return counts, self._page(
            kwargs, None, expect_pk=pk, keys=CHANGED_KEYS, doing="list the ledger's changes"
        )[0]
