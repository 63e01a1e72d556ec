"""The multipart routes over real HTTP against the emulator, with real users and tokens."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from _uploadkit import MIB, Account, api_server, sign_up
from botocore.exceptions import ClientError

from conftest import settings_for
from mobile_backup.aws import dynamodb_client, s3_client
from mobile_backup.core import Settings, object_key
from mobile_backup.ledger import Ledger
from mobile_backup.local import provision

pytestmark = pytest.mark.integration

PART = 5 * MIB


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    # One stack for the module; every test signs up its own users, whose keys are their own.
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"mp{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def cfg(stack: Any) -> Settings:
    return settings_for(stack)


@pytest.fixture(scope="module")
def api(cfg: Settings) -> Iterator[httpx.Client]:
    with api_server(cfg) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def alice(stack: Any, cfg: Settings, tmp_path: Path) -> Account:
    return sign_up(stack, cfg, tmp_path)


@pytest.fixture
def bob(stack: Any, cfg: Settings, tmp_path: Path) -> Account:
    return sign_up(stack, cfg, tmp_path)


def auth(user: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.auth.access_token()}"}


def b64crc(data: bytes) -> str:
    """base64 CRC64NVME, as S3 takes it (awscrt; checked against a reference in unit tests)."""
    from awscrt.checksums import crc64nvme

    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()


class Video:
    """Random content cut into 5 MiB parts."""

    def __init__(self, size: int) -> None:
        self.data = os.urandom(size)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.parts = [self.data[i : i + PART] for i in range(0, size, PART)]
        self.checksums = [b64crc(p) for p in self.parts]
        self.crc64nvme = b64crc(self.data)

    def start_body(self, *, numbers: list[int] | None = None, **extra: Any) -> dict[str, Any]:
        numbers = numbers if numbers is not None else list(range(1, len(self.parts) + 1))
        body: dict[str, Any] = {
            "sha256": self.sha256,
            "size": len(self.data),
            "filename": "VID_0001.mp4",
            "content_type": "video/mp4",
            "part_size": PART,
            "crc64nvme": self.crc64nvme,
            "parts": [{"number": n, "checksum_crc64nvme": self.checksums[n - 1]} for n in numbers],
        }
        body.update(extra)
        return body


def start(api: httpx.Client, user: Account, video: Video, **extra: Any) -> dict[str, Any]:
    resp = api.post("/v1/uploads/multipart", json=video.start_body(**extra), headers=auth(user))
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def put_parts(
    video: Video, parts: list[dict[str, Any]], *, skip: frozenset[int] = frozenset()
) -> None:
    for part in parts:
        if part["number"] in skip:
            continue
        resp = httpx.put(
            part["url"], content=video.parts[part["number"] - 1], headers=part["headers"]
        )
        assert resp.status_code == 200, resp.text


def complete(api: httpx.Client, user: Account, video: Video, upload_id: str) -> httpx.Response:
    body = {
        "sha256": video.sha256,
        "upload_id": upload_id,
        "part_size": PART,
        "checksums": video.checksums,
    }
    return api.post("/v1/uploads/multipart/complete", json=body, headers=auth(user))


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code


def test_parts_signed_by_the_api_assemble_the_file_at_the_users_key(
    api: httpx.Client, alice: Account, cfg: Settings
) -> None:
    video = Video(12 * MIB + 17)
    ticket = start(api, alice, video)
    assert ticket["status"] == "upload"
    assert ticket["part_size"] == PART
    assert ticket["part_count"] == 3
    assert ticket["completed"] == []
    for part, checksum in zip(ticket["parts"], video.checksums, strict=True):
        assert part["headers"]["x-amz-checksum-crc64nvme"] == checksum
    assert [p["headers"]["Content-Length"] for p in ticket["parts"]] == [
        str(PART),
        str(PART),
        str(2 * MIB + 17),
    ]
    put_parts(video, ticket["parts"])
    resp = complete(api, alice, video, ticket["upload_id"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"sha256": video.sha256, "status": "uploaded"}
    body = (
        s3_client(cfg, component="test")
        .get_object(Bucket=cfg.require("bucket"), Key=object_key(alice.sub, video.sha256))["Body"]
        .read()
    )
    assert body == video.data
    # Completing again (an answer lost on the way) is still a success.
    assert complete(api, alice, video, ticket["upload_id"]).status_code == 200


def test_a_backed_up_file_is_a_duplicate(api: httpx.Client, alice: Account, cfg: Settings) -> None:
    video = Video(6 * MIB)
    start(api, alice, video, numbers=[])
    Ledger(dynamodb_client(cfg, component="test"), cfg.require("table")).mark_uploaded(
        alice.sub, video.sha256, size=len(video.data), now=datetime.now(UTC)
    )
    ticket = start(api, alice, video)
    assert ticket["status"] == "duplicate"
    assert ticket["parts"] == []
    assert ticket["upload_id"] is None


def test_starting_again_resumes_the_same_upload_with_the_parts_held(
    api: httpx.Client, alice: Account
) -> None:
    video = Video(11 * MIB)
    first = start(api, alice, video)
    put_parts(video, first["parts"], skip=frozenset({2}))
    again = start(api, alice, video, numbers=[2])
    assert again["upload_id"] == first["upload_id"]
    assert [(p["number"], p["size"]) for p in again["completed"]] == [(1, PART), (3, MIB)]
    assert [p["number"] for p in again["parts"]] == [2]


def test_completing_with_a_part_missing_is_refused(api: httpx.Client, alice: Account) -> None:
    video = Video(11 * MIB)
    ticket = start(api, alice, video)
    put_parts(video, ticket["parts"], skip=frozenset({2}))
    resp = complete(api, alice, video, ticket["upload_id"])
    assert_error(resp, 400, "upload_incomplete")
    assert "2" in resp.json()["message"]


def test_a_part_of_the_wrong_size_is_refused_at_completion(
    api: httpx.Client, alice: Account
) -> None:
    # The emulator does not enforce the signed length (real S3 and SeaweedFS do), so the
    # API's own check is what stops a short part here.
    video = Video(11 * MIB)
    ticket = start(api, alice, video)
    put_parts(video, ticket["parts"], skip=frozenset({1}))
    first = ticket["parts"][0]
    short = video.parts[0][:-1]
    headers = {**first["headers"], "Content-Length": str(len(short))}
    assert httpx.put(first["url"], content=short, headers=headers).status_code == 200
    assert_error(complete(api, alice, video, ticket["upload_id"]), 400, "part_mismatch")


def test_parts_are_signed_again_and_held_parts_listed(api: httpx.Client, alice: Account) -> None:
    video = Video(11 * MIB)
    ticket = start(api, alice, video, numbers=[1])
    put_parts(video, ticket["parts"])
    body = {
        "sha256": video.sha256,
        "upload_id": ticket["upload_id"],
        "part_size": PART,
        "parts": [{"number": n, "checksum_crc64nvme": video.checksums[n - 1]} for n in (2, 3)],
        "include_completed": True,
    }
    resp = api.post("/v1/uploads/multipart/parts", json=body, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert [p["number"] for p in data["completed"]] == [1]
    put_parts(video, data["parts"])
    assert complete(api, alice, video, ticket["upload_id"]).status_code == 200


def test_another_user_cannot_use_an_upload_id(
    api: httpx.Client, alice: Account, bob: Account
) -> None:
    video = Video(6 * MIB)
    ticket = start(api, alice, video)
    start(api, bob, video, numbers=[])  # bob declares the same content under his own key
    ref = {"sha256": video.sha256, "upload_id": ticket["upload_id"]}
    parts = {**ref, "part_size": PART, "parts": [], "include_completed": True}
    for path, body in (
        ("/v1/uploads/multipart/parts", parts),
        (
            "/v1/uploads/multipart/complete",
            {**ref, "part_size": PART, "checksums": video.checksums},
        ),
        ("/v1/uploads/multipart/abort", ref),
    ):
        assert_error(api.post(path, json=body, headers=auth(bob)), 404, "upload_not_found")
    # ...and alice's upload is untouched.
    put_parts(video, ticket["parts"])
    assert complete(api, alice, video, ticket["upload_id"]).status_code == 200


def test_an_aborted_upload_is_gone(api: httpx.Client, alice: Account) -> None:
    video = Video(6 * MIB)
    ticket = start(api, alice, video, numbers=[])
    ref = {"sha256": video.sha256, "upload_id": ticket["upload_id"]}
    resp = api.post("/v1/uploads/multipart/abort", json=ref, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "aborted"
    again = {**ref, "part_size": PART, "parts": []}
    resp = api.post("/v1/uploads/multipart/parts", json=again, headers=auth(alice))
    assert_error(resp, 404, "upload_not_found")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"part_size": MIB}, "part_size"),
        ({"size": 5 * 1024**4 + 1}, "size"),
        ({"size": 60 * 1024**3, "part_size": PART}, "10000"),
        ({"parts": [{"number": 9, "checksum_crc64nvme": b64crc(b"x")}]}, "part 9"),
        ({"parts": [{"number": 1, "checksum_crc64nvme": "not base64"}]}, "checksum_crc64nvme"),
        ({"crc64nvme": "AAAA"}, "crc64nvme"),
    ],
)
def test_plans_outside_s3_limits_are_422(
    api: httpx.Client, alice: Account, extra: dict[str, Any], fragment: str
) -> None:
    body = {**Video(6 * MIB).start_body(numbers=[]), **extra}
    resp = api.post("/v1/uploads/multipart", json=body, headers=auth(alice))
    assert_error(resp, 422, "invalid_request")
    assert fragment in resp.text


def test_multipart_routes_need_a_token(api: httpx.Client) -> None:
    for path in ("/v1/uploads/multipart", "/v1/uploads/multipart/complete"):
        assert_error(api.post(path, json={}), 401, "token_missing")


def test_the_api_picks_a_part_size_when_none_is_proposed(api: httpx.Client, alice: Account) -> None:
    video = Video(6 * MIB)
    body = video.start_body(numbers=[])
    del body["part_size"]
    resp = api.post("/v1/uploads/multipart", json=body, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    assert resp.json()["part_size"] == 8 * MIB
    assert resp.json()["part_count"] == 1


@pytest.mark.parametrize("s3_says", ["404", "403"])
def test_completing_an_aborted_upload_is_not_found_not_unavailable(
    api: httpx.Client, alice: Account, cfg: Settings, s3_says: str
) -> None:
    """On AWS a role without ListBucket gets 403 for the missing object; it still means gone."""
    from _forbidden import forbid_missing

    from mobile_backup.api._auth import Principal
    from mobile_backup.api._multipart import MultipartService
    from mobile_backup.api.exceptions import UploadNotFoundError
    from mobile_backup.core.wire import MultipartCompleteRequest

    video = Video(6 * MIB)
    ticket = start(api, alice, video)
    ref = {"sha256": video.sha256, "upload_id": ticket["upload_id"]}
    assert api.post("/v1/uploads/multipart/abort", json=ref, headers=auth(alice)).is_success
    s3 = s3_client(cfg, component="api")  # the API's own role: the IAM test judges it
    forbidden = forbid_missing(s3) if s3_says == "403" else []
    service = MultipartService(
        ledger=Ledger(dynamodb_client(cfg, component="api"), cfg.require("table")),
        s3=s3,
        bucket=cfg.require("bucket"),
        clock=lambda: datetime.now(UTC),
        expiry_seconds=900,
    )
    request = MultipartCompleteRequest(**ref, part_size=PART, checksums=video.checksums)
    with pytest.raises(UploadNotFoundError):
        service.complete(Principal(sub=alice.sub, username=alice.email), request)
    assert forbidden == ([object_key(alice.sub, video.sha256)] if s3_says == "403" else [])
    # And through HTTP, as the phone sees it.
    body = {**ref, "part_size": PART, "checksums": video.checksums}
    assert_error(api.post("/v1/uploads/multipart/complete", json=body, headers=auth(alice)),
                 404, "upload_not_found")  # fmt: skip


def test_parts_that_do_not_make_the_declared_file_are_never_uploaded(
    api: httpx.Client, alice: Account, cfg: Settings
) -> None:
    """Every part is the one declared (S3 checks each), but together they are not the file
    whose CRC64NVME was declared with its SHA-256 (a client bug, or a file edited between
    hashing passes): S3 refuses to assemble them, so the ledger never says `uploaded`."""
    video = Video(11 * MIB)
    body = video.start_body(crc64nvme=b64crc(video.data[::-1]))
    resp = api.post("/v1/uploads/multipart", json=body, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    ticket = resp.json()
    put_parts(video, ticket["parts"])
    refused = complete(api, alice, video, ticket["upload_id"])
    assert_error(refused, 400, "file_mismatch")
    key = object_key(alice.sub, video.sha256)
    with pytest.raises(ClientError, match=r"404"):
        s3_client(cfg, component="test").head_object(Bucket=cfg.require("bucket"), Key=key)
    record = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table")).get(
        alice.sub, video.sha256
    )
    assert record is not None
    assert record.status == "pending"
    # A later complete cannot slip another checksum in: the one declared at start decides.
    again = complete(api, alice, video, ticket["upload_id"])
    assert_error(again, 400, "file_mismatch")


def test_an_upload_begun_by_an_older_client_is_finished_cleanly_by_todays(
    api: httpx.Client, alice: Account, cfg: Settings, tmp_path: Path
) -> None:
    """An older client (CRC64NVME) sent one part of a video and died; today's client (CRC32)
    sends the same file: it starts a CRC32 upload of its own, every byte is right, and the
    ledger says which CRC the object carries."""
    from mobile_backup.client import UPLOADED, Journal, Uploader

    video = Video(11 * MIB + 5)
    older = start(api, alice, video)
    put_parts(video, older["parts"][:1])  # one part held, then the older client died
    path = tmp_path / "VID_0001.mp4"
    path.write_bytes(video.data)
    client_api = alice.api(str(api.base_url))
    summary = Uploader(
        api=client_api, journal=Journal(tmp_path / "j.db"), multipart_threshold=PART, part_size=PART
    ).upload([path])
    client_api.close()
    assert summary.results[0].status == UPLOADED, summary.results[0].reason
    s3 = s3_client(cfg, component="test")
    key = object_key(alice.sub, video.sha256)
    assert s3.get_object(Bucket=cfg.require("bucket"), Key=key)["Body"].read() == video.data
    record = Ledger(dynamodb_client(cfg, component="test"), cfg.require("table")).get(
        alice.sub, video.sha256
    )
    assert record is not None
    assert record.checksum_algorithm == "CRC32"
    assert (
        record.full_checksum == base64.b64encode(zlib.crc32(video.data).to_bytes(4, "big")).decode()
    )
