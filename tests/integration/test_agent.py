"""The agent against the emulator: real bucket, queue, ledger table and library folder."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _forbidden import forbid_missing

from _agentkit import (
    AT,
    OTHER_SUB,
    SUB,
    Cloud,
    _agent_clients,
    agent_for,
    files_under,
    s3_refuses_tags,
)
from mobile_backup.agent import STAGING_DIR, Agent, OutcomeKind
from mobile_backup.core import (
    STATE_TAG,
    FileStatus,
    ObjectState,
    object_key,
)
from mobile_backup.local import LocalResources

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.integration


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def agent(cloud: Cloud, library: Path) -> Agent:
    return agent_for(cloud, library)


def drain(agent: Agent) -> int:
    """Poll until the queue has nothing visible; returns the messages received."""
    total = 0
    for _ in range(50):
        received = agent.poll_once(wait_seconds=0)
        if not received:
            return total
        total += received
    raise AssertionError("the queue never ran dry")


def test_a_message_becomes_a_verified_file_and_a_receipt(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    data = b"\xff\xd8\xff\xe0" + b"beach at noon" * 5000
    message = cloud.upload(data, filename="Beach Day.jpg")
    cloud.send(message.to_json())

    assert agent.poll_once(wait_seconds=0) == 1

    rel = f"{SUB}/2024/07/Beach Day.jpg"
    assert files_under(library) == {rel: data}
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.DOWNLOADED
    assert record.receipt is not None
    assert (record.receipt.host, record.receipt.path, record.receipt.sha256) == (
        "test-pc",
        rel,
        message.sha256,
    )
    assert record.receipt.at == AT
    assert cloud.counts() == (0, 0)  # acknowledged: deleted, not merely in flight
    tags = cloud.s3.get_object_tagging(Bucket=message.bucket, Key=message.key)["TagSet"]
    assert {"Key": "state", "Value": "downloaded"} in tags
    assert list((library / STAGING_DIR).iterdir()) == []


@contextmanager
def count_writes(cloud: Cloud) -> Iterator[list[str]]:
    """The members whose kept counts the agent's own ledger client writes, one per write."""
    _, _, ledger = _agent_clients(cloud.settings)
    events = ledger._db.meta.events
    written: list[str] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("Key", {}).get("pk", {}).get("S", "")
        if pk.startswith("COUNTS#"):
            written.append(pk.removeprefix("COUNTS#"))

    events.register("before-parameter-build.dynamodb.UpdateItem", seen)
    try:
        yield written
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", seen)


def test_a_batch_of_receipts_is_counted_by_one_write_per_member(cloud: Cloud, agent: Agent) -> None:
    anna, bob = str(uuid.uuid4()), str(uuid.uuid4())
    sent = [(anna, n) for n in range(7)] + [(bob, n) for n in range(3)]
    for member, n in sent:
        message = cloud.upload(f"{member} {n}".encode(), filename=f"IMG_{n}.jpg", user_sub=member)
        cloud.send(message.to_json())
    for member in (anna, bob):
        assert cloud.ledger.counts(member, now=AT) == {"uploaded": 7 if member == anna else 3}

    with count_writes(cloud) as written:
        assert agent.poll_once(wait_seconds=0) == 10

    assert sorted(written) == sorted([anna, bob])  # not one per receipt
    assert cloud.ledger.counts(anna, now=AT) == {"downloaded": 7}  # written before poll ends
    assert cloud.ledger.counts(bob, now=AT) == {"downloaded": 3}
    assert cloud.counts() == (0, 0)


def test_without_a_capture_time_the_upload_month_is_used(cloud: Cloud, agent: Agent) -> None:
    message = cloud.upload(b"screenshot", filename="Screenshot.png", taken_at=None)
    cloud.send(message.to_json())
    agent.poll_once(wait_seconds=0)
    up = message.uploaded_at.astimezone(UTC)
    expected = f"{SUB}/{up.year:04d}/{up.month:02d}/Screenshot.png"
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.receipt is not None
    assert record.receipt.path == expected


