"""The upload engine over real HTTP: faults injected by a loopback proxy, dedupe, journal."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _uploadkit import (
    MIB,
    Account,
    Proxy,
    api_server,
    every,
    random_file,
    s3_for,
    sign_up,
)

from conftest import settings_for
from mobile_backup.aws import dynamodb_client, s3_client
from mobile_backup.client import (
    DUPLICATE,
    FAILED,
    UPLOADED,
    ApiClient,
    FileResult,
    FileStamp,
    Journal,
    RetryPolicy,
    Uploader,
)
from mobile_backup.client import _preparing as preparing_module
from mobile_backup.client import _upload as upload_module
from mobile_backup.client._parts import hash_file
from mobile_backup.core import Settings, object_key
from mobile_backup.ledger import Ledger
from mobile_backup.ledger._items import file_sk, user_pk
from mobile_backup.local import provision

pytestmark = pytest.mark.integration

PART = 5 * MIB
FAST = RetryPolicy(attempts=8, initial=0.02, maximum=0.2)


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"ue{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def cfg(stack: Any) -> Settings:
    return settings_for(stack)


class Net:
    """The API and S3, each behind its own counting proxy; `fault` applies to both."""

    def __init__(self, api: Proxy, s3: Proxy) -> None:
        self.api = api
        self.s3 = s3

    def puts(self) -> int:
        return len(self.s3.requests(lambda s: s.is_put))


@pytest.fixture(scope="module")
def net(cfg: Settings, emulator: Any) -> Iterator[Net]:
    with (
        Proxy(emulator.endpoint_url) as s3_proxy,
        api_server(cfg, s3=s3_for(s3_proxy.url)) as server,
        Proxy(server.url) as api_proxy,
    ):
        yield Net(api_proxy, s3_proxy)


@pytest.fixture
def clean_net(net: Net) -> Iterator[Net]:
    net.api.seen.clear()
    net.s3.seen.clear()
    net.api.fault = net.s3.fault = None
    yield net
    net.api.fault = net.s3.fault = None


@pytest.fixture
def alice(stack: Any, cfg: Settings, tmp_path: Path) -> Account:
    return sign_up(stack, cfg, tmp_path)


def uploader(user: Account, net: Net, **kwargs: Any) -> Uploader:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("multipart_threshold", PART)
    kwargs.setdefault("part_size", PART)
    return Uploader(api=user.api(net.api.url), **kwargs)


def stored(cfg: Settings, user: Account, sha: str) -> str:
    body = s3_client(cfg, component="test").get_object(
        Bucket=cfg.require("bucket"), Key=object_key(user.sub, sha)
    )
    return hashlib.sha256(body["Body"].read()).hexdigest()


def test_a_batch_finishes_through_resets_and_503s(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    files = {
        tmp_path / f"IMG_{i:03}.jpg": random_file(tmp_path / f"IMG_{i:03}.jpg", 20_000 + i)
        for i in range(12)
    }
    files[tmp_path / "VID.mp4"] = random_file(tmp_path / "VID.mp4", 3 * PART + 5)
    # Every third request to the API and to S3 fails: 503, a reset before the server sees
    # it, or a reset after the server acted (the answer is lost), in turn.
    clean_net.api.fault = every(3)
    clean_net.s3.fault = every(3)
    summary = uploader(alice, clean_net).upload(list(files))
    assert [(r.path.name, r.status) for r in summary.results] == [
        (p.name, UPLOADED) for p in files
    ], [r.reason for r in summary.results]
    for sha in files.values():
        assert stored(cfg, alice, sha) == sha
    injected = [s.action for s in clean_net.s3.seen + clean_net.api.seen if s.action]
    assert {"503", "reset", "reset-after"} <= set(injected)


def test_one_files_failure_does_not_stop_the_others(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    good = tmp_path / "IMG_ok.jpg"
    sha = random_file(good, 5000)
    gone = tmp_path / "IMG_gone.jpg"  # never existed: cannot be read
    rewritten: list[bool] = []
    changing = tmp_path / "VID_changing.mp4"
    random_file(changing, 2 * PART)
    results: list[FileResult] = []

    class Rewrite:
        """Rewrites the video once its first part is on the way: it changed mid-upload."""

        def on_queued(self, *, path: Path, size: int) -> None: ...

        def on_progress(self, *, path: Path, bytes_sent: int) -> None:
            if path == changing and not rewritten:
                rewritten.append(True)
                changing.write_bytes(b"x" * (2 * PART))

        def on_resumed(self, *, path: Path, bytes_held: int) -> None: ...

        def on_done(self, *, result: FileResult) -> None:
            results.append(result)

    summary = uploader(alice, clean_net, subscribers=[Rewrite()], parallel=1).upload(
        [gone, good, changing]
    )
    by_name = {r.path.name: r for r in summary.results}
    assert by_name["IMG_ok.jpg"].status == UPLOADED
    assert by_name["IMG_gone.jpg"].status == FAILED
    assert "cannot read" in (by_name["IMG_gone.jpg"].reason or "")
    assert by_name["VID_changing.mp4"].status == FAILED
    assert "changed" in (by_name["VID_changing.mp4"].reason or "")
    assert sorted(r.path.name for r in results) == sorted(by_name)  # on_done once per file
    assert stored(cfg, alice, sha) == sha


def test_a_duplicate_sends_no_bytes(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    photo, video = tmp_path / "IMG_dup.jpg", tmp_path / "VID_dup.mp4"
    shas = [random_file(photo, 40_000), random_file(video, PART + 1)]
    first = uploader(alice, clean_net).upload([photo, video])
    assert [r.status for r in first.results] == [UPLOADED, UPLOADED]
    # What the ingest does once S3 announces the objects.
    ledger = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table"))
    for path, sha in zip((photo, video), shas, strict=True):
        ledger.mark_uploaded(alice.sub, sha, size=path.stat().st_size, now=datetime.now(UTC))
    clean_net.s3.seen.clear()
    # A fresh journal: only the API can tell these are backed up.
    again = uploader(alice, clean_net).upload([photo, video])
    assert [(r.status, r.bytes_sent) for r in again.results] == [(DUPLICATE, 0), (DUPLICATE, 0)]
    assert clean_net.puts() == 0


def test_the_same_content_under_two_names_is_sent_once(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    """Issue 9, item 2: one PUT per content in a run; the copies name the file sent."""
    photo, video = tmp_path / "IMG_a.jpg", tmp_path / "VID_a.mp4"
    sha_photo, sha_video = random_file(photo, 30_000), random_file(video, PART + 7)
    copies = [tmp_path / "IMG_a copy.jpg", tmp_path / "VID_a copy.mp4"]
    for original, copy in zip((photo, video), copies, strict=True):
        copy.write_bytes(original.read_bytes())
    summary = uploader(alice, clean_net).upload([photo, copies[0], video, copies[1]])
    got = [(r.path.name, r.status, r.reason) for r in summary.results]
    assert got == [
        ("IMG_a.jpg", UPLOADED, None),
        ("IMG_a copy.jpg", DUPLICATE, "same content as IMG_a.jpg"),
        ("VID_a.mp4", UPLOADED, None),
        ("VID_a copy.mp4", DUPLICATE, "same content as VID_a.mp4"),
    ]
    puts = clean_net.s3.requests(lambda r: r.is_put)
    assert len([r for r in puts if sha_photo in r.path]) == 1  # one PUT of the photo
    assert len([r for r in puts if sha_video in r.path]) == 2  # the video's two parts, once
    assert summary.bytes_sent == photo.stat().st_size + video.stat().st_size


def test_the_journal_spares_the_hashing_never_the_question(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    """Issue 9, item 3: "already backed up" only when the current deployment's ledger says so.

    Five photos go up; the ledger then loses them (a local stack that restarted, a new
    deployment at the same address). The same journal must not answer "already backed up":
    the API is asked, and the photos go again, without being hashed again.
    """
    files = [tmp_path / f"IMG_{i}.jpg" for i in range(5)]
    shas = [random_file(f, 10_000) for f in files]
    journal = Journal(tmp_path / "journal.db")
    first = uploader(alice, clean_net, journal=journal).upload(files)
    assert {r.status for r in first.results} == {UPLOADED}
    assert len(clean_net.api.seen) == 1  # one presign batch for five photos
    ledger = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table"))
    for path, sha in zip(files, shas, strict=True):  # what the ingest does
        ledger.mark_uploaded(alice.sub, sha, size=path.stat().st_size, now=datetime.now(UTC))

    hashed: list[Path] = []
    real_hash = hash_file

    def counting_hash(path: Path, **kwargs: Any) -> Any:
        hashed.append(path)
        return real_hash(path, **kwargs)

    monkeypatch.setattr(preparing_module, "hash_file", counting_hash)
    again = uploader(alice, clean_net, journal=Journal(tmp_path / "journal.db")).upload(files)
    assert {(r.status, r.bytes_sent) for r in again.results} == {(DUPLICATE, 0)}
    assert len(clean_net.api.seen) == 2  # the ledger was asked, once for the batch
    dynamodb_client(cfg, component="test").batch_write_item(  # the deployment forgets them
        RequestItems={
            cfg.require("table"): [
                {
                    "DeleteRequest": {
                        "Key": {"pk": {"S": user_pk(alice.sub)}, "sk": {"S": file_sk(sha)}}
                    }
                }
                for sha in shas
            ]
        }
    )
    clean_net.s3.seen.clear()
    third = uploader(alice, clean_net, journal=Journal(tmp_path / "journal.db")).upload(files)
    assert {r.status for r in third.results} == {UPLOADED}
    assert clean_net.puts() == len(files)
    assert hashed == []  # the journal's cached hashes were used every time


def test_cancel_stops_and_a_new_run_finishes_without_resending_parts(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    video = tmp_path / "VID_long.mp4"
    sha = random_file(video, 6 * PART)
    journal = Journal(tmp_path / "journal.db")
    engine = uploader(alice, clean_net, journal=journal, parallel=1)
    sent_parts = threading.Event()

    class StopAfterTwoParts:
        def __init__(self) -> None:
            self.bytes = 0

        def on_queued(self, *, path: Path, size: int) -> None: ...

        def on_progress(self, *, path: Path, bytes_sent: int) -> None:
            self.bytes += bytes_sent
            if self.bytes >= 2 * PART and not sent_parts.is_set():
                sent_parts.set()
                engine.cancel()

        def on_resumed(self, *, path: Path, bytes_held: int) -> None: ...

        def on_done(self, *, result: FileResult) -> None: ...

    engine._engine.subscribers.append(StopAfterTwoParts())
    first = engine.upload([video])
    assert first.results[0].status == "cancelled"
    assert not first.ok
    done_before = {
        s.part_number for s in clean_net.s3.requests(lambda s: s.is_part_put and s.status == 200)
    }
    assert 2 <= len(done_before) < 6
    second = uploader(alice, clean_net, journal=Journal(tmp_path / "journal.db")).upload([video])
    assert second.results[0].status == UPLOADED
    assert second.results[0].bytes_sent == (6 - len(done_before)) * PART
    ok_parts = [s.part_number or 0 for s in clean_net.s3.requests(lambda s: s.is_part_put)]
    assert sorted(ok_parts) == [1, 2, 3, 4, 5, 6]
    assert stored(cfg, alice, sha) == sha


def test_the_first_puts_start_before_the_rest_is_hashed(
    clean_net: Net, alice: Account, tmp_path: Path, monkeypatch: Any
) -> None:
    """A folder of photos starts moving once the first few are hashed: the first presign
    batch is `FIRST_BATCH` files, each batch after it twice the one before (up to 100)."""
    files = [tmp_path / f"IMG_{i:02d}.jpg" for i in range(75)]
    for f in files:
        random_file(f, 20_000)
    first = set(files[: upload_module.FIRST_BATCH])
    put_before_hashing: list[bool] = []
    real_hash = hash_file

    def hash_after_a_put(path: Path, **kwargs: Any) -> Any:
        if path not in first:  # a later batch: wait (a while) for the first batch's PUTs
            deadline = time.monotonic() + 10
            while not clean_net.puts() and time.monotonic() < deadline:
                time.sleep(0.01)
            put_before_hashing.append(clean_net.puts() > 0)
        return real_hash(path, **kwargs)

    batches: list[int] = []
    real_request = ApiClient.request_uploads

    def request_uploads(self: ApiClient, metas: Any) -> Any:
        batches.append(len(metas))
        return real_request(self, metas)

    monkeypatch.setattr(preparing_module, "hash_file", hash_after_a_put)
    monkeypatch.setattr(ApiClient, "request_uploads", request_uploads)
    summary = uploader(alice, clean_net).upload(files)
    assert {r.status for r in summary.results} == {UPLOADED}
    assert put_before_hashing == [True] * (len(files) - len(first))
    assert batches == [10, 20, 40, 5]
    assert len(clean_net.api.seen) == len(batches)


def test_a_dry_run_of_many_batches_answers_each_file_with_lookups_in_flight_together(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    """A dry run of 650 files (7 lookups of 100, up to 4 in flight at once): each file gets
    the ledger's answer for its own content, in the order given, and nothing is sent."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.client import WOULD_UPLOAD
    from mobile_backup.core import utcnow
    from mobile_backup.ledger import Ledger

    folder = tmp_path / "phone"
    folder.mkdir()
    files = [folder / f"IMG_{i:04}.jpg" for i in range(650)]
    for i, path in enumerate(files):
        path.write_bytes(b"\xff\xd8\xff\xe0" + f"photo {i}".encode())
    sent = uploader(alice, clean_net).upload(files[::5])  # every fifth is backed up
    assert {r.status for r in sent.results} == {UPLOADED}
    ledger = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table"))
    for r in sent.results:  # what the ingest does when S3 tells it (no ingest runs here)
        assert r.sha256 is not None
        ledger.mark_uploaded(alice.sub, r.sha256, size=r.size, now=utcnow())
    puts = clean_net.puts

    journal = Journal(tmp_path / "journal.sqlite3")
    dry = uploader(alice, clean_net, journal=journal).dry_run(files)

    assert [r.path for r in dry.results] == files
    for i, r in enumerate(dry.results):
        assert r.status == (DUPLICATE if i % 5 == 0 else WOULD_UPLOAD), (r.path.name, r.reason)
    assert clean_net.puts == puts  # nothing sent
    lookups = [s for s in clean_net.api.seen if s.path.endswith("/v1/files/lookup")]
    assert len(lookups) == 7
    # Every hash made went into the journal (a batch per transaction): the next run, after
    # the journal is closed and opened again, hashes nothing.
    journal.close()
    again = Journal(tmp_path / "journal.sqlite3")
    for path in files:
        assert again.cached_hash(path, FileStamp.of(path)) is not None, path.name


