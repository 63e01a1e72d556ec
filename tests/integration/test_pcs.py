"""Several PCs in one household: every PC receives every file, each writes its own receipt,
a late PC catches up, and a second library on one PC's queue is refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from _agentkit import SUB, Cloud, agent_for, files_under
from mobile_backup.agent import Agent, AgentConfig, register_pc
from mobile_backup.core import FileMeta, object_key, utcnow
from mobile_backup.ingest import IngestProcessor
from mobile_backup.ledger import PcInUseError
from mobile_backup.local import LocalResources, agent_environment

pytestmark = pytest.mark.integration


def make_agent(cloud: Cloud, library: Path, pc: str = "main", host: str = "pc") -> Agent:
    # The real clock: claims and heartbeats compare times.
    return agent_for(cloud, library, host=host, clock=utcnow, config=AgentConfig(pc_name=pc))


def phone_uploads(cloud: Cloud, count: int, *, start: int = 0) -> dict[str, bytes]:
    """What the phone and the ingest do for `count` photos: entry, object, S3 event."""
    ingest = IngestProcessor.from_settings(cloud.settings)
    bucket = cloud.settings.require("bucket")
    owner = cloud.ledger.claim_folder(SUB, "anna")  # as the API does on a first upload
    sent: dict[str, bytes] = {}
    for i in range(start, start + count):
        data = f"photo {i} ".encode() * 500
        sha = hashlib.sha256(data).hexdigest()
        name = f"IMG_{i:04d}.jpg"
        meta = FileMeta(sha, len(data), name, "image/jpeg")
        cloud.ledger.reserve(SUB, meta, now=utcnow(), owner_name=owner)
        key = object_key(SUB, sha)
        cloud.s3.put_object(Bucket=bucket, Key=key, Body=data)
        event = {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": len(data)}},
                }
            ]
        }
        assert ingest.process_body(json.dumps(event)).announced == (key,)
        sent[name] = data
    return sent


def drain(agent: Agent) -> None:
    for _ in range(50):
        if not agent.poll_once(wait_seconds=0):
            return
    raise AssertionError("the queue never ran dry")


def photos(library: Path) -> dict[str, bytes]:
    return {path.rsplit("/", 1)[-1]: data for path, data in files_under(library).items()}


def test_every_pc_receives_every_file_with_its_own_receipt(cloud: Cloud, tmp_path: Path) -> None:
    laptop = register_pc(cloud.settings, "laptop")
    assert laptop.queue_url.endswith("-downloads-pc-laptop")
    desk = make_agent(cloud, tmp_path / "desk", host="desk")
    lap = make_agent(cloud, tmp_path / "lap", pc="laptop", host="lap")
    desk.claim_pc()
    lap.claim_pc()

    sent = phone_uploads(cloud, 10)
    drain(desk)
    drain(lap)

    # 10 of 10 on each PC (a shared queue gave 6 to one and 4 to the other).
    assert photos(tmp_path / "desk") == sent
    assert photos(tmp_path / "lap") == sent
    for data in sent.values():
        record = cloud.ledger.get(SUB, hashlib.sha256(data).hexdigest())
        assert record is not None
        assert set(record.receipts) == {"main", "laptop"}
        assert record.receipts["main"].host == "desk"
        assert record.receipts["laptop"].host == "lap"
        assert record.receipts["laptop"].path.startswith("anna/")
    # Each PC's reconcile finds nothing to fetch: neither refetches the other's files.
    for agent in (desk, lap):
        report = agent.reconciler().fetch_awaiting()
        assert report.outcomes == {}, report.summary()
        assert not report.problems


def test_a_pc_registered_a_moment_ago_receives_the_next_file_without_a_reconcile(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The ingest cached the PC list for a minute: a file uploaded in the minute after
    `agent register` returned reached the new PC only through a reconcile, hours later."""
    from mobile_backup.ingest.handler import make_handler

    handler = make_handler(IngestProcessor.from_settings(cloud.settings))  # one warm Lambda
    bucket = cloud.settings.require("bucket")
    owner = cloud.ledger.claim_folder(SUB, "anna")

    def upload(i: int) -> str:
        data = f"photo {i} ".encode() * 500
        sha = hashlib.sha256(data).hexdigest()
        meta = FileMeta(sha, len(data), f"IMG_{i:04d}.jpg", "image/jpeg")
        cloud.ledger.reserve(SUB, meta, now=utcnow(), owner_name=owner)
        key = object_key(SUB, sha)
        cloud.s3.put_object(Bucket=bucket, Key=key, Body=data)
        event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
            "bucket": {"name": bucket}, "object": {"key": key, "size": len(data)}}}]}  # fmt: skip
        sqs_event = {"Records": [{"messageId": f"m{i}", "body": json.dumps(event)}]}
        assert handler(sqs_event, None) == {"batchItemFailures": []}
        return sha

    upload(1)  # the warm ingest has read the registry: no laptop yet
    laptop = register_pc(cloud.settings, "laptop")
    sha = upload(2)  # at once after `register` returned
    bodies = cloud.sqs.receive_message(QueueUrl=laptop.queue_url, MaxNumberOfMessages=10)
    got = [json.loads(m["Body"])["sha256"] for m in bodies.get("Messages", [])]
    assert got == [sha]