def test_the_same_message_three_times_is_one_file(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    data = b"one photo, delivered three times"
    message = cloud.upload(data, filename="IMG_0002.jpg")
    cloud.send(message.to_json(), times=3)

    assert drain(agent) == 3

    assert files_under(library) == {f"{SUB}/2024/07/IMG_0002.jpg": data}
    assert cloud.counts() == (0, 0)


def test_one_agent_files_each_member_under_their_folder(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    mine = cloud.upload(b"my photo", filename="IMG_0001.jpg")
    theirs = cloud.upload(b"their photo", filename="IMG_0001.jpg", user_sub=OTHER_SUB)
    cloud.send(mine.to_json())
    cloud.send(theirs.to_json())
    drain(agent)
    assert files_under(library) == {
        f"{SUB}/2024/07/IMG_0001.jpg": b"my photo",
        f"{OTHER_SUB}/2024/07/IMG_0001.jpg": b"their photo",
    }


def test_a_hostile_filename_stays_inside_the_library(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    message = cloud.upload(b"sneaky", filename="..\\../../etc/con.jpg")
    cloud.send(message.to_json())
    drain(agent)
    assert files_under(library) == {f"{SUB}/2024/07/_con.jpg": b"sneaky"}


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        # A program whose name reads `exe.jpg` right to left (the audit's file).
        ("\u202egpj.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 500),
        # A program named as a photo: the bytes decide, not the name.
        ("IMG_0042.jpg", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 500),
        # Unrecognised bytes with a name that is no photo or video either.
        ("notes.txt", b"buy milk\n" * 10),
    ],
)
def test_what_is_not_a_photo_or_video_is_kept_out_and_said_so(
    cloud: Cloud, agent: Agent, library: Path, filename: str, data: bytes
) -> None:
    message = cloud.upload(data, filename=filename, content_type="image/jpeg")
    cloud.send(message.to_json())
    outcomes: list[OutcomeKind] = []
    agent_with_eyes = agent_for(cloud, library, on_outcome=lambda o: outcomes.append(o.kind))
    assert agent_with_eyes.poll_once(wait_seconds=0) == 1
    assert outcomes == [OutcomeKind.REFUSED]
    assert files_under(library) == {}
    assert list((library / STAGING_DIR).iterdir()) == []
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.FAILED
    assert "not a photo or video" in (record.failed_reason or "")
    # Settled, not retried (no retry can make it a photo), and its copy expires.
    assert cloud.counts() == (0, 0)
    tags = cloud.s3.get_object_tagging(Bucket=message.bucket, Key=message.key)["TagSet"]
    assert tags == [{"Key": STATE_TAG, "Value": ObjectState.REFUSED}]


def test_bytes_that_do_not_match_the_hash_are_never_placed(
    cloud: Cloud, agent: Agent, library: Path
) -> None:
    message = cloud.upload(b"the real photo", filename="IMG_0003.jpg", stored=b"not the photo!")
    cloud.send(message.to_json())

    outcome_count = agent.poll_once(wait_seconds=0)

    assert outcome_count == 1
    assert files_under(library) == {}
    assert list((library / STAGING_DIR).iterdir()) == []
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.FAILED
    assert record.failed_reason is not None
    assert "SHA-256 mismatch" in record.failed_reason
    assert cloud.counts() == (0, 1)  # not deleted: it comes back, then goes to the DLQ


@pytest.mark.parametrize(
    ("stored", "tag"),
    [
        # Every byte read, another SHA-256: the cloud copy is proven garbage and expires.
        (b"the real phot0", [{"Key": "state", "Value": "corrupt"}]),
        # Another size: possibly the transfer's fault, so the object is left as it is.
        (b"corrupted", []),
    ],
)
def test_a_corrupt_object_ends_in_the_dead_letter_queue(
    cloud: Cloud,
    agent: Agent,
    library: Path,
    resources: LocalResources,
    stored: bytes,
    tag: list[dict[str, str]],
) -> None:
    # Make redelivery immediate on this test's own queue instead of waiting 5 minutes.
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.queue, Attributes={"VisibilityTimeout": "0"})
    message = cloud.upload(b"the real photo", filename="IMG_0004.jpg", stored=stored)
    cloud.send(message.to_json())
    dlq = resources.downloads_dlq_url

    receives = drain(agent)

    assert cloud.counts(dlq) == (1, 0)
    assert cloud.counts() == (0, 0)
    attrs = cloud.sqs.get_queue_attributes(QueueUrl=cloud.queue, AttributeNames=["RedrivePolicy"])
    assert receives == int(json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"])
    assert files_under(library) == {}
    # Tagged only when proven garbage (the template's `expire-corrupt` rule removes it).
    tags = cloud.s3.get_object_tagging(Bucket=message.bucket, Key=message.key)["TagSet"]
    assert tags == tag


def test_a_bad_message_never_stops_the_good_ones(cloud: Cloud, agent: Agent, library: Path) -> None:
    good = cloud.upload(b"fine photo", filename="fine.jpg")
    cloud.send("this is not a download message")
    cloud.send(good.to_json().replace(good.key, object_key(OTHER_SUB, good.sha256)))
    cloud.send(good.to_json())

    assert agent.poll_once(wait_seconds=0) == 3

    assert files_under(library) == {f"{SUB}/2024/07/fine.jpg": b"fine photo"}
    assert cloud.counts() == (0, 2)  # the two bad ones wait for the DLQ


def test_malformed_messages_are_reported_and_kept(cloud: Cloud, agent: Agent) -> None:
    good = cloud.upload(b"photo", filename="a.jpg")
    bodies = [
        "{}",
        good.to_json().replace(f'"bucket":"{good.bucket}"', '"bucket":"someone-elses-bucket"'),
        good.to_json().replace(good.sha256, "0" * 64, 1),  # key no longer matches the hash
        good.to_json().replace('"v":1', '"v":2'),
    ]
    for body in bodies:
        cloud.send(body)
    resp = cloud.sqs.receive_message(QueueUrl=cloud.queue, MaxNumberOfMessages=10)
    outcomes = [agent.process_message(m) for m in resp["Messages"]]
    assert [o.kind for o in outcomes] == [OutcomeKind.MALFORMED] * 4
    assert not any(o.acknowledged for o in outcomes)


@pytest.fixture(params=["404", "403"])
def s3_says(request: pytest.FixtureRequest, cloud: Cloud) -> list[str] | None:
    """How S3 answers the agent for a missing key: 404 (a lister) or 403 (AWS, without
    ListBucket). On the agent's own client: the test's would leave the agent seeing 404."""
    return forbid_missing(_agent_clients(cloud.settings)[0]) if request.param == "403" else None


def test_a_missing_object_is_recorded_as_failed(
    cloud: Cloud, agent: Agent, s3_says: list[str] | None
) -> None:
    message = cloud.upload(b"gone photo", filename="gone.jpg")
    cloud.s3.delete_object(Bucket=message.bucket, Key=message.key)
    cloud.send(message.to_json())
    resp = cloud.sqs.receive_message(QueueUrl=cloud.queue, MaxNumberOfMessages=1)

    outcome = agent.process_message(resp["Messages"][0])

    assert outcome.kind == OutcomeKind.FAILED
    assert not outcome.acknowledged
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.FAILED
    assert record.failed_reason is not None
    assert "not in the bucket" in record.failed_reason
    if s3_says is not None:  # the 403 was really seen, and settled by listing the key
        assert message.key in s3_says


def test_a_stale_duplicate_after_the_cloud_copy_expired_is_dropped(
    cloud: Cloud, agent: Agent, library: Path, s3_says: list[str] | None
) -> None:
    message = cloud.upload(b"expired later", filename="old.jpg")
    cloud.send(message.to_json())
    drain(agent)
    # The user tidied the library and lifecycle expired the tagged object; then a
    # duplicate of the original message shows up.
    (library / SUB / "2024" / "07" / "old.jpg").unlink()
    cloud.s3.delete_object(Bucket=message.bucket, Key=message.key)
    cloud.send(message.to_json())
    resp = cloud.sqs.receive_message(QueueUrl=cloud.queue, MaxNumberOfMessages=1)

    outcome = agent.process_message(resp["Messages"][0])

    assert outcome.kind == OutcomeKind.STALE
    assert outcome.acknowledged
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.DOWNLOADED
    assert cloud.counts() == (0, 0)
    assert s3_says is None or message.key in s3_says


def test_leftovers_of_a_crash_are_cleaned_at_start(cloud: Cloud, library: Path) -> None:
    staging = library / STAGING_DIR
    staging.mkdir(parents=True)
    (staging / "deadbeef-0123.part").write_bytes(b"half a download")
    agent = Agent.from_settings(cloud.settings, library=library, host="test-pc", wait_seconds=0)
    assert agent.poll_once(wait_seconds=0) == 0
    assert list(staging.iterdir()) == []


def test_a_pass_tags_its_copies_after_its_downloads_and_acknowledgements(
    cloud: Cloud, agent: Agent
) -> None:
    """A batch's receipts leave their copies' `downloaded` tags for the end of the pass:
    no download waits for a tag, and the pass still ends with every copy tagged."""
    sent = [cloud.upload(f"photo {n}".encode(), filename=f"IMG_{n}.jpg") for n in range(4)]
    for message in sent:
        cloud.send(message.to_json())
    s3, sqs, _ = _agent_clients(cloud.settings)
    calls: list[str] = []

    def seen(model: Any, **_: Any) -> None:
        calls.append(model.name)

    hooks = [(s3.meta.events, "before-call.s3"), (sqs.meta.events, "before-call.sqs")]
    for events, name in hooks:
        events.register(name, seen)
    try:
        assert agent.poll_once(wait_seconds=0) == 4
    finally:
        for events, name in hooks:
            events.unregister(name, seen)

    assert calls.count("GetObject") == calls.count("PutObjectTagging") == 4
    first_tag = calls.index("PutObjectTagging")
    assert "DeleteMessageBatch" in calls[:first_tag]
    assert "GetObject" not in calls[first_tag:]
    for message in sent:
        tags = cloud.s3.get_object_tagging(Bucket=message.bucket, Key=message.key)["TagSet"]
        assert tags == [{"Key": STATE_TAG, "Value": ObjectState.DOWNLOADED}]
    assert agent.state.untagged(10) == []


def test_a_tag_left_waiting_is_set_by_a_later_pass(cloud: Cloud, agent: Agent) -> None:
    """A tag noted but not set (the run was killed first, or S3 refused it) stays in the
    state file until a pass sets it; one whose copy is already gone, or whose state this
    version does not know, is dropped."""
    kept = cloud.upload(b"placed just before a kill", filename="IMG_kept.jpg")
    gone = object_key(SUB, "0" * 64)
    agent.state.tag_later(kept.bucket, kept.key, ObjectState.DOWNLOADED)
    agent.state.tag_later(kept.bucket, gone, ObjectState.DOWNLOADED)
    agent.state.tag_later(kept.bucket, object_key(SUB, "1" * 64), "from-a-newer-version")
    s3, _, _ = _agent_clients(cloud.settings)
    with s3_refuses_tags(s3):
        assert agent.poll_once(wait_seconds=0) == 0
    # Refused: both kept for the next pass (the state no version here knows is dropped).
    assert agent.state.untagged_count() == 2
    assert cloud.s3.get_object_tagging(Bucket=kept.bucket, Key=kept.key)["TagSet"] == []

    assert agent.poll_once(wait_seconds=0) == 0

    assert agent.state.untagged(10) == []
    tags = cloud.s3.get_object_tagging(Bucket=kept.bucket, Key=kept.key)["TagSet"]
    assert tags == [{"Key": STATE_TAG, "Value": ObjectState.DOWNLOADED}]
