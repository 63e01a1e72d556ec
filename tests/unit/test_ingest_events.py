"""The ingest's reading of S3 notifications, on the payloads AWS sends (no servers needed).

Bodies that need no ledger or queue (test events, foreign keys, garbage) must be settled
without any I/O; `NoIO` fails the test if the processor tries.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import load_event
from mobile_backup.core import InvalidInputError, parse_object_key
from mobile_backup.ingest import IngestProcessor, MalformedEventError


class NoIO:
    """Stands in for the ledger and the SQS client where no call may happen."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected I/O: {name}")


def processor() -> IngestProcessor:
    return IngestProcessor(
        ledger=NoIO(),  # type: ignore[arg-type]
        sqs=NoIO(),  # type: ignore[arg-type]
        downloads_queue_url="http://127.0.0.1:1/000000000000/unused",
        clock=lambda: datetime(2024, 7, 14, tzinfo=UTC),
    )


def test_the_s3_test_event_is_ignored() -> None:
    outcome = processor().process_body(json.dumps(load_event("s3_test_event.json")))
    assert outcome.test_event
    assert outcome.announced == outcome.duplicates == outcome.ignored == ()


def test_a_key_outside_the_media_scheme_is_decoded_and_ignored() -> None:
    event = load_event("s3_put_event_foreign_key.json")
    assert event["Records"][0]["s3"]["object"]["key"] == "uploads/My+Holiday+Photo.jpg"
    outcome = processor().process_body(json.dumps(event))
    assert outcome.ignored == ("uploads/My Holiday Photo.jpg",)
    assert outcome.announced == ()


def test_events_other_than_object_created_are_ignored() -> None:
    event = load_event("s3_put_event.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    key = event["Records"][0]["s3"]["object"]["key"]
    assert processor().process_body(json.dumps(event)).ignored == (key,)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        "[1, 2]",
        "{}",
        '{"Records": "nope"}',
        '{"Records": [42]}',
        '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}, "object": {}}}]}',
        '{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}',
    ],
)
def test_a_malformed_body_raises_before_any_io(body: str) -> None:
    with pytest.raises(MalformedEventError) as info:
        processor().process_body(body)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.code == "malformed_event"


@pytest.mark.parametrize("size", [-1, "27", None, True, 1.5])
def test_a_media_record_with_a_bad_size_is_malformed(size: object) -> None:
    event = load_event("s3_put_event.json")
    event["Records"][0]["s3"]["object"]["size"] = size
    with pytest.raises(MalformedEventError):
        processor().process_body(json.dumps(event))


def test_one_bad_record_spoils_its_body_before_anything_is_written() -> None:
    # Records are all checked first: half-processing a body would be retried anyway.
    event = load_event("s3_put_event.json")
    event["Records"].append({"eventName": "ObjectCreated:Put"})
    with pytest.raises(MalformedEventError):
        processor().process_body(json.dumps(event))


def test_stored_payloads_are_what_aws_sends() -> None:
    sqs = load_event("sqs_event_s3.json")
    assert {r["eventSource"] for r in sqs["Records"]} == {"aws:sqs"}
    for record in sqs["Records"]:
        body = record["body"]
        assert hashlib.md5(body.encode()).hexdigest() == record["md5OfBody"]  # noqa: S324
        (s3,) = json.loads(body)["Records"]
        assert s3["eventSource"] == "aws:s3"
        assert s3["eventName"].startswith("ObjectCreated:")
        parse_object_key(s3["s3"]["object"]["key"])
    multipart = load_event("s3_multipart_complete_event.json")["Records"][0]
    assert multipart["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert multipart["s3"]["object"]["eTag"].endswith("-2")  # multipart ETags end in -{parts}


def test_the_lambda_handler_imports_nothing_it_does_not_need() -> None:
    code = (
        "import sys, mobile_backup.ingest.handler\n"
        "heavy = ('httpx', 'PIL', 'typer', 'rich', 'moto', 'uvicorn', 'jwt', 'platformdirs',\n"
        "         'mobile_backup.agent', 'mobile_backup.client', 'mobile_backup.api',\n"
        "         'mobile_backup.local', 'mobile_backup.cli')\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "      or m.startswith(heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
