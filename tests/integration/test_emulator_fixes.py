"""The local stack's corrections to moto (local/_emulator_fixes.py), against the real server."""

from __future__ import annotations

import abc
import base64
import os
import time
import uuid
import zlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def client(emulator: Any, service: str) -> Any:
    session: Any = boto3.session.Session()  # any service: the overloads want a literal
    return session.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _new_table(db: Any) -> str:
    """A fresh table keyed by `pk` alone; its name."""
    table = f"fix-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def _new_ranged_table(db: Any) -> str:
    """A fresh table keyed by `pk` and `sk`, as the ledger is; its name."""
    table = f"fix-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    return table


def crc(data: bytes, algorithm: str) -> str:
    if algorithm == "CRC32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    from awscrt.checksums import crc64nvme

    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME"])  # today's client, older ones
def test_a_full_object_checksum_that_does_not_match_is_refused_as_on_s3(
    emulator: Any, algorithm: str
) -> None:
    s3 = client(emulator, "s3")
    field = f"Checksum{algorithm}"
    bucket = f"fix-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]

    def upload(declared: bytes, key: str) -> dict[str, Any]:
        up = s3.create_multipart_upload(
            Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, ChecksumType="FULL_OBJECT"
        )
        done = [
            {"PartNumber": n, field: crc(body, algorithm),
             "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                    PartNumber=n, Body=body,
                                    **{field: crc(body, algorithm)})["ETag"]}
            for n, body in enumerate(parts, start=1)
        ]  # fmt: skip
        result: dict[str, Any] = s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=up["UploadId"],
            ChecksumType="FULL_OBJECT",
            MultipartUpload={"Parts": done},
            **{field: crc(declared, algorithm)},
        )
        return result

    with pytest.raises(ClientError, match="BadDigest"):
        upload(b"not the file", "wrong")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="wrong").get("KeyCount") == 0
    upload(parts[0] + parts[1], "right")
    assert s3.get_object(Bucket=bucket, Key="right")["Body"].read() == parts[0] + parts[1]


def test_sqs_still_drops_messages_past_their_retention(emulator: Any) -> None:
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(
        QueueName=f"fix-{uuid.uuid4().hex[:10]}", Attributes={"MessageRetentionPeriod": "60"}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="fresh")
    (fresh,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    assert fresh["Body"] == "fresh"
    # Older than the retention period: gone, as on SQS (the emulator's clock is time.time).
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].get_queue(url.rsplit("/", 1)[-1])
    for message in queue._messages:
        stamp: Any = int((time.time() - 61) * 1000)  # moto types it as None until sent
        message.sent_timestamp = stamp
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_routing_no_longer_lists_motos_package_per_request(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fix answers what moto's own listing answers, without touching the disk."""
    import moto
    from moto import backends

    folder = os.path.dirname(moto.__file__)
    on_disk = {
        name
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name)) and not name.startswith("__")
    }
    assert set(backends.list_of_moto_modules()) == on_disk

    s3 = client(emulator, "s3")  # botocore reads its own data folders while it is built
    s3.list_buckets()

    def no_listing(_path: str) -> list[str]:
        raise AssertionError("moto's package was listed during a request")

    monkeypatch.setattr(os, "listdir", no_listing)
    s3.list_buckets()  # routed, and answered


