"""The ingest against the emulator: real ledger table, real queues, real S3 notifications."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from conftest import load_event, snapstart_init_env
from mobile_backup.aws import dynamodb_client, s3_client, sqs_client
from mobile_backup.core import (
    STATE_TAG,
    DownloadMessage,
    FileMeta,
    FileStatus,
    ObjectState,
    Receipt,
    Settings,
    object_key,
    utcnow,
)
from mobile_backup.ingest import IngestProcessor
from mobile_backup.ingest import handler as handler_module
from mobile_backup.ingest.handler import make_handler
from mobile_backup.ledger import Ledger
from mobile_backup.local import IngestPoller, LocalLambdaContext

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

# The user and content named by the stored payloads.
SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
PHOTO = b"mobile-backup sample photo\n"
VIDEO = b"mobile-backup sample video\n"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
VIDEO_SHA = hashlib.sha256(VIDEO).hexdigest()
TAKEN = datetime(2024, 7, 14, 9, 20, 5, tzinfo=UTC)


@pytest.fixture
def sqs(settings: Settings) -> SQSClient:
    return sqs_client(settings, component="test")


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    return Ledger(dynamodb_client(settings, component="test"), settings.require("table"))


@pytest.fixture
def processor(settings: Settings) -> IngestProcessor:
    return IngestProcessor.from_settings(settings)


def drain(sqs: SQSClient, queue_url: str) -> list[str]:
    """Receive every visible message (each stays in flight, so none is seen twice)."""
    bodies: list[str] = []
    while True:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(m["Body"] for m in messages)


def queue_counts(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


def reserve(ledger: Ledger, sha256: str, *, filename: str, size: int) -> None:
    meta = FileMeta(sha256, size, filename, "image/heic", taken_at=TAKEN, device="Pixel 8")
    ledger.reserve(SUB, meta, now=utcnow())


def s3_body(name: str, bucket: str, *, key: str | None = None) -> str:
    """A stored S3 notification, addressed to this test's bucket."""
    event = load_event(name)
    for record in event["Records"]:
        record["s3"]["bucket"]["name"] = bucket
        if key is not None:
            record["s3"]["object"]["key"] = key
    return json.dumps(event)