def test_a_pc_registered_later_catches_up_on_reconcile(cloud: Cloud, tmp_path: Path) -> None:
    desk = make_agent(cloud, tmp_path / "desk")
    sent = phone_uploads(cloud, 4)
    drain(desk)

    register_pc(cloud.settings, "office")
    office = make_agent(cloud, tmp_path / "office", pc="office", host="office")
    report = office.reconciler().fetch_awaiting()
    assert report.ok, report.problems
    assert photos(tmp_path / "office") == sent
    # From now on it receives new files through its own queue.
    newer = phone_uploads(cloud, 2, start=10)
    drain(office)
    assert photos(tmp_path / "office") == {**sent, **newer}


def test_a_second_library_on_one_pcs_queue_is_refused(cloud: Cloud, tmp_path: Path) -> None:
    first = make_agent(cloud, tmp_path / "first", host="desk")
    first.claim_pc()
    first.claim_pc()  # the heartbeat: the same library may claim again
    other = make_agent(cloud, tmp_path / "other", host="laptop")
    with pytest.raises(PcInUseError, match=r"already collecting into .*first.* on desk"):
        other.claim_pc()

    # As a person meets it: `agent run` with another library says so in one line, exit 1.
    env = {**os.environ, **agent_environment(cloud.settings, tmp_path / "other"), "COLUMNS": "400"}
    result = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "agent", "run", "--reconcile-every", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already collecting into" in lines[0]
    assert "agent register" in lines[0]
    assert "Traceback" not in result.stderr


def _agent_run(cloud: Cloud, library: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **agent_environment(cloud.settings, library), "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "mobile_backup", "agent", "run", "--reconcile-every", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_agent_on_a_library_being_collected_into_is_refused_naming_it(
    cloud: Cloud, tmp_path: Path
) -> None:
    """A unit and a terminal both running `agent run` on one library: the second one used to
    say "collecting into ..." and compete for the queue as a guest."""
    running = make_agent(cloud, tmp_path / "lib", host="desk")
    running.start()
    try:
        result = _agent_run(cloud, tmp_path / "lib")
    finally:
        running.close()
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "another agent is already collecting into" in lines[0]
    assert f"pid {os.getpid()}" in lines[0]
    assert "PC main" in lines[0]
    assert " since " in lines[0]
    assert "collecting into" not in result.stdout  # it never said it started
    # Once the first one stops, the library is free again.
    again = make_agent(cloud, tmp_path / "lib", host="desk")
    again.start()
    again.close()


def test_a_library_belongs_to_one_pc(cloud: Cloud, tmp_path: Path) -> None:
    """`agent run --pc laptop` without --library filled the main PC's library: two receipts
    for one copy. Refused, whether the library remembers its PC or only the registry does."""
    from mobile_backup.agent import LibraryOfAnotherPcError

    register_pc(cloud.settings, "laptop")
    desk = make_agent(cloud, tmp_path / "main-lib", host="desk")
    desk.start()
    desk.close()
    lap = make_agent(cloud, tmp_path / "main-lib", pc="laptop", host="desk")
    with pytest.raises(LibraryOfAnotherPcError, match=r"library of PC 'main'"):
        lap.start()
    lap.close()
    result = _agent_run(cloud, tmp_path / "main-lib", "--pc", "laptop")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "is the library of PC 'main'" in lines[0]
    assert "--library DIR" in lines[0]

    # A library from before libraries remembered their PC: the registry still knows.
    other = make_agent(cloud, tmp_path / "old-lib", host="desk")
    other.start()  # takes PC main from main-lib (released above)
    other.state.set_values(library_pc=None)
    other.close()
    late = make_agent(cloud, tmp_path / "old-lib", pc="laptop", host="desk")
    cloud.ledger.pc_registry().claim(
        "main",
        queue_url=cloud.settings.require("downloads_queue_url"),
        library_id=late._library_id(),
        host="desk",
        library=str(tmp_path / "old-lib"),
        now=utcnow(),
    )
    with pytest.raises(LibraryOfAnotherPcError):
        late.start()
    late.close()
    # Its own library is fine.
    own = make_agent(cloud, tmp_path / "lap-lib", pc="laptop", host="desk")
    own.start()
    own.close()