def test_a_response_class_is_listed_once_and_requests_still_dispatch(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect

    db, sqs = client(emulator, "dynamodb"), client(emulator, "sqs")
    table = _new_table(db)
    queue = sqs.create_queue(QueueName=f"fix-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    listed = [0]
    real = inspect.getmembers

    def counting(obj: Any, predicate: Any = None) -> Any:
        listed[0] += 1
        return real(obj, predicate)

    monkeypatch.setattr(inspect, "getmembers", counting)
    for n in range(20):
        db.put_item(TableName=table, Item={"pk": {"S": f"k{n}"}})
        assert db.get_item(TableName=table, Key={"pk": {"S": f"k{n}"}})["Item"]
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{n}")
    assert listed[0] == 0  # unfixed moto lists the class on each of these 60 requests
    assert len(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]) == 10
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    module: Any = responses
    kept = module.method_names_from_class(DynamoHandler)
    assert kept == [name for name, _ in real(DynamoHandler, inspect.isfunction)]
    assert "get_item" in kept


def test_an_update_expression_is_parsed_once_and_each_call_gets_its_own_values(
    emulator: Any,
) -> None:
    from moto.dynamodb.parsing import expressions

    parser: Any = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    expression = "SET #n = :v, extra = :w REMOVE gone"
    assert parser.make(expression) is parser.make(expression)

    db = client(emulator, "dynamodb")
    table = _new_table(db)
    for n in range(3):  # one expression text, three sets of values
        db.update_item(
            TableName=table,
            Key={"pk": {"S": f"k{n}"}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":v": {"S": f"v{n}"}, ":w": {"N": str(n)}},
        )
    for n in range(3):
        item = db.get_item(TableName=table, Key={"pk": {"S": f"k{n}"}})["Item"]
        assert item == {"pk": {"S": f"k{n}"}, "name": {"S": f"v{n}"}, "extra": {"N": str(n)}}
    for _ in range(2):  # a syntax error is still refused, each time
        with pytest.raises(ClientError, match="ValidationException"):
            db.update_item(
                TableName=table, Key={"pk": {"S": "k0"}}, UpdateExpression="SET = broken"
            )


def test_update_validation_builds_each_table_once_and_still_refuses_and_computes(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.parsing import validators

    built: list[str] = []
    original = validators.ActionCountValidator._processing_map

    def counting(self: Any) -> Any:
        built.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(validators.ActionCountValidator, "_processing_map", counting)
    db = client(emulator, "dynamodb")
    table = _new_table(db)
    key = {"pk": {"S": "k"}}
    many_nodes: dict[str, Any] = {
        "UpdateExpression": "SET a = :a, b = :b, c = if_not_exists(c, :c), l = :l REMOVE gone",
        "ExpressionAttributeValues": {
            ":a": {"S": "1"}, ":b": {"N": "2"}, ":c": {"S": "3"}, ":l": {"L": [{"S": "x"}]}
        },
    }  # fmt: skip
    db.update_item(TableName=table, Key=key, **many_nodes)  # one table for its one count pass
    # moto validates an update twice per call (names, then the run): one table each. Unfixed,
    # it was rebuilt twice for every node visited.
    assert built == ["ActionCountValidator"] * 2
    asked = [0]
    instancecheck = abc.ABCMeta.__instancecheck__

    def counting_check(cls: Any, instance: Any) -> bool:
        asked[0] += 1
        return instancecheck(cls, instance)

    monkeypatch.setattr(abc.ABCMeta, "__instancecheck__", counting_check)
    db.update_item(TableName=table, Key=key, **many_nodes)
    monkeypatch.undo()
    # The walks ask each (pass, node type) once, not each node: 1,896 on moto without the
    # fix, ~265 with it (the rest of the request path).
    assert asked[0] < 600
    db.update_item(  # list_append copies the stored list (the deepcopy that is not a tree's)
        TableName=table, Key=key, UpdateExpression="SET l = list_append(l, :more)",
        ExpressionAttributeValues={":more": {"L": [{"S": "y"}]}},
    )  # fmt: skip
    item = db.get_item(TableName=table, Key=key)["Item"]
    assert item == {"pk": {"S": "k"}, "a": {"S": "1"}, "b": {"N": "2"}, "c": {"S": "3"},
                    "l": {"L": [{"S": "x"}, {"S": "y"}]}}  # fmt: skip
    refused = {  # what AWS refuses is still refused
        "SET a = :a SET b = :a": 'The "SET" section can only be used once',
        "SET a = :a, a = :a": "Two document paths",
        "SET pk = :a": "Cannot update attribute pk",
    }
    for expression, says in refused.items():
        with pytest.raises(ClientError, match="ValidationException") as caught:
            db.update_item(
                TableName=table, Key=key, UpdateExpression=expression,
                ExpressionAttributeValues={":a": {"S": "z"}},
            )  # fmt: skip
        assert says in str(caught.value)


def test_a_receive_survives_another_receive_adding_to_the_in_flight_set(emulator: Any) -> None:
    from moto.sqs.models import sqs_backends

    sqs = client(emulator, "sqs")
    name = f"fix-{uuid.uuid4().hex[:8]}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    for n, group in enumerate(("a", "a", "b")):
        sqs.send_message(QueueUrl=url, MessageBody=str(n), MessageGroupId=group,
                         MessageDeduplicationId=str(n))  # fmt: skip
    in_flight: Any = sqs_backends["123456789012"]["us-east-1"].get_queue(name)._pending_messages

    class Intruder:
        """In flight in group b, and adds another in-flight message when its group is read:
        what a second receive does mid-iteration when two overlap."""

        @property
        def group_id(self) -> str:
            in_flight.add(Arriving())
            return "b"

    class Arriving:
        group_id = None

    in_flight.add(Intruder())
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    # A 500 on unfixed moto; now answered, and group b, in flight, still holds its message.
    assert [m["Body"] for m in got] == ["0", "1"]


def _ten_in_flight(emulator: Any) -> tuple[Any, str, list[Any]]:
    """An SQS client, a fresh queue of 100 messages (body = their number) and the 10 of them
    received for a minute."""
    sqs = client(emulator, "sqs")
    url: str = sqs.create_queue(QueueName=f"fix-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for start in range(0, 100, 10):
        entries = [{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    return sqs, url, got["Messages"]


def _count_clock_reads(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """From now on, every reading of SQS's clock appends to the list returned."""
    from moto.sqs import models

    reads: list[None] = []
    sqs_models: Any = models
    clock = sqs_models.unix_time_millis

    def counting() -> float:
        reads.append(None)
        return float(clock())

    monkeypatch.setattr(models, "unix_time_millis", counting)
    return reads


def test_a_receive_reads_the_clock_once_and_still_skips_the_invisible_and_the_delayed(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, url, first = _ten_in_flight(emulator)
    in_flight = {m["Body"] for m in first}
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)

    reads = _count_clock_reads(monkeypatch)
    seen: list[str] = []
    receives = 1
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        seen += [m["Body"] for m in got]
        receives += 1
    # Every message not in flight, once; neither the in-flight ones nor the delayed one.
    assert sorted(seen) == sorted({str(n) for n in range(100)} - in_flight)
    # A few readings per message received (its visibility, its receipt) and one per receive.
    # Unfixed, each receive also read it twice per message in the queue: over 1,000 here.
    assert len(reads) <= 3 * len(seen) + receives
    # A message made visible again is received again.
    handle = first[0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    (again,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert again["Body"] == first[0]["Body"]


def test_a_batch_delete_scans_once_and_answers_each_entry_as_sqs_does(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs import models

    sqs, url, fresh = _ten_in_flight(emulator)
    handles = [m["ReceiptHandle"] for m in fresh]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[0])
    # A message received twice: its first receipt handle still deletes it.
    (old,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    (again,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    assert again["MessageId"] == old["MessageId"]
    assert again["ReceiptHandle"] != old["ReceiptHandle"]

    looked: list[None] = []
    handles_of = models.Message.all_receipt_handles

    def counting(self: Any) -> Any:
        looked.append(None)
        return handles_of.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(models.Message, "all_receipt_handles", property(counting))
    entries = [
        {"Id": "old", "ReceiptHandle": old["ReceiptHandle"]},
        {"Id": "deleted-before", "ReceiptHandle": handles[0]},
        {"Id": "bogus", "ReceiptHandle": "not-a-handle"},
        *({"Id": f"m{n}", "ReceiptHandle": h} for n, h in enumerate(handles[1:])),
    ]
    answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    assert {s["Id"] for s in answer["Successful"]} == {e["Id"] for e in entries} - {"bogus"}
    (failed,) = answer["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bogus", "ReceiptHandleIsInvalid", True,
    )  # fmt: skip
    # One look at each message's handles (99 left in the queue); unfixed, two per entry.
    assert len(looked) <= 100
    gone = {old["Body"], *(m["Body"] for m in fresh)}
    left: set[str] = set()
    while rest := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        left |= {m["Body"] for m in rest}
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60}
                for i, m in enumerate(rest)
            ],
        )
    assert left == {str(n) for n in range(100)} - gone


def test_a_send_reads_the_clock_once_per_count_and_the_counts_stay_right(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, url, _ = _ten_in_flight(emulator)  # 90 visible, 10 in flight
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)

    reads = _count_clock_reads(monkeypatch)
    for n in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=f"new {n}")
    # A few readings per send (its own timestamps, one per count). Unfixed, each send read
    # the clock twice per message in the queue for its counts: over 2,000 here.
    assert len(reads) <= 10 * 10
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert [int(counts[name]) for name in names] == [100, 10, 1]


def test_random_strings_are_drawn_in_one_call_and_look_as_before(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import string

    from moto.moto_api._internal import mock_random

    sqs, url, first = _ten_in_flight(emulator)
    picks: list[None] = []
    choice = mock_random.choice

    def counting(seq: Any) -> Any:
        picks.append(None)
        return choice(seq)

    monkeypatch.setattr(mock_random, "choice", counting)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    handles = [m["ReceiptHandle"] for m in first + got]
    # moto's own shape: 185 lowercase letters, each handle new.
    assert all(len(h) == 185 and set(h) <= set(string.ascii_lowercase) for h in handles)
    assert len(set(handles)) == 20
    # Unfixed: 185 calls per message received, and 52 per request for its request id.
    assert picks == []
    request_id = sqs.list_queues()["ResponseMetadata"]["RequestId"]
    assert len(request_id) == 52
    assert request_id.isalnum()
    # Still drawn from moto's generator, so a seeded emulator repeats its handles.
    from moto.sqs import models

    sqs_models: Any = models
    mock_random.seed(15)
    one = sqs_models.generate_receipt_handle()
    mock_random.seed(15)
    assert sqs_models.generate_receipt_handle() == one
    # And a new handle still deletes its message.
    sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles)]
    )
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "80"


def test_item_answers_written_as_json_carry_every_kind_of_value_as_before(emulator: Any) -> None:
    """Each item operation's answer goes out through `json.dumps` now: every attribute type
    comes back as it was written (binary and binary sets in base64, numbers as text, nested
    maps and lists), pages still carry their LastEvaluatedKey, errors still are errors."""
    from mobile_backup.local._emulator_fixes_dynamodb import ITEM_OPERATIONS

    db = client(emulator, "dynamodb")
    table = _new_ranged_table(db)
    item = {
        "pk": {"S": "p"}, "sk": {"S": "a"}, "n": {"N": "12.50"}, "b": {"B": b"\x00\xffbin"},
        "bs": {"BS": [b"\x01", b"\x02"]}, "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2"]},
        "l": {"L": [{"S": "é"}, {"N": "3"}, {"NULL": True}]},
        "m": {"M": {"inner": {"BOOL": False}, "deep": {"M": {"s": {"S": "\u2603"}}}}},
    }  # fmt: skip
    old = db.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD")
    assert "Attributes" not in old
    got = db.get_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})["Item"]
    assert got == item
    for n in range(5):
        db.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": f"z{n}"}})
    page = db.query(
        TableName=table, KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}}, Limit=2,
    )  # fmt: skip
    assert page["Items"][0] == item
    assert (page["Count"], page["LastEvaluatedKey"]) == (2, {"pk": {"S": "p"}, "sk": {"S": "z0"}})
    assert db.scan(TableName=table)["Count"] == 6
    batch = db.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": {"S": "p"}, "sk": {"S": "a"}}]}}
    )
    assert batch["Responses"][table] == [item]
    assert batch["UnprocessedKeys"] == {}
    updated = db.update_item(
        TableName=table, Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "7"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]  # fmt: skip
    assert updated == {**item, "n": {"N": "7"}}
    gone = db.delete_item(
        TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, ReturnValues="ALL_OLD"
    )
    assert gone["Attributes"] == updated
    with pytest.raises(ClientError) as refused:
        db.put_item(TableName=table, Item=item, ConditionExpression="attribute_exists(pk)")
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert {"Query", "GetItem", "BatchGetItem"} <= ITEM_OPERATIONS