def test_a_dry_run_of_small_files_hashes_them_on_one_thread(
    clean_net: Net, alice: Account, tmp_path: Path, monkeypatch: Any
) -> None:
    """Small files hash faster on one thread than on two (the GIL's hand-overs cost more
    than the hashing they share: B9), so a dry run of a folder of them uses one."""
    folder = tmp_path / "phone"
    folder.mkdir()
    files = [folder / f"IMG_{i:04}.jpg" for i in range(300)]
    for i, path in enumerate(files):
        path.write_bytes(b"\xff\xd8\xff\xe0" + f"small photo {i}".encode() * 100)
    threads: set[str] = set()
    real_hash = hash_file

    def hash_and_say_where(path: Path, **kwargs: Any) -> Any:
        threads.add(threading.current_thread().name)
        time.sleep(0.001)  # (two threads, were there two, would both have work)
        return real_hash(path, **kwargs)

    monkeypatch.setattr(preparing_module, "hash_file", hash_and_say_where)
    dry = uploader(alice, clean_net, parallel=4).dry_run(files)
    assert len(dry.results) == len(files)
    assert len(threads) == 1, threads


def test_a_first_dry_run_of_many_files_reads_the_members_list_instead_of_asking(
    clean_net: Net, alice: Account, cfg: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    """A first dry run of a folder of years (issue 32) reads the member's contents and
    statuses, a page of up to thousands at a time, instead of a lookup per 100 files, and
    answers each file the same; the next run asks about nothing (the list was whole)."""
    from mobile_backup.client import WOULD_UPLOAD
    from mobile_backup.client import _ledger_mirror as mirror_module
    from mobile_backup.core import utcnow
    from mobile_backup.ledger import _listings

    monkeypatch.setattr(mirror_module, "LIST_FROM", 100)  # instead of a folder of 1,000
    monkeypatch.setattr(_listings, "STATUS_PAGE", 2)  # pages (the API runs in this process)
    folder = tmp_path / "phone"
    folder.mkdir()
    files = [folder / f"IMG_{i:04}.jpg" for i in range(150)]
    for i, path in enumerate(files):
        path.write_bytes(b"\xff\xd8\xff\xe0" + f"listed photo {i}".encode())
    sent = uploader(alice, clean_net).upload(files[::3])
    ledger = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table"))
    for r in sent.results:
        assert r.sha256 is not None
        ledger.mark_uploaded(alice.sub, r.sha256, size=r.size, now=utcnow())
    journal = Journal(tmp_path / "journal.sqlite3")

    class Phases:
        """Says which phase each was told in, with the list reads made by then."""

        def __init__(self) -> None:
            self.told: list[tuple[str, int]] = []

        def on_phase(self, *, what: str) -> None:
            reads = [c for c in clean_net.api.seen if c.path.startswith("/v1/files/statuses")]
            self.told.append((what, len(reads)))

        def on_queued(self, **_: Any) -> None: ...
        def on_progress(self, **_: Any) -> None: ...
        def on_resumed(self, **_: Any) -> None: ...
        def on_done(self, **_: Any) -> None: ...

    for first in (True, False):
        clean_net.api.seen.clear()
        phases = Phases()
        dry = uploader(alice, clean_net, journal=journal, subscribers=[phases]).dry_run(files)
        # The bar says "reading the ledger" before the list is read, then "hashing".
        assert [what for what, _ in phases.told] == ["reading the ledger", "hashing"]
        assert phases.told[0][1] == 0
        assert (phases.told[1][1] > 16) == first
        assert [r.path for r in dry.results] == files
        for i, r in enumerate(dry.results):
            assert r.status == (DUPLICATE if i % 3 == 0 else WOULD_UPLOAD), (r.path.name, r.reason)
        paths = [c.path.split("?")[0] for c in clean_net.api.seen]
        assert "/v1/files/lookup" not in paths
        if first:  # 16 ranges, 50 entries: one range at least has 4, in 2 pages or more
            assert paths.count("/v1/files/statuses") > 16
        else:  # the changes since, only
            assert "/v1/files/statuses" not in paths
            assert "/v1/files" in paths


def test_a_second_dry_run_reads_only_what_changed_since_the_first(
    clean_net: Net, alice: Account, stack: Any, cfg: Settings, tmp_path: Path
) -> None:
    """The journal keeps the ledger's answers between dry runs (issue 32): the next run reads
    only the entries changed since (the change index), asks about no content it asked about
    before, and still says what changed; another member's run on the same journal file does
    not take them."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.client import WOULD_UPLOAD
    from mobile_backup.core import Receipt, utcnow
    from mobile_backup.ledger import Ledger

    folder = tmp_path / "phone"
    folder.mkdir()
    files = [folder / f"IMG_{i:04}.jpg" for i in range(150)]
    for i, path in enumerate(files):
        path.write_bytes(b"\xff\xd8\xff\xe0" + f"mirrored photo {i}".encode())
    ledger = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table"))
    sent = uploader(alice, clean_net).upload(files[:100])
    for r in sent.results:
        assert r.sha256 is not None
        ledger.mark_uploaded(alice.sub, r.sha256, size=r.size, now=utcnow())
    journal = Journal(tmp_path / "journal.sqlite3")

    def dry_run(who: Account = alice) -> tuple[list[str], list[str], list[Any]]:
        clean_net.api.seen.clear()
        dry = uploader(who, clean_net, journal=journal).dry_run(files)
        assert [r.path for r in dry.results] == files
        reasons = [r.reason or r.status for r in dry.results]
        calls = list(clean_net.api.seen)
        return reasons, [c.path for c in calls if c.path.endswith("/lookup")], calls

    first, lookups, _ = dry_run()
    assert len(lookups) == 2
    assert first == ["already backed up, in the cloud, not on a PC yet"] * 100 + [WOULD_UPLOAD] * 50

    second, lookups, calls = dry_run()
    assert second == first
    assert lookups == []
    assert [(c.path, "changed_since" in c.query) for c in calls] == [("/v1/files", True)]

    # A PC files one; the phone sends another: the next dry run says so, still asking nothing.
    on_pc = sent.results[0].sha256
    assert on_pc is not None
    receipt = Receipt(host="pc", path="2026/01/IMG_0000.jpg", sha256=on_pc, at=utcnow())
    ledger.mark_downloaded(alice.sub, on_pc, receipt)
    late = uploader(alice, clean_net).upload(files[120:121]).results[0]
    assert late.sha256 is not None
    ledger.mark_uploaded(alice.sub, late.sha256, size=late.size, now=utcnow())
    third, lookups, _ = dry_run()
    assert lookups == []
    assert third[0] == "already backed up, on the PC"
    assert third[120] == "already backed up, in the cloud, not on a PC yet"
    assert third[1:120] == first[1:120]
    assert third[121:] == first[121:]

    # Another member on the same journal file: alice's answers are not theirs.
    bob = sign_up(stack, cfg, tmp_path)
    theirs, lookups, _ = dry_run(bob)
    assert theirs == [WOULD_UPLOAD] * 150
    assert len(lookups) == 2