def test_the_command_register_prints_works_pasted_as_printed(cloud: Cloud, tmp_path: Path) -> None:
    import shlex
    import signal

    env = {**os.environ, **agent_environment(cloud.settings, tmp_path / "main"), "COLUMNS": "80"}
    said = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "agent", "register", "laptop"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    command = shlex.split(said[-1])
    assert command[:1] == ["mobile-backup"]
    assert command[-4:] == ["--pc", "laptop", "--library", f"{tmp_path / 'main'}-laptop"]
    runner = subprocess.Popen(
        [sys.executable, "-m", "mobile_backup", *command[1:], "--reconcile-every", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert runner.stdout is not None
        first = runner.stdout.readline()
        assert f"collecting into {tmp_path / 'main'}-laptop" in first, runner.stderr
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err


def _dead_letter(cloud: Cloud, queue_url: str) -> None:
    """Receive the queue's one message until SQS moves it to the dead-letter queue (what a
    PC agent killed again and again just after receiving it does)."""
    cloud.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})
    for _ in range(20):
        got = cloud.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)
        if not got.get("Messages"):
            return
    raise AssertionError("the message never reached the dead-letter queue")


def test_dead_letters_go_home_and_a_pcs_stale_letter_is_cleared(
    cloud: Cloud, tmp_path: Path, resources: LocalResources, caplog: pytest.LogCaptureFixture
) -> None:
    """A laptop killed repeatedly after receiving a message dead-lettered it, the file then
    arrived through reconcile, and the letter rang the DLQ alarm for nothing; `redrive` sent
    it to the first PC's queue instead of the laptop's."""
    from mobile_backup.agent import redrive

    laptop = register_pc(cloud.settings, "laptop")
    dlq = resources.downloads_dlq_url
    sent = phone_uploads(cloud, 1)
    _dead_letter(cloud, laptop.queue_url)
    assert sum(cloud.counts(dlq)) == 1
    # redrive: home to the laptop's queue, not the first PC's
    report = redrive(cloud.settings)
    assert report.moved == {"laptop": 1}
    assert sum(cloud.counts(laptop.queue_url)) == 1
    assert sum(cloud.counts(cloud.queue)) == 1  # only the main PC's own message

    # Dead again; the main PC collects its copy; the laptop's arrives through reconcile.
    _dead_letter(cloud, laptop.queue_url)
    desk = make_agent(cloud, tmp_path / "desk", host="desk")
    drain(desk)
    other = phone_uploads(cloud, 1, start=50)  # a letter of the main PC's, really stuck
    _dead_letter(cloud, cloud.queue)
    assert cloud.counts(dlq)[0] == 2
    lap = make_agent(cloud, tmp_path / "lap", pc="laptop", host="lap")
    with caplog.at_level("INFO", logger="mobile_backup.agent"):
        result = lap.reconciler().run()
    assert photos(tmp_path / "lap") == {**sent, **other}  # the awaiting one too
    assert result.dead_letters_cleared == 1
    assert "cleared a dead letter" in caplog.text
    # The main PC's letter stays, visible at once: that one is really stuck.
    assert cloud.counts(dlq) == (1, 0)
    letter = cloud.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"][0]
    assert letter["MessageAttributes"]["pc"]["StringValue"] == "main"
    assert (
        json.loads(letter["Body"])["sha256"]
        == hashlib.sha256(next(iter(other.values()))).hexdigest()
    )


