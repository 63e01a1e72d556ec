"""UploadService without HTTP: a real (offline) boto3 presigner and an in-memory ledger."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import offline_presigner
from mobile_backup.api import Principal
from mobile_backup.api._service import UploadService
from mobile_backup.aws import Bucket
from mobile_backup.core import FileMeta, FileRecord, FileStatus, MobileBackupError, ServiceError
from mobile_backup.core.wire import UploadRequest

NOW = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
ALICE = Principal(sub="11111111-2222-3333-4444-555555555555", username="alice")


class MemoryLedger:
    """Just enough of `Ledger` for the service: reads and reserve return the stored status."""

    def __init__(self, statuses: dict[str, FileStatus] | None = None) -> None:
        self.statuses = statuses or {}
        self.reserved: list[tuple[str, str, dict[str, Any]]] = []
        self.created: list[str] = []
        """Reserved as new (`absent`): a conditional PutItem on the real ledger."""
        self.tallied: list[dict[str, dict[str, int]]] = []
        """The count changes written, one entry per `write_tally`."""

    def get_many(self, user_sub: str, sha256s: Any, **_: Any) -> dict[str, FileRecord]:
        return {
            sha: FileRecord(
                user_sub=user_sub,
                sha256=sha,
                filename="stored.jpg",
                size=1,
                content_type="image/jpeg",
                status=self.statuses[sha],
                created_at=NOW,
            )
            for sha in sha256s
            if sha in self.statuses
        }

    def reserve(
        self,
        user_sub: str,
        file: FileMeta,
        *,
        now: datetime,
        owner_name: str | None = None,
        absent: bool = False,
        tally: Any = None,
    ) -> FileRecord:
        meta = {k: v for k, v in file.fields().items() if k != "sha256"}
        self.reserved.append((user_sub, file.sha256, meta))
        if tally is not None and file.sha256 not in self.statuses:
            tally.add(user_sub, None, FileStatus.PENDING)
        if absent:
            self.created.append(file.sha256)
        return FileRecord(
            user_sub=user_sub,
            sha256=file.sha256,
            filename=file.filename,
            size=file.size,
            content_type=file.content_type,
            status=self.statuses.get(file.sha256, FileStatus.PENDING),
            created_at=now,
        )

    def write_tally(self, tally: Any) -> int:
        taken = tally.take()
        self.tallied.append(taken)
        return len(taken)


def service(ledger: MemoryLedger, presigner: Any = None) -> UploadService:
    return UploadService(
        ledger=ledger,  # type: ignore[arg-type]
        objects=Bucket(presigner or offline_presigner(), "media-bucket"),
        clock=lambda: NOW,
        expiry_seconds=600,
    )


def entry(content: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "filename": "a.jpg",
        "content_type": "image/jpeg",
        **extra,
    }


def request(*entries: dict[str, Any]) -> UploadRequest:
    return UploadRequest.model_validate({"files": list(entries)})


def test_a_new_file_gets_a_put_signed_for_its_length_type_and_checksum() -> None:
    ledger = MemoryLedger()
    content = b"photo bytes"
    (result,) = service(ledger).plan(ALICE, request(entry(content, device="phone"))).results
    sha = hashlib.sha256(content).hexdigest()
    assert result.status == "upload"
    assert result.upload is not None
    assert result.upload.expires_at == NOW + timedelta(seconds=600)
    assert result.upload.headers == {
        "Content-Length": str(len(content)),
        "Content-Type": "image/jpeg",
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(content).digest()).decode(),
    }
    url = urlsplit(result.upload.url)
    assert url.path == f"/media-bucket/media/{ALICE.sub}/{sha}"
    query = parse_qs(url.query)
    assert query["X-Amz-SignedHeaders"] == [
        "content-length;content-type;host;x-amz-checksum-sha256"
    ]
    assert query["X-Amz-Expires"] == ["600"]
    assert ledger.reserved == [
        (
            ALICE.sub,
            sha,
            {
                "filename": "a.jpg",
                "size": len(content),
                "content_type": "image/jpeg",
                "taken_at": None,
                "device": "phone",
                "taken_at_source": None,
            },
        )
    ]


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (FileStatus.PENDING, "upload"),
        (FileStatus.FAILED, "upload"),
        (FileStatus.UPLOADED, "duplicate"),
        (FileStatus.DOWNLOADED, "duplicate"),
    ],
)
def test_the_ledger_decides_duplicate_or_upload(status: FileStatus, answer: str) -> None:
    sha = entry(b"x")["sha256"]
    (result,) = service(MemoryLedger({sha: status})).plan(ALICE, request(entry(b"x"))).results
    assert result.status == answer
    assert (result.upload is None) is (answer == "duplicate")


def test_answers_keep_request_order_and_only_new_files_are_reserved_once() -> None:
    ledger = MemoryLedger(
        {
            entry(b"old")["sha256"]: FileStatus.UPLOADED,
            entry(b"retry")["sha256"]: FileStatus.PENDING,
        }
    )
    entries = [entry(b"new"), entry(b"old"), entry(b"new", filename="copy.jpg"), entry(b"z"),
               entry(b"retry")]  # fmt: skip
    results = service(ledger).plan(ALICE, request(*entries)).results
    assert [r.sha256 for r in results] == [e["sha256"] for e in entries]
    assert [r.status for r in results] == ["upload", "duplicate", "upload", "upload", "upload"]
    assert results[0] == results[2]
    # Reservations run concurrently, so their order is not the request's.
    assert sorted(sha for _, sha, _ in ledger.reserved) == sorted(
        [entry(b"new")["sha256"], entry(b"z")["sha256"], entry(b"retry")["sha256"]]
    )
    # Only what the batch read did not find is created (a conditional PutItem); a pending
    # entry is a retry, refreshed by the update.
    assert sorted(ledger.created) == sorted([entry(b"new")["sha256"], entry(b"z")["sha256"]])


def test_a_presigning_failure_is_a_service_error() -> None:
    from botocore.exceptions import NoCredentialsError

    class Broken:
        def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str:
            raise NoCredentialsError

    from mobile_backup.api.exceptions import status_for

    with pytest.raises(MobileBackupError, match="no AWS credentials") as raised:
        service(MemoryLedger(), Broken()).plan(ALICE, request(entry(b"x")))
    assert status_for(raised.value) == 503  # the backend's problem, not the caller's


def test_a_bug_while_presigning_stays_a_bug_not_a_503() -> None:
    class Buggy:
        def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str:
            raise KeyError("a bug of ours")

    with pytest.raises(KeyError):
        service(MemoryLedger(), Buggy()).plan(ALICE, request(entry(b"x")))


def test_a_file_uploaded_since_the_batch_read_is_still_a_duplicate() -> None:
    # The batch read saw nothing; the conditional reservation learns it is uploaded now.
    sha = entry(b"x")["sha256"]

    class Racing(MemoryLedger):
        def get_many(self, user_sub: str, sha256s: Any, **_: Any) -> dict[str, FileRecord]:
            return {}

    ledger = Racing({sha: FileStatus.UPLOADED})
    (result,) = service(ledger).plan(ALICE, request(entry(b"x"))).results
    assert result.status == "duplicate"
    assert [s for _, s, _ in ledger.reserved] == [sha]


def test_a_failed_reservation_fails_the_batch() -> None:
    class Failing(MemoryLedger):
        def reserve(
            self,
            user_sub: str,
            file: FileMeta,
            *,
            now: datetime,
            owner_name: str | None = None,
            absent: bool = False,
            tally: Any = None,
        ) -> FileRecord:
            if file.sha256 == entry(b"bad")["sha256"]:
                raise ServiceError("could not write the ledger: throttled")
            return super().reserve(user_sub, file, now=now, tally=tally)

    batch = request(entry(b"a"), entry(b"bad"), entry(b"c"))
    ledger = Failing()
    with pytest.raises(ServiceError, match="write the ledger"):
        service(ledger).plan(ALICE, batch)
    # The reservations that were made are counted all the same, once.
    assert ledger.tallied == [{ALICE.sub: {"pending": 2}}]