def test_a_query_reads_its_partition_only_and_pages_and_orders_as_before(emulator: Any) -> None:
    """A query on the table (not an index) reads the partition's own items now, not the
    whole table: the answers are the partition's, in range-key order either way, a page at
    a time with the start key, and a query of an absent partition is empty."""
    from moto.dynamodb.models.table import Table

    db = client(emulator, "dynamodb")
    table = _new_ranged_table(db)
    for pk in ("a", "b", "c"):
        for n in (5, 1, 9, 3, 7):  # written out of order
            db.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": f"{pk}{n}"}})

    def pages(pk: str, *, forward: bool = True) -> list[str]:
        seen, start = [], None
        while True:
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = db.query(
                TableName=table, KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": pk}}, Limit=2,
                ScanIndexForward=forward, **extra,
            )  # fmt: skip
            seen += [i["sk"]["S"] for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return seen

    assert pages("b") == ["b1", "b3", "b5", "b7", "b9"]
    assert pages("c", forward=False) == ["c9", "c7", "c5", "c3", "c1"]
    assert pages("nobody") == []
    ranged = db.query(
        TableName=table, KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"S": "a4"}},
    )  # fmt: skip
    assert [i["sk"]["S"] for i in ranged["Items"]] == ["a5", "a7", "a9"]
    # The whole table is still there for a scan, in moto's order.
    assert db.scan(TableName=table)["Count"] == 15
    assert Table.query.__name__ == "query_partition"  # the fix is what answered
