"""The service loop (`Agent.run`) against the emulator: heartbeats, a full disk, stopping
mid-batch, retention, capture time from EXIF, status and redrive."""

from __future__ import annotations

import errno
import io
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from _agentkit import SUB, Cloud, _agent_clients, files_under, s3_refuses_tags
from mobile_backup.agent import Agent, AgentConfig, Library, OutcomeKind, TransferConfig
from mobile_backup.agent._admin import agent_status, redrive
from mobile_backup.aws import Queue
from mobile_backup.core import (
    STATE_TAG,
    FileStatus,
    ObjectState,
)
from mobile_backup.local import LocalResources

pytestmark = pytest.mark.integration
KiB = 1024


def make_agent(
    cloud: Cloud,
    root: Path,
    *,
    write: Callable[[int, memoryview], int] = os.write,
    **config: Any,
) -> Agent:
    config.setdefault("pause_backoff", (0.3, 0.6))
    # The agent's own clients (component "agent"): the IAM test judges its calls by them.
    s3, sqs, ledger = _agent_clients(cloud.settings)
    return Agent(
        settings=cloud.settings,
        s3=s3,
        sqs=sqs,
        ledger=ledger,
        library=Library(root, write=write),
        host="test-pc",
        wait_seconds=1,
        config=AgentConfig(**config),
    )


