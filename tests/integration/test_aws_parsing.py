"""Our DynamoDB clients read items as JSON (`aws/_parsing.py`) and must answer exactly as
botocore's own parsing does: every kind of attribute value, each operation the ledger makes
and a few it does not, on moto and on dynalite, errors included."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from conftest import LedgerTable
from mobile_backup.aws import dynamodb_client
from mobile_backup.core import EMULATOR_KEY, Settings

# Every AttributeValue kind, nested too (a map in a list in a map), blobs among them.
ITEM: dict[str, Any] = {
    "s": {"S": "text ü"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01", b"\x02\x03"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"M": {"B": {"B": b"deep"}}}, {"N": "3"}]}}},
    "l": {"L": [{"BOOL": True}, {"NULL": True}, {"BS": [b"\x04"]}]},
    "B": {"S": "an attribute named B"},
}


def clients(table: LedgerTable) -> tuple[Any, Any]:
    """botocore's own client (the fixture's) and ours, on the same table."""
    endpoint = table.client.meta.endpoint_url
    ours = dynamodb_client(
        Settings(
            local=True,
            aws_endpoint_url=endpoint,
            dynamodb_endpoint_url=endpoint,
            region="us-east-1",
            aws_access_key_id=EMULATOR_KEY,
            aws_secret_access_key=EMULATOR_KEY,
        ),
        component="test",
    )
    return table.client, ours


def same(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between two calls (request ids, dates, sizes)."""
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_items_read_as_json_are_what_botocore_reads(ledger_table: LedgerTable) -> None:
    theirs, ours = clients(ledger_table)
    table = ledger_table.name
    pk = {"S": f"USER#{uuid.uuid4()}"}
    keys = [{"pk": pk, "sk": {"S": f"FILE#{n}"}} for n in range(3)]
    for key in keys:
        theirs.put_item(TableName=table, Item={**key, **ITEM})
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_item", {"Key": keys[0], "ReturnConsumedCapacity": "TOTAL"}),
        ("get_item", {"Key": {"pk": pk, "sk": {"S": "FILE#none"}}}),
        (
            "query",
            {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": pk},
                "Limit": 2,
                "ReturnConsumedCapacity": "TOTAL",
            },
        ),
        (
            "query",
            {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :f)",
                "ProjectionExpression": "sk, #m.#i, bs",
                "ExpressionAttributeNames": {"#m": "m", "#i": "inner"},
                "ExpressionAttributeValues": {":pk": pk, ":f": {"S": "FILE#"}},
                "ConsistentRead": True,
            },
        ),
        ("scan", {"Limit": 1}),
    ]
    for method, kwargs in calls:
        mine = getattr(ours, method)(TableName=table, **kwargs)
        assert same(mine) == same(getattr(theirs, method)(TableName=table, **kwargs)), method
        assert mine["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ours.get_item(TableName=table, Key=keys[0])["Item"]["b"] == {"B": b"\x00\xffbytes"}

    batch = {table: {"Keys": keys, "ConsistentRead": True}}
    mine, want = (c.batch_get_item(RequestItems=batch) for c in (ours, theirs))
    by_sk = {i["sk"]["S"]: i for i in mine["Responses"][table]}
    assert by_sk == {i["sk"]["S"]: i for i in want["Responses"][table]}
    assert same(mine)["UnprocessedKeys"] == same(want)["UnprocessedKeys"]

    # Writes that return items: what was there before, what is there after.
    for c, n in ((theirs, "1"), (ours, "2")):
        old = c.put_item(TableName=table, Item={**keys[1], **ITEM, "v": {"N": n}},
                         ReturnValues="ALL_OLD")  # fmt: skip
        assert old["Attributes"]["bs"] == {"BS": [b"\x01", b"\x02\x03"]}
    mine = ours.update_item(
        TableName=table,
        Key=keys[2],
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"B": b"new"}},
        ReturnValues="ALL_NEW",
    )
    want_item = theirs.get_item(TableName=table, Key=keys[2], ConsistentRead=True)["Item"]
    assert mine["Attributes"] == want_item

    # Answers without items are botocore's, dates and all.
    described = ours.describe_table(TableName=table)["Table"]
    assert (
        described["CreationDateTime"]
        == theirs.describe_table(TableName=table)["Table"]["CreationDateTime"]
    )
    assert not isinstance(described["CreationDateTime"], str)


def test_a_refused_write_reads_the_same_error_and_item(ledger_table: LedgerTable) -> None:
    from botocore.exceptions import ClientError

    theirs, ours = clients(ledger_table)
    table = ledger_table.name
    key = {"pk": {"S": f"USER#{uuid.uuid4()}"}, "sk": {"S": "FILE#x"}}
    theirs.put_item(TableName=table, Item={**key, **ITEM})
    errors = []
    for c in (theirs, ours):
        with pytest.raises(ClientError) as refused:
            c.put_item(
                TableName=table,
                Item=key,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        errors.append(same(dict(refused.value.response)))
    assert errors[0] == errors[1]
    assert errors[1]["Error"]["Code"] == "ConditionalCheckFailedException"


def test_numbers_stay_strings_and_capacity_stays_a_number(ledger_table: LedgerTable) -> None:
    """Numbers in items come back as their text (botocore's client, not boto3's resource:
    no Decimal); `ConsumedCapacity` keeps botocore's float."""
    theirs, ours = clients(ledger_table)
    key = {"pk": {"S": f"USER#{uuid.uuid4()}"}, "sk": {"S": "FILE#n"}}
    theirs.put_item(TableName=ledger_table.name, Item={**key, "n": {"N": "7"}})
    got = ours.get_item(TableName=ledger_table.name, Key=key, ReturnConsumedCapacity="TOTAL")
    assert got["Item"]["n"] == {"N": "7"}
    assert not isinstance(got["Item"]["n"]["N"], Decimal)
    units = got["ConsumedCapacity"]["CapacityUnits"]
    assert isinstance(units, float)
