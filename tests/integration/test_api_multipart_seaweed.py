"""Interop with a real S3 implementation that validates SigV4, expiry and checksums.

The API presigns against SeaweedFS (`weed mini` on loopback); the ledger stays on the
emulator. SeaweedFS must accept exactly the bytes the API signed for (length and SHA-256),
refuse anything else, and refuse a URL after it expires; the engine must upload through it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _uploadkit import MIB, Account, Proxy, api_server, random_file, s3_for, sign_up

from conftest import settings_for
from mobile_backup.client import UPLOADED, Journal, RetryPolicy, Uploader
from mobile_backup.core import Settings, object_key
from mobile_backup.local import provision

pytestmark = pytest.mark.integration

PART = 5 * MIB
BUCKET = "media"  # the bucket the session's SeaweedFS server has


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"sw{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def cfg(stack: Any) -> Settings:
    return settings_for(stack, bucket=BUCKET)


@pytest.fixture(scope="module")
def api_url(cfg: Settings, seaweed: Any) -> Iterator[str]:
    with api_server(cfg, s3=seaweed.client()) as server:
        yield server.url


@pytest.fixture
def alice(stack: Any, cfg: Settings, tmp_path: Path) -> Account:
    return sign_up(stack, cfg, tmp_path)


# What today's client sends (CRC32, the standard library's) and what older clients sent
# (CRC64NVME, which needs awscrt: the API still takes their uploads).
ALGORITHMS = ["CRC32", "CRC64NVME"]


def b64crc(data: bytes, algorithm: str = "CRC32") -> str:
    if algorithm == "CRC32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    from awscrt.checksums import crc64nvme

    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()


def start(
    api_url: str,
    user: Account,
    data: bytes,
    numbers: list[int],
    *,
    declared: bytes | None = None,
    algorithm: str = "CRC32",
) -> dict[str, Any]:
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    whole = b64crc(data if declared is None else declared, algorithm)
    body: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "filename": "clip.mp4",
        "content_type": "video/mp4",
        "part_size": PART,
    }
    if algorithm == "CRC32":
        body["checksum_algorithm"] = "CRC32"
        body["full_checksum"] = whole
        body["parts"] = [{"number": n, "checksum": b64crc(parts[n - 1])} for n in numbers]
    else:  # an older client's request, word for word
        body["crc64nvme"] = whole
        body["parts"] = [
            {"number": n, "checksum_crc64nvme": b64crc(parts[n - 1], algorithm)} for n in numbers
        ]
    headers = {"Authorization": f"Bearer {user.auth.access_token()}"}
    resp = httpx.post(f"{api_url}/v1/uploads/multipart", json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    data_: dict[str, Any] = resp.json()
    return data_


def s3_code(resp: httpx.Response) -> str:
    text = resp.text
    return text[text.find("<Code>") + 6 : text.find("</Code>")]


def test_the_engine_uploads_small_and_multipart_files_to_seaweedfs(
    api_url: str, alice: Account, seaweed: Any, tmp_path: Path
) -> None:
    shas = {
        random_file(tmp_path / "IMG_1.jpg", 300_000): "IMG_1.jpg",
        random_file(tmp_path / "VID_1.mp4", 11 * MIB + 3): "VID_1.mp4",
    }
    api = alice.api(api_url)
    uploader = Uploader(
        api=api, journal=Journal(tmp_path / "j.db"), multipart_threshold=6 * MIB, part_size=PART
    )
    summary = uploader.upload([tmp_path / name for name in shas.values()])
    assert [r.status for r in summary.results] == [UPLOADED, UPLOADED], summary.results
    s3 = seaweed.client()
    for sha, name in shas.items():
        got = s3.get_object(Bucket=BUCKET, Key=object_key(alice.sub, sha))["Body"].read()
        assert got == (tmp_path / name).read_bytes()
    # The multipart object carries the whole file's CRC32, checked by S3 at completion.
    video = tmp_path / "VID_1.mp4"
    head = s3.head_object(
        Bucket=BUCKET,
        Key=object_key(alice.sub, next(iter(s for s, n in shas.items() if n == "VID_1.mp4"))),
        ChecksumMode="ENABLED",
    )
    assert head["ChecksumCRC32"] == b64crc(video.read_bytes())
    assert head["ChecksumType"] == "FULL_OBJECT"
    # No ingest runs here, so the ledger never learnt of the upload: the journal's memory of
    # it does not make the file "already backed up" (the ledger is the truth); it goes again.
    again = Uploader(api=api, journal=uploader.journal).upload([tmp_path / "VID_1.mp4"])
    assert again.results[0].status == UPLOADED
    api.close()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_part_body_other_than_the_signed_one_is_rejected(
    api_url: str, alice: Account, seaweed: Any, algorithm: str
) -> None:
    data = os.urandom(PART + 1000)
    ticket = start(api_url, alice, data, [1, 2], algorithm=algorithm)
    header = f"x-amz-checksum-{algorithm.lower()}"
    part1, part2 = ticket["parts"]
    good = data[:PART]
    tampered = bytes([good[0] ^ 1]) + good[1:]
    # Same length, other bytes: the signed checksum does not match.
    resp = httpx.put(part1["url"], content=tampered, headers=part1["headers"])
    assert resp.status_code == 400, resp.text
    assert s3_code(resp) == "BadDigest"
    # Another length than the signed one: the signature does not match.
    unsigned_length = {header: part2["headers"][header]}
    resp = httpx.put(part2["url"], content=data[PART:] + b"x", headers=unsigned_length)
    assert resp.status_code == 403, resp.text
    # Another checksum header than the signed one: the signature does not match.
    forged = {**part1["headers"], header: b64crc(tampered, algorithm)}
    resp = httpx.put(part1["url"], content=tampered, headers=forged)
    assert resp.status_code == 403, resp.text
    assert s3_code(resp) == "SignatureDoesNotMatch"
    # Nothing of the above was kept; the right bytes are.
    parts = seaweed.client().list_parts(
        Bucket=BUCKET,
        Key=object_key(alice.sub, hashlib.sha256(data).hexdigest()),
        UploadId=ticket["upload_id"],
    )
    assert parts.get("Parts", []) == []
    assert httpx.put(part1["url"], content=good, headers=part1["headers"]).status_code == 200


def test_a_single_put_other_than_the_signed_one_is_rejected(api_url: str, alice: Account) -> None:
    data = os.urandom(4096)
    body = {
        "files": [
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "filename": "IMG_2.jpg",
                "content_type": "image/jpeg",
            }
        ]
    }
    headers = {"Authorization": f"Bearer {alice.auth.access_token()}"}
    resp = httpx.post(f"{api_url}/v1/uploads", json=body, headers=headers)
    upload = resp.json()["results"][0]["upload"]
    tampered = bytes([data[0] ^ 1]) + data[1:]
    resp = httpx.put(upload["url"], content=tampered, headers=upload["headers"])
    assert resp.status_code == 400
    assert s3_code(resp) == "BadDigest"
    assert httpx.put(upload["url"], content=data, headers=upload["headers"]).status_code == 200


def test_an_expired_part_url_is_signed_again(
    stack: Any, cfg: Settings, seaweed: Any, tmp_path: Path
) -> None:
    # URLs valid for 2 s (the settings floor is 60 s, so the test builds them past it), and
    # a proxy that holds the first PUT of part 1 for 3 s: SeaweedFS refuses it as expired
    # and the engine must get a fresh URL from the API and send the part again.
    short = cfg.model_copy(update={"presign_expiry_seconds": 2})
    held: list[int] = []

    def delay(seen: Any) -> float:
        if seen.part_number == 1 and not held:
            held.append(1)
            return 3.0
        return 0.0

    with Proxy(seaweed.endpoint_url, delay=delay) as s3_proxy:
        presigner = s3_for(
            s3_proxy.url, access_key=seaweed.access_key, secret_key=seaweed.secret_key
        )
        with api_server(short, s3=presigner) as server, Proxy(server.url) as api_proxy:
            alice = sign_up(stack, cfg, tmp_path)
            sha = random_file(tmp_path / "VID_2.mp4", 2 * PART + 10)
            api = alice.api(api_proxy.url)
            summary = Uploader(
                api=api,
                multipart_threshold=PART,
                part_size=PART,
                parallel=1,
                retry=RetryPolicy(attempts=3, initial=0.05),
            ).upload([tmp_path / "VID_2.mp4"])
            api.close()
    assert summary.results[0].status == UPLOADED, summary.results[0].reason
    part1 = [s.status for s in s3_proxy.requests(lambda s: s.part_number == 1)]
    assert part1 == [403, 200]
    assert api_proxy.requests(lambda s: s.path == "/v1/uploads/multipart/parts")
    got = seaweed.client().get_object(Bucket=BUCKET, Key=object_key(alice.sub, sha))
    assert hashlib.sha256(got["Body"].read()).hexdigest() == sha


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_parts_that_do_not_make_the_declared_file_are_refused_by_s3(
    api_url: str, alice: Account, seaweed: Any, algorithm: str
) -> None:
    """SeaweedFS, like S3, checks the full-object CRC (CRC32, or an older client's
    CRC64NVME) when it assembles the parts."""
    data = os.urandom(PART + 4321)
    ticket = start(api_url, alice, data, [1, 2], declared=data[::-1], algorithm=algorithm)
    for part in ticket["parts"]:
        number = part["number"]
        chunk = data[(number - 1) * PART : number * PART]
        assert httpx.put(part["url"], content=chunk, headers=part["headers"]).status_code == 200
    body = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "upload_id": ticket["upload_id"],
        "part_size": PART,
        "checksums": [b64crc(data[:PART], algorithm), b64crc(data[PART:], algorithm)],
    }
    headers = {"Authorization": f"Bearer {alice.auth.access_token()}"}
    resp = httpx.post(f"{api_url}/v1/uploads/multipart/complete", json=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "file_mismatch"
    listed = seaweed.client().list_objects_v2(
        Bucket=BUCKET, Prefix=object_key(alice.sub, hashlib.sha256(data).hexdigest())
    )
    assert listed.get("KeyCount", 0) == 0  # nothing was stored under the file's key
