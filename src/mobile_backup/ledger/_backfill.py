"""Putting entries written before the capture-time (`by-taken`) and change (`by-change`)
indexes into them.

A deploy that adds the index runs this once after the update (`commands/deploy.py`); an
entry already in the index is left alone, so running it again adds nothing. It reads the
whole table once (a Scan, the operator's own credentials: no component is granted one).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import ConditionFailedError, aws_call
from mobile_backup.ledger._items import record_from_item, s_, taken_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def index_by_taken(db: DynamoDBClient, table: str) -> int:
    """Give every file entry without them its index keys: by capture time (the receipt's,
    else the phone's, else when it was first sent) and by change (its latest transition's
    time). Returns how many entries were updated."""
    added = 0
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": (
            "begins_with(sk, :file) AND "
            "(attribute_not_exists(gsi2pk) OR attribute_not_exists(gsi3pk))"
        ),
        "ExpressionAttributeValues": {":file": s_("FILE#")},
    }
    while True:
        with aws_call("read the ledger"):
            resp = db.scan(**kwargs)
        for item in resp.get("Items", []):
            record = record_from_item(item)
            when = record.receipt.captured_at if record.receipt else None
            when = when or record.taken_at or record.created_at
            last = max(
                t
                for t in (record.created_at, record.uploaded_at, record.downloaded_at)
                if t is not None
            )
            with aws_call("write the ledger"), contextlib.suppress(ConditionFailedError):
                db.update_item(
                    TableName=table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression=(
                        "SET gsi2pk = :pk, gsi2sk = if_not_exists(gsi2sk, :sk), "
                        "gsi3pk = :pk, gsi3sk = if_not_exists(gsi3sk, :csk)"
                    ),
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={
                        ":pk": item["pk"],
                        ":sk": s_(taken_key(when, record.sha256)),
                        ":csk": s_(taken_key(last, record.sha256)),
                    },
                )
                added += 1
        start = resp.get("LastEvaluatedKey")
        if not start:
            return added
        kwargs["ExclusiveStartKey"] = start
