"""Putting entries written before the capture-time index (`by-taken`) into it.

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
    """Give every file entry without them its capture-time index keys: the receipt's capture
    time, else the phone's, else when it was first sent. Returns how many were added."""
    added = 0
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(sk, :file) AND attribute_not_exists(gsi2pk)",
        "ExpressionAttributeValues": {":file": s_("FILE#")},
    }
    while True:
        with aws_call("read the ledger"):
            resp = db.scan(**kwargs)
        for item in resp.get("Items", []):
            record = record_from_item(item)
            when = record.receipt.captured_at if record.receipt else None
            when = when or record.taken_at or record.created_at
            with aws_call("write the ledger"), contextlib.suppress(ConditionFailedError):
                db.update_item(
                    TableName=table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET gsi2pk = :pk, gsi2sk = if_not_exists(gsi2sk, :sk)",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={
                        ":pk": item["pk"],
                        ":sk": s_(taken_key(when, record.sha256)),
                    },
                )
                added += 1
        last = resp.get("LastEvaluatedKey")
        if not last:
            return added
        kwargs["ExclusiveStartKey"] = last