@contextmanager
def running(agent: Agent) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), name="agent-under-test")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
        agent.close()
        assert not thread.is_alive(), "the agent did not stop"


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def upload_many(cloud: Cloud, n: int, size: int = 2 * KiB, seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    expected: dict[str, bytes] = {}
    for i in range(n):
        data = rng.randbytes(size)
        message = cloud.upload(data, filename=f"IMG_{i:04d}.jpg")
        cloud.send(message.to_json())
        expected[f"{SUB}/2024/07/IMG_{i:04d}.jpg"] = data
    return expected


def test_the_running_agent_tags_the_copies_once_the_queue_reads_empty(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The loop's receipts leave their copies' tags for a quiet moment: once the queue
    reads empty every copy is tagged, with the one a killed run left waiting."""
    sent = [cloud.upload(f"photo {n}".encode(), filename=f"IMG_{n}.jpg") for n in range(6)]
    for message in sent:
        cloud.send(message.to_json())
    left = cloud.upload(b"placed just before a kill", filename="IMG_left.jpg")
    agent = make_agent(cloud, tmp_path / "library")
    agent.state.tag_later(left.bucket, left.key, ObjectState.DOWNLOADED)

    def tagged(key: str) -> bool:
        found = cloud.s3.get_object_tagging(Bucket=left.bucket, Key=key)["TagSet"]
        return found == [{"Key": STATE_TAG, "Value": ObjectState.DOWNLOADED}]

    with running(agent):
        wait_for(lambda: all(tagged(m.key) for m in [*sent, left]), what="every tag")
        assert agent.receipts_written == 6
        assert agent.state.untagged_count() == 0


def test_tags_s3_keeps_refusing_are_asked_for_less_and_less_often(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused tag waits in the state file and is asked for again, but after a pause
    that doubles with each refused pass, not at every quiet moment (one a second here)."""
    from mobile_backup.agent import _loop

    monkeypatch.setattr(_loop, "TAG_CHECK_SECONDS", 0.5)  # pauses 1, 2, 4 s...
    message = cloud.upload(b"a photo S3 will not tag", filename="IMG_1.jpg")
    cloud.send(message.to_json())
    agent = make_agent(cloud, tmp_path / "library")
    s3, _, _ = _agent_clients(cloud.settings)
    with s3_refuses_tags(s3) as asked, running(agent):
        wait_for(lambda: bool(asked), what="the first tag")
        time.sleep(6.0)  # six quiet moments at least (the agent long-polls for 1 s)
        assert agent.state.untagged_count() == 1
    within = [t for t in asked if t - asked[0] <= 6.0]
    assert 2 <= len(within) <= 4, [round(t - asked[0], 2) for t in asked]


def test_the_running_agent_counts_its_receipts_with_its_acknowledgements(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The loop writes a member's kept counts once per acknowledgement batch at most, and
    before the batch's messages are deleted: a queue that reads empty has its counts."""
    import uuid

    member = str(uuid.uuid4())
    for n in range(12):
        message = cloud.upload(f"photo {n}".encode(), filename=f"IMG_{n}.jpg", user_sub=member)
        cloud.send(message.to_json())
    assert cloud.ledger.counts(member, now=datetime.now(UTC)) == {"uploaded": 12}
    _, sqs, ledger = _agent_clients(cloud.settings)
    calls: list[str] = []

    def seen(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "DeleteMessageBatch":
            calls.append("acknowledge")
        elif params.get("Key", {}).get("pk", {}).get("S", "") == f"COUNTS#{member}":
            calls.append("count")

    hooks = [(sqs.meta.events, "provide-client-params.sqs.DeleteMessageBatch"),
             (ledger._db.meta.events, "provide-client-params.dynamodb.UpdateItem")]  # fmt: skip
    for events, name in hooks:
        events.register(name, seen)
    try:
        agent = make_agent(cloud, tmp_path / "library")
        with running(agent):
            wait_for(lambda: cloud.counts() == (0, 0), what="every acknowledgement", timeout=30)
            assert cloud.ledger.counts(member, now=datetime.now(UTC)) == {"downloaded": 12}
    finally:
        for events, name in hooks:
            events.unregister(name, seen)
    assert 1 <= calls.count("count") <= calls.count("acknowledge") < 12
    assert calls[0] == "count"  # each batch's counts before its deletion


def test_after_a_kill_the_next_status_counts_whole(cloud: Cloud, tmp_path: Path) -> None:
    """An agent killed with counts in its tally loses them; the next run, finding the
    killed run's pid in the state file, has each member's next status count whole. A run
    after a clean stop leaves the kept counts alone."""
    import uuid

    member = str(uuid.uuid4())
    for n in range(3):
        message = cloud.upload(f"kill {n}".encode(), filename=f"IMG_{n}.jpg", user_sub=member)
        cloud.send(message.to_json())
    assert cloud.ledger.counts(member, now=datetime.now(UTC)) == {"uploaded": 3}
    agent = make_agent(cloud, tmp_path / "library")
    assert agent.poll_once(wait_seconds=0) == 3
    # The tally of one receipt lost to a kill: the kept counts still say "uploaded".
    lost = cloud.ledger._db.update_item(
        TableName=cloud.settings.require("table"),
        Key={"pk": {"S": f"COUNTS#{member}"}, "sk": {"S": "COUNTS"}},
        UpdateExpression="ADD downloaded :minus, uploaded :one",
        ExpressionAttributeValues={":minus": {"N": "-1"}, ":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    wrong = {"downloaded": 2, "uploaded": 1}
    assert cloud.ledger.counts(member, now=datetime.now(UTC)) == wrong, lost

    with running(agent):  # the last run stopped cleanly (poll_once never set a pid)
        time.sleep(0.5)
    assert cloud.ledger.counts(member, now=datetime.now(UTC)) == wrong

    agent.state.set_values(pid=2**22 + 1)  # what a killed run leaves behind
    with running(agent):
        wait_for(
            lambda: cloud.ledger.counts(member, now=datetime.now(UTC)) == {"downloaded": 3},
            what="the whole count",
        )
    assert cloud.ledger.counts(member, now=datetime.now(UTC)) == {"downloaded": 3}  # kept


def test_heartbeats_keep_a_slow_download_from_being_handed_out_twice(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.queue, Attributes={"VisibilityTimeout": "2"})
    data = random.Random(7).randbytes(600 * KiB)
    message = cloud.upload(data, filename="VID_0001.mp4")
    cloud.send(message.to_json())
    # 600 KiB at 150 KB/s: about four seconds, twice the queue's visibility timeout.
    transfer = TransferConfig(threshold=256 * KiB, part_size=128 * KiB, max_bandwidth=150_000)
    agent = make_agent(cloud, tmp_path / "library", transfer=transfer)
    with running(agent):
        wait_for(lambda: agent.state.resumable() != set(), what="the download to start")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            stolen = cloud.sqs.receive_message(QueueUrl=cloud.queue, WaitTimeSeconds=0)
            assert "Messages" not in stolen, "the message became visible mid-download"
            time.sleep(0.25)
        wait_for(lambda: cloud.counts() == (0, 0), what="the message to be acknowledged")
    assert files_under(tmp_path / "library") == {f"{SUB}/2024/07/VID_0001.mp4": data}


def test_a_full_disk_pauses_and_loses_nothing_once_space_returns(
    cloud: Cloud, tmp_path: Path, resources: LocalResources
) -> None:
    expected = upload_many(cloud, 6)
    disk_full = threading.Event()
    disk_full.set()

    def write(fd: int, chunk: memoryview) -> int:
        if disk_full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, chunk)

    root = tmp_path / "library"
    agent = make_agent(cloud, root, write=write)
    with running(agent):
        wait_for(
            lambda: agent.state.health(today=datetime.now(UTC).date()).pause_reason == "disk_full",
            what="the pause",
        )
        health = agent.state.health(today=datetime.now(UTC).date())
        assert health.last_error_code == "disk_full"
        assert health.last_error is not None
        assert "nothing is lost" in health.last_error
        status = agent_status(library=root, queue=Queue(cloud.sqs, cloud.queue))
        assert status.as_dict()["pause_reason"] == "disk_full"
        assert files_under(root) == {}
        disk_full.clear()  # the user freed some space
        wait_for(lambda: len(files_under(root)) == 6, what="every file", timeout=30)
        wait_for(lambda: cloud.counts() == (0, 0), what="every acknowledgement")
    assert files_under(root) == expected
    assert cloud.counts(resources.downloads_dlq_url) == (0, 0)
    assert list((root / ".mobile-backup" / "staging").iterdir()) == []
    health = agent.state.health(today=datetime.now(UTC).date())
    assert health.paused_until is None
    assert health.files_today == 6


def test_stopping_mid_batch_releases_work_and_a_restart_finishes_it(
    cloud: Cloud, tmp_path: Path
) -> None:
    expected = upload_many(cloud, 24, size=64 * KiB, seed=3)
    root = tmp_path / "library"
    transfer = TransferConfig(max_bandwidth=2_000_000)  # slow enough to stop mid-batch
    agent = make_agent(cloud, root, workers=2, transfer=transfer, shutdown_grace=0.2)
    with running(agent) as stop:
        wait_for(lambda: len(files_under(root)) >= 2, what="a first file")
        stop.set()
    placed = files_under(root)
    assert 2 <= len(placed) < 24
    assert all(expected[k] == v for k, v in placed.items())
    # Nothing stays invisible: unstarted and interrupted messages were released at once.
    visible, in_flight = cloud.counts()
    assert in_flight == 0
    assert visible == 24 - len(placed)
    again = make_agent(cloud, root)
    with running(again):
        wait_for(lambda: cloud.counts() == (0, 0), what="the rest", timeout=30)
    assert files_under(root) == expected


def test_delete_after_download_removes_the_cloud_copy_after_the_receipt(
    cloud: Cloud, tmp_path: Path
) -> None:
    message = cloud.upload(b"keep me here only", filename="a.jpg")
    cloud.send(message.to_json())
    agent = make_agent(cloud, tmp_path / "library", delete_after_download=True)
    assert agent.poll_once() == 1
    record = cloud.ledger.get(SUB, message.sha256)
    assert record is not None
    assert record.status == FileStatus.DOWNLOADED
    listed = cloud.s3.list_objects_v2(Bucket=message.bucket, Prefix=message.key)
    assert listed.get("KeyCount", 0) == 0
    agent.close()


def test_without_a_phone_time_the_exif_date_files_the_photo(cloud: Cloud, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:05:06 07:08:09"
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buf, format="JPEG", exif=exif.tobytes())
    message = cloud.upload(buf.getvalue(), filename="from-camera.jpg", taken_at=None)
    cloud.send(message.to_json())
    agent = make_agent(cloud, tmp_path / "library")
    agent.poll_once()
    assert list(files_under(tmp_path / "library")) == [f"{SUB}/2019/05/from-camera.jpg"]
    agent.close()


def test_a_custom_template_is_used(cloud: Cloud, tmp_path: Path) -> None:
    from mobile_backup.agent import PathTemplate

    message = cloud.upload(b"templated", filename="IMG_1.jpg")
    cloud.send(message.to_json())
    template = PathTemplate.parse("{year}/{year}-{month}-{day}/{stem}-{hash}{ext}")
    agent = make_agent(cloud, tmp_path / "library", path_template=template)
    agent.poll_once()
    assert list(files_under(tmp_path / "library")) == [
        f"2024/2024-07-14/IMG_1-{message.sha256[:12]}.jpg"
    ]
    agent.close()


def test_redelivery_after_the_file_is_placed_downloads_nothing(
    cloud: Cloud, tmp_path: Path
) -> None:
    message = cloud.upload(b"once" * 1000, filename="a.jpg", taken_at=None)
    cloud.send(message.to_json())
    agent = make_agent(cloud, tmp_path / "library")
    agent.poll_once()
    # Even with no phone time (the path depends on the download), the state file knows.
    cloud.s3.delete_object(Bucket=message.bucket, Key=message.key)  # a GET would now fail
    cloud.ledger.mark_uploaded(SUB, message.sha256, size=4000, now=datetime.now(UTC))
    cloud.send(message.to_json())
    resp = cloud.sqs.receive_message(QueueUrl=cloud.queue, MaxNumberOfMessages=1)
    outcome = agent.process_message(resp["Messages"][0])
    assert outcome.kind == OutcomeKind.ALREADY_PLACED
    assert outcome.acknowledged
    assert len(files_under(tmp_path / "library")) == 1
    agent.close()


def test_status_shows_queues_and_redrive_brings_dead_letters_back(
    cloud: Cloud, tmp_path: Path, resources: LocalResources
) -> None:
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.queue, Attributes={"VisibilityTimeout": "0"})
    good = b"the real photo"
    message = cloud.upload(good, filename="late.jpg", stored=b"corrupted in the bucket")
    cloud.send(message.to_json())
    root = tmp_path / "library"
    agent = make_agent(cloud, root)
    for _ in range(20):
        if not agent.poll_once():
            break
    status = agent_status(library=root, queue=Queue(cloud.sqs, cloud.queue)).as_dict()
    assert status["dlq"] == {"visible": 1, "in_flight": 0}
    assert status["queue"] == {"visible": 0, "in_flight": 0}
    assert status["last_error_code"] == "delivery_failed"
    assert status["files_today"] == 0
    assert status["disk_free"] > 0
    assert status["running"] is False
    # The owner fixes the object; redrive puts the message back and the agent delivers it.
    cloud.s3.put_object(Bucket=message.bucket, Key=message.key, Body=good)
    assert redrive(cloud.settings).moved == {"main": 1}
    assert cloud.counts(resources.downloads_dlq_url) == (0, 0)
    agent.poll_once()
    assert files_under(root) == {f"{SUB}/2024/07/late.jpg": good}
    status = agent_status(library=root, queue=Queue(cloud.sqs, cloud.queue)).as_dict()
    assert status["files_today"] == 1
    assert status["last_success_at"] is not None
    agent.close()