def test_a_clean_stop_hands_the_queue_over_at_once(cloud: Cloud, tmp_path: Path) -> None:
    old = make_agent(cloud, tmp_path / "old-disk", host="desk")
    stop = threading.Event()
    runner = threading.Thread(target=old.run, args=(stop,))
    runner.start()
    new = make_agent(cloud, tmp_path / "new-disk", host="desk")
    try:
        deadline = time.monotonic() + 30
        while (pc := old.pc_registry_entry()) is None or pc.library_id is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(PcInUseError):
            new.claim_pc()
    finally:
        stop.set()
        runner.join(30)
        old.close()
    new.claim_pc()  # the old library let go when it stopped: no 5-minute wait


def test_an_unregistered_pc_name_is_one_clear_line(cloud: Cloud, tmp_path: Path) -> None:
    env = {**os.environ, **agent_environment(cloud.settings, tmp_path / "lib"), "COLUMNS": "400"}
    result = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "agent", "run", "--pc", "garage"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: no PC named 'garage' is registered: run `mobile-backup agent register garage`"
    ]


def test_a_bad_copy_on_one_pcs_queue_is_retried_there_and_harms_no_other_pc(
    cloud: Cloud, tmp_path: Path
) -> None:
    laptop = register_pc(cloud.settings, "laptop")
    desk = make_agent(cloud, tmp_path / "desk", host="desk")
    lap = make_agent(cloud, tmp_path / "lap", pc="laptop", host="lap")
    sent = phone_uploads(cloud, 1)
    drain(desk)
    # The object changes under the laptop (bit rot, a bad copy): it must not be filed.
    sha = hashlib.sha256(next(iter(sent.values()))).hexdigest()
    cloud.s3.put_object(
        Bucket=cloud.settings.require("bucket"), Key=object_key(SUB, sha), Body=b"rotten"
    )
    assert lap.poll_once(wait_seconds=0) == 1
    assert photos(tmp_path / "lap") == {}
    # Kept on the laptop's queue for a later try (hidden for the backoff), not deleted...
    assert sum(cloud.counts(laptop.queue_url)) == 1
    # ...and the first PC's receipt stands: one PC's trouble never unsays another's.
    record = cloud.ledger.get(SUB, sha)
    assert record is not None
    assert record.status == "downloaded"
    assert set(record.receipts) == {"main"}


@pytest.mark.parametrize(
    ("passes", "lag"),
    [(3600.0, 0), (None, 0), (3600.0, 3600)],
    ids=["periodic-passes", "passes-off", "pc-clock-an-hour-behind"],
)
def test_check_now_starts_a_running_pcs_check_at_its_next_heartbeat(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    passes: float | None,
    lag: int,
) -> None:
    """The app's "Check now": the registry records the request, the running agent sees it
    at its next heartbeat and checks its copies at once, not at its next pass an hour away
    (or never, with periodic passes turned off). Each request is answered once, even by a
    PC whose clock lags the cloud's (its checks all look older than the request)."""
    from mobile_backup.agent import _loop

    monkeypatch.setattr(_loop, "HEARTBEAT_SECONDS", 0.2)
    sent = phone_uploads(cloud, 2)
    agent = agent_for(
        cloud, tmp_path / "library", host="desk",
        clock=lambda: utcnow() - timedelta(seconds=lag),
        config=AgentConfig(reconcile_interval=passes),
    )  # fmt: skip
    registry = cloud.ledger.pc_registry()

    def audited() -> datetime | None:
        pc = registry.get("main")
        return pc.audited_at if pc else None

    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        # Periodic passes start with one; with them off nothing checks until asked.
        while len(photos(tmp_path / "library")) < len(sent) or (passes and audited() is None):
            assert time.monotonic() < deadline, "the files or the start's pass never came"
            time.sleep(0.1)
        first = audited()
        assert (first is None) == (passes is None)
        time.sleep(0.6)  # heartbeats meanwhile start nothing: nobody asked
        assert audited() == first

        asked = registry.request_check(utcnow())
        assert [p.name for p in asked] == ["main"]
        requested = asked[0].check_requested_at
        assert requested is not None
        while (checked := audited()) == first:
            assert time.monotonic() < deadline + 30, "the request was never acted on"
            time.sleep(0.1)
        assert checked is not None
        assert checked >= requested - timedelta(seconds=lag)
        # One request, one check: later heartbeats see the same request and do nothing.
        time.sleep(1.0)
        assert audited() == checked
    finally:
        stop.set()
        runner.join(30)
        agent.close()