def sqs_event(settings: Settings) -> dict[str, Any]:
    """The stored SQS Lambda event, its S3 bodies addressed to this test's bucket."""
    event = load_event("sqs_event_s3.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        for s3 in body["Records"]:
            s3["s3"]["bucket"]["name"] = settings.bucket
        record["body"] = json.dumps(body)
    return event


def test_a_put_event_marks_uploaded_and_announces_once(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    outcome = processor.process_body(s3_body("s3_put_event.json", str(settings.bucket)))
    key = object_key(SUB, PHOTO_SHA)
    assert outcome.announced == (key,)

    record = ledger.get(SUB, PHOTO_SHA)
    assert record is not None
    assert record.status == FileStatus.UPLOADED
    assert record.uploaded_at is not None
    assert record.announced_at is not None

    (body,) = drain(sqs, settings.require("downloads_queue_url"))
    assert DownloadMessage.from_json(body) == DownloadMessage(
        bucket=str(settings.bucket),
        key=key,
        user_sub=SUB,
        sha256=PHOTO_SHA,
        size=len(PHOTO),
        filename="IMG_0001.HEIC",
        content_type="image/heic",
        taken_at=TAKEN,
        uploaded_at=record.uploaded_at,
    )


def test_the_same_event_twice_sends_one_message(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    body = s3_body("s3_put_event.json", str(settings.bucket))
    first = processor.process_body(body)
    second = processor.process_body(body)
    assert len(first.announced) == 1
    assert second.announced == ()
    assert second.duplicates == first.announced
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 1


def test_an_event_after_the_download_sends_nothing(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    body = s3_body("s3_put_event.json", str(settings.bucket))
    processor.process_body(body)
    receipt = Receipt(host="pc", path=f"{SUB}/2024/07/IMG_0001.HEIC", sha256=PHOTO_SHA, at=utcnow())
    ledger.mark_downloaded(SUB, PHOTO_SHA, receipt)
    outcome = processor.process_body(body)
    assert outcome.duplicates == (object_key(SUB, PHOTO_SHA),)
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 1
    record = ledger.get(SUB, PHOTO_SHA)
    assert record is not None
    assert record.status == FileStatus.DOWNLOADED


def test_keys_encoded_as_the_emulator_sends_them_are_decoded(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    # moto URL-encodes '/' ("media%2F..."); AWS leaves it alone. Both must work.
    encoded = f"media%2F{SUB}%2F{PHOTO_SHA}"
    reserve(ledger, PHOTO_SHA, filename="Summer Day.jpg", size=len(PHOTO))
    outcome = processor.process_body(
        s3_body("s3_put_event.json", str(settings.bucket), key=encoded)
    )
    assert outcome.announced == (object_key(SUB, PHOTO_SHA),)
    (body,) = drain(sqs, settings.require("downloads_queue_url"))
    assert DownloadMessage.from_json(body).filename == "Summer Day.jpg"


@pytest.mark.parametrize("sub", [SUB, "Zz-not-uuid"])
def test_an_object_the_api_never_presigned_is_quarantined_not_filed(
    settings: Settings, ledger: Ledger, sqs: SQSClient, sub: str
) -> None:
    """`put_object(Key=f"media/alice/{sha256(body)}")` by anyone with write access to the
    bucket was filed in Alice's folder, and `media/Zz-not-uuid/...` made a new folder."""
    s3 = s3_client(settings, component="test")
    bucket = str(settings.bucket)
    key = object_key(sub, VIDEO_SHA)
    s3.put_object(Bucket=bucket, Key=key, Body=VIDEO)
    counted: list[tuple[str, int]] = []
    lambda_handler = make_handler(
        IngestProcessor.from_settings(settings), metric=lambda n, v: counted.append((n, v))
    )
    event = {"Records": [{"messageId": "m1", "body": s3_body(
        "s3_multipart_complete_event.json", bucket, key=key
    )}]}  # fmt: skip
    assert lambda_handler(event, LocalLambdaContext()) == {"batchItemFailures": []}
    assert ledger.get(sub, VIDEO_SHA) is None  # no entry made up for it
    assert drain(sqs, settings.require("downloads_queue_url")) == []
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    assert tags == [{"Key": STATE_TAG, "Value": ObjectState.QUARANTINED}]
    assert counted == [(handler_module.QUARANTINED_METRIC, 1)]


def test_the_quarantine_metric_is_the_one_the_template_alarms_on() -> None:
    from mobile_backup.infra import load_template

    alarm = load_template()["Resources"]["QuarantineAlarm"]["Properties"]
    assert alarm["Namespace"] == handler_module.METRICS_NAMESPACE
    assert alarm["MetricName"] == handler_module.QUARANTINED_METRIC
    assert alarm["Dimensions"] == [{"Name": "Service", "Value": handler_module.SERVICE}]


def test_the_metric_is_an_embedded_metric_format_line(capsys: pytest.CaptureFixture[str]) -> None:
    handler_module.emit_metric(handler_module.QUARANTINED_METRIC, 2)
    line = json.loads(capsys.readouterr().out)
    (spec,) = line["_aws"]["CloudWatchMetrics"]
    assert spec["Namespace"] == handler_module.METRICS_NAMESPACE
    assert spec["Metrics"] == [{"Name": handler_module.QUARANTINED_METRIC, "Unit": "Count"}]
    assert line[handler_module.QUARANTINED_METRIC] == 2
    assert line["Service"] == handler_module.SERVICE


def test_test_events_and_foreign_keys_send_nothing(
    settings: Settings, processor: IngestProcessor, sqs: SQSClient
) -> None:
    assert processor.process_body(json.dumps(load_event("s3_test_event.json"))).test_event
    foreign = processor.process_body(s3_body("s3_put_event_foreign_key.json", str(settings.bucket)))
    assert foreign.ignored == ("uploads/My Holiday Photo.jpg",)
    assert drain(sqs, settings.require("downloads_queue_url")) == []


def test_a_malformed_body_fails_only_its_own_item(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    reserve(ledger, VIDEO_SHA, filename="VID_0001.MP4", size=len(VIDEO))
    event = sqs_event(settings)
    bad = copy.deepcopy(event["Records"][0])
    bad["messageId"] = "7c1b5f1e-2a59-4d40-9a3e-0b8f2c6d1e55"
    bad["body"] = '{"Records": [{"eventName": "ObjectCreated:Put"}]}'
    event["Records"].insert(1, bad)

    response = make_handler(processor)(event, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    bodies = drain(sqs, settings.require("downloads_queue_url"))
    assert sorted(DownloadMessage.from_json(b).sha256 for b in bodies) == sorted(
        [PHOTO_SHA, VIDEO_SHA]
    )


def test_a_failed_send_fails_the_item_and_the_retry_sends_it(
    settings: Settings, processor: IngestProcessor, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    event = sqs_event(settings)
    event["Records"] = event["Records"][:1]
    broken = IngestProcessor(
        ledger=ledger,
        sqs=sqs,
        downloads_queue_url=settings.require("downloads_queue_url") + "-gone",
        clock=utcnow,
    )

    failed = make_handler(broken)(event, None)

    assert failed == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    record = ledger.get(SUB, PHOTO_SHA)
    assert record is not None
    assert record.status == FileStatus.UPLOADED
    assert record.announced_at is None  # not marked: the redelivery must send it
    assert drain(sqs, settings.require("downloads_queue_url")) == []

    retried = make_handler(processor)(event, None)

    assert retried == {"batchItemFailures": []}
    (body,) = drain(sqs, settings.require("downloads_queue_url"))
    assert DownloadMessage.from_json(body).sha256 == PHOTO_SHA


@pytest.fixture
def lambda_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[io.StringIO]:
    """The function's environment as the template sets it, pointed at the emulator.

    Yields what the function writes to its log stream (stdout on Lambda).
    """
    env = {
        "MOBILE_BACKUP_LOCAL": "true",
        "MOBILE_BACKUP_REGION": settings.region,
        "MOBILE_BACKUP_AWS_ENDPOINT_URL": str(settings.aws_endpoint_url),
        "MOBILE_BACKUP_TABLE": settings.require("table"),
        "MOBILE_BACKUP_DOWNLOADS_QUEUE_URL": settings.require("downloads_queue_url"),
        "MOBILE_BACKUP_BUCKET": settings.require("bucket"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    package_logger = logging.getLogger("mobile_backup")
    saved = (package_logger.level, package_logger.handlers[:], package_logger.propagate)
    log_stream = io.StringIO()
    stdout = handler_module.logger.registered_handler.setStream(log_stream)  # type: ignore[attr-defined]
    handler_module._default_handler.cache_clear()
    try:
        yield log_stream
    finally:
        handler_module._default_handler.cache_clear()
        handler_module.logger.registered_handler.setStream(stdout)  # type: ignore[attr-defined]
        package_logger.level, package_logger.handlers[:], package_logger.propagate = saved


def test_a_batch_s_records_run_side_by_side_and_read_the_registry_once(
    settings: Settings,
    ledger: Ledger,
    sqs: SQSClient,
    processor: IngestProcessor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mobile_backup.ledger import PcRegistry

    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    reserve(ledger, VIDEO_SHA, filename="VID_0001.MP4", size=len(VIDEO))
    reads: list[str] = []
    read_registry = PcRegistry.queue_targets

    def counted(self: PcRegistry) -> Any:
        reads.append(threading.current_thread().name)
        return read_registry(self)

    # Each record waits for the other: one after the other, the first would time out.
    both = threading.Barrier(2, timeout=10)
    process_body = IngestProcessor.process_body

    def meet(self: IngestProcessor, body: str) -> Any:
        both.wait()
        return process_body(self, body)

    monkeypatch.setattr(PcRegistry, "queue_targets", counted)
    monkeypatch.setattr(IngestProcessor, "process_body", meet)
    response = make_handler(processor)(sqs_event(settings), LocalLambdaContext())

    assert response == {"batchItemFailures": []}
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 2
    assert len(reads) == 1  # the batch's records share one read of the registry
    for sha in (PHOTO_SHA, VIDEO_SHA):
        entry = ledger.get(SUB, sha)
        assert entry is not None
        assert entry.announced_at is not None


def test_the_registry_is_read_as_the_batch_begins_and_a_failed_read_ahead_is_read_again(
    settings: Settings,
    ledger: Ledger,
    sqs: SQSClient,
    processor: IngestProcessor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The PC registry is read beside the records' first ledger writes (not after them),
    and a read ahead that failed does not fail the batch: the record that needs the queues
    reads them itself."""
    from mobile_backup.aws import AwsServiceError
    from mobile_backup.ledger import PcRegistry

    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    reserve(ledger, VIDEO_SHA, filename="VID_0001.MP4", size=len(VIDEO))
    read_registry = PcRegistry.queue_targets
    mark_uploaded = Ledger.mark_uploaded
    reads: list[str] = []
    registry_read = threading.Event()

    def flaky(self: PcRegistry) -> Any:
        reads.append(threading.current_thread().name)
        if len(reads) == 1:  # the read ahead
            registry_read.set()
            raise AwsServiceError("the registry could not be read")
        return read_registry(self)

    def after_the_read(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        # The first write waits for the read ahead: had the read waited for the write,
        # this would time out.
        assert registry_read.wait(timeout=10)
        return mark_uploaded(self, *args, **kwargs)

    monkeypatch.setattr(PcRegistry, "queue_targets", flaky)
    monkeypatch.setattr(Ledger, "mark_uploaded", after_the_read)
    response = make_handler(processor)(sqs_event(settings), LocalLambdaContext())

    assert response == {"batchItemFailures": []}
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 2
    assert reads[0].startswith("pc-registry")  # read ahead on its own thread
    assert len(reads) == 2  # the failed read ahead, then one read for both records


def test_the_lambda_entry_point_processes_an_sqs_event(
    settings: Settings, ledger: Ledger, sqs: SQSClient, lambda_environment: io.StringIO
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    reserve(ledger, VIDEO_SHA, filename="VID_0001.MP4", size=len(VIDEO))
    event = sqs_event(settings)
    bad = copy.deepcopy(event["Records"][1])
    bad["messageId"] = "d0c8a6b2-7f6e-4f0a-8d57-33f9d2c4b1aa"
    bad["body"] = "not json"
    event["Records"].append(bad)

    response = handler_module.handler(event, LocalLambdaContext(aws_request_id="req-1"))

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 2
    # The package's loggers now write Powertools JSON lines carrying the invocation.
    lines = [json.loads(line) for line in lambda_environment.getvalue().splitlines()]
    by_logger = {line["name"]: line for line in lines if line.get("function_request_id") == "req-1"}
    assert by_logger["mobile_backup.ingest._processor"]["level"] == "INFO"
    assert by_logger["mobile_backup.ingest.handler"]["level"] == "WARNING"


def test_the_poller_takes_real_notifications_through_the_lambda_code_path(
    settings: Settings, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    key = object_key(SUB, PHOTO_SHA)
    s3_client(settings, component="test").put_object(
        Bucket=settings.require("bucket"), Key=key, Body=PHOTO
    )
    events_url = settings.require("events_queue_url")
    poller = IngestPoller(settings=settings, wait_seconds=0)

    # The queue holds the bucket's s3:TestEvent and the PUT's notification(s).
    received = 0
    for _ in range(20):
        n = poller.poll_once()
        if n == 0:
            break
        received += n
    assert received >= 2

    assert queue_counts(sqs, events_url) == (0, 0)  # all handled and deleted
    (body,) = drain(sqs, settings.require("downloads_queue_url"))
    assert DownloadMessage.from_json(body).key == key
    record = ledger.get(SUB, PHOTO_SHA)
    assert record is not None
    assert record.announced_at is not None


def test_the_poller_leaves_failed_items_on_the_queue(
    settings: Settings, ledger: Ledger, sqs: SQSClient
) -> None:
    reserve(ledger, PHOTO_SHA, filename="IMG_0001.HEIC", size=len(PHOTO))
    events_url = settings.require("events_queue_url")
    drain_events = IngestPoller(settings=settings, wait_seconds=0)
    while drain_events.poll_once():  # the provisioning's s3:TestEvent
        pass
    sqs.send_message(QueueUrl=events_url, MessageBody="not an S3 event")
    sqs.send_message(
        QueueUrl=events_url, MessageBody=s3_body("s3_put_event.json", str(settings.bucket))
    )

    assert IngestPoller(settings=settings, wait_seconds=0).poll_once() == 2

    assert queue_counts(sqs, events_url) == (0, 1)  # the bad one is in flight, to come back
    assert len(drain(sqs, settings.require("downloads_queue_url"))) == 1


def test_the_poller_builds_the_event_lambda_receives(settings: Settings, sqs: SQSClient) -> None:
    events_url = settings.require("events_queue_url")
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        assert isinstance(context, LocalLambdaContext)
        return {"batchItemFailures": []}

    poller = IngestPoller(settings=settings, handler=handler, sqs=sqs, wait_seconds=0)
    while poller.poll_once():  # the provisioning's s3:TestEvent
        pass
    seen.clear()
    sqs.send_message(
        QueueUrl=events_url,
        MessageBody="hello",
        MessageAttributes={
            "origin": {"DataType": "String", "StringValue": "test"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    assert poller.poll_once() == 1

    (event,) = seen
    (record,) = event["Records"]
    reference = load_event("sqs_event_s3.json")["Records"][0]
    assert set(record) == set(reference)
    assert set(record["attributes"]) >= set(reference["attributes"])
    arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])
    assert record["eventSourceARN"] == arn["Attributes"]["QueueArn"]
    assert record["eventSource"] == "aws:sqs"
    assert record["awsRegion"] == settings.region
    assert record["body"] == "hello"
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()  # noqa: S324
    assert record["messageAttributes"]["origin"]["stringValue"] == "test"
    assert record["messageAttributes"]["origin"]["dataType"] == "String"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert queue_counts(sqs, events_url) == (0, 0)


def test_the_poller_handles_several_batches_at_once_as_lambda_does(
    settings: Settings, sqs: SQSClient
) -> None:
    """A burst of uploads is not handled one batch of 10 after another: with concurrency 3,
    three handler calls are in flight together (the barrier only opens for three)."""
    events_url = settings.require("events_queue_url")
    drain_events = IngestPoller(settings=settings, wait_seconds=0)
    while drain_events.poll_once():  # the provisioning's s3:TestEvent
        pass
    together = threading.Barrier(3, timeout=20)
    handled: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        together.wait()  # raises BrokenBarrierError unless three batches meet here
        handled.append(len(event["Records"]))
        return {"batchItemFailures": []}

    for i in range(3):
        sqs.send_message(QueueUrl=events_url, MessageBody=f"event {i}")
    poller = IngestPoller(
        settings=settings, handler=handler, sqs=sqs, wait_seconds=1, batch_size=1, concurrency=3
    )
    stop = threading.Event()
    runner = threading.Thread(target=poller.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while len(handled) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert handled == [1, 1, 1]
    assert not together.broken
    assert queue_counts(sqs, events_url) == (0, 0)


def test_snapstart_init_builds_the_processor_and_its_clients(settings: Settings) -> None:
    """With AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, importing the handler builds the
    processor (and so its clients) for the snapshot; a restored environment builds none."""
    import subprocess
    import sys

    child = (
        "import mobile_backup.ingest.handler as h\n"
        "assert h._default_handler.cache_info().currsize == 1\n"
        "import mobile_backup.aws._clients as aws\n"
        "aws._client = None\n"  # any client built from here on would fail
        "h._default_handler()\n"
        "print('ok')\n"
    )
    env = snapstart_init_env(settings, "bucket", "table", "downloads_queue_url")
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
