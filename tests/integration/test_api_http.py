"""The HTTP API over real HTTP, against the emulator, with real Cognito users and tokens."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import settings_for
from mobile_backup.api import Principal
from mobile_backup.aws import cognito_client, dynamodb_client, s3_client
from mobile_backup.core import FileStatus, Receipt, Settings, utcnow
from mobile_backup.core.wire import FileView
from mobile_backup.ledger import Ledger
from mobile_backup.local import ApiAsgiApp, ApiServer, create_user, provision

pytestmark = pytest.mark.integration

PASSWORD = "Correct-Horse-9-Battery"


@dataclass(frozen=True)
class User:
    sub: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def stack(emulator: Any) -> Any:
    """One provisioned stack for the module: provisioning per test would dominate its
    runtime. Every test signs in fresh users, and a user's partition and key prefix are
    their own `sub`, so tests still share no data."""
    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"api{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def stack_settings(stack: Any) -> Settings:
    return settings_for(stack)


@pytest.fixture(scope="module")
def api(stack_settings: Settings) -> Iterator[httpx.Client]:
    server = ApiServer(ApiAsgiApp.for_settings(stack_settings, pool_size=4))
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def sign_in(settings: Settings, stack: Any, email: str | None = None) -> User:
    """A new pool user and the access token Cognito (the emulator) issues for them."""
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    sub = create_user(stack, email=email, password=PASSWORD)
    result = cognito_client(settings, component="test").initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        ClientId=settings.require("client_id"),
    )
    return User(sub=sub, token=result["AuthenticationResult"]["AccessToken"])


@pytest.fixture
def alice(stack_settings: Settings, stack: Any) -> User:
    return sign_in(stack_settings, stack)


@pytest.fixture
def bob(stack_settings: Settings, stack: Any) -> User:
    return sign_in(stack_settings, stack)


@pytest.fixture
def ledger(stack_settings: Settings) -> Ledger:
    return Ledger(
        dynamodb_client(stack_settings, component="test"), stack_settings.require("table")
    )


def media(content: bytes, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "filename": "IMG_0001.JPG",
        "content_type": "image/jpeg",
    }
    entry.update(extra)
    return entry


def upload_plan(api: httpx.Client, user: User, *files: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.post("/v1/uploads", json={"files": list(files)}, headers=user.auth)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


# --------------------------------------------------------------------------- uploads


def test_a_presigned_put_lands_the_bytes_at_the_users_key(
    api: httpx.Client, alice: User, stack_settings: Settings, ledger: Ledger
) -> None:
    settings = stack_settings
    content = b"\xff\xd8\xff\xe0 not really a jpeg " + uuid.uuid4().bytes
    taken = "2024-06-01T12:00:00+02:00"
    (result,) = upload_plan(api, alice, media(content, taken_at=taken, device="Pixel 8"))

    sha = hashlib.sha256(content).hexdigest()
    assert result["sha256"] == sha
    assert result["status"] == "upload"
    upload = result["upload"]
    assert upload["method"] == "PUT"
    assert upload["headers"] == {
        "Content-Length": str(len(content)),
        "Content-Type": "image/jpeg",
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha)).decode(),
    }
    expires = datetime.fromisoformat(upload["expires_at"])
    remaining = (expires - datetime.now(UTC)).total_seconds()
    assert settings.presign_expiry_seconds - 60 < remaining <= settings.presign_expiry_seconds

    query = parse_qs(urlsplit(upload["url"]).query)
    signed = query["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "content-type", "x-amz-checksum-sha256"} <= set(signed)
    assert urlsplit(upload["url"]).path.endswith(f"/media/{alice.sub}/{sha}")

    put = httpx.put(upload["url"], content=content, headers=upload["headers"])
    assert put.status_code == 200, put.text

    stored = s3_client(settings, component="test").get_object(
        Bucket=settings.require("bucket"), Key=f"media/{alice.sub}/{sha}"
    )
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "image/jpeg"

    record = ledger.get(alice.sub, sha)
    assert record is not None
    assert record.status is FileStatus.PENDING
    assert (record.filename, record.size, record.device) == (
        "IMG_0001.JPG",
        len(content),
        "Pixel 8",
    )
    assert record.taken_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def test_a_file_already_backed_up_is_a_duplicate(
    api: httpx.Client, alice: User, ledger: Ledger
) -> None:
    uploaded, downloaded, fresh = b"uploaded", b"downloaded", b"fresh"
    upload_plan(api, alice, media(uploaded), media(downloaded))
    now = datetime.now(UTC)
    ledger.mark_uploaded(alice.sub, media(uploaded)["sha256"], size=len(uploaded), now=now)
    sha_d = media(downloaded)["sha256"]
    ledger.mark_uploaded(alice.sub, sha_d, size=len(downloaded), now=now)
    ledger.mark_downloaded(
        alice.sub, sha_d, Receipt(host="pc", path="2024/a.jpg", sha256=sha_d, at=now)
    )

    results = upload_plan(api, alice, media(uploaded), media(fresh), media(downloaded))
    assert [(r["status"], r["upload"] is None) for r in results] == [
        ("duplicate", True),
        ("upload", False),
        ("duplicate", True),
    ]
    assert [r["sha256"] for r in results] == [
        media(uploaded)["sha256"],
        media(fresh)["sha256"],
        sha_d,
    ]


def test_a_pending_file_is_presigned_again(api: httpx.Client, alice: User) -> None:
    (first,) = upload_plan(api, alice, media(b"retry me"))
    (again,) = upload_plan(api, alice, media(b"retry me", filename="renamed.jpg"))
    assert first["status"] == again["status"] == "upload"


def test_the_same_file_twice_in_a_batch_is_answered_twice_and_presigned_once(
    api: httpx.Client, alice: User
) -> None:
    results = upload_plan(
        api, alice, media(b"same"), media(b"other"), media(b"same", filename="copy.jpg")
    )
    assert [r["status"] for r in results] == ["upload"] * 3
    assert results[0] == results[2]
    assert results[0]["sha256"] != results[1]["sha256"]


def test_the_user_part_of_the_key_comes_from_the_token_only(
    api: httpx.Client, alice: User, bob: User
) -> None:
    entry = media(b"shared content")
    (for_alice,) = upload_plan(api, alice, entry)
    (for_bob,) = upload_plan(api, bob, entry)
    assert f"/media/{alice.sub}/" in for_alice["upload"]["url"]
    assert f"/media/{bob.sub}/" in for_bob["upload"]["url"]
    # A client cannot smuggle an owner in: unknown fields are refused outright.
    response = api.post(
        "/v1/uploads", json={"files": [{**entry, "user_sub": bob.sub}]}, headers=alice.auth
    )
    assert_error(response, 422, "invalid_request")


# --------------------------------------------------------------------------- listing


def list_all(api: httpx.Client, user: User, *, limit: int) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = api.get("/v1/files", params=params, headers=user.auth)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["files"]) <= limit
        files.extend(page["files"])
        cursor = page["next_cursor"]
        if cursor is None:
            return files
    raise AssertionError("pagination did not end")


def test_listing_shows_only_the_callers_files(
    api: httpx.Client, alice: User, bob: User, ledger: Ledger
) -> None:
    upload_plan(api, alice, media(b"a1"), media(b"a2"))
    upload_plan(api, bob, media(b"b1"))
    sha = media(b"a1")["sha256"]
    now = datetime.now(UTC)
    ledger.mark_uploaded(alice.sub, sha, size=2, now=now)
    ledger.mark_downloaded(alice.sub, sha, Receipt(host="pc", path="x/a1.jpg", sha256=sha, at=now))

    alice_files = {f["sha256"]: f for f in list_all(api, alice, limit=100)}
    bob_files = list_all(api, bob, limit=100)
    assert set(alice_files) == {media(b"a1")["sha256"], media(b"a2")["sha256"]}
    assert [f["sha256"] for f in bob_files] == [media(b"b1")["sha256"]]

    done = alice_files[sha]
    assert done["status"] == "downloaded"
    assert done["receipt"]["host"] == "pc"
    assert done["receipt"]["path"] == "x/a1.jpg"
    assert set(done) == set(FileView.model_fields)
    assert "user_sub" not in done
    assert alice_files[media(b"a2")["sha256"]]["receipt"] is None


def test_the_summary_counts_only_the_callers_files_and_lists_the_latest_changed(
    api: httpx.Client, alice: User, bob: User, ledger: Ledger
) -> None:
    upload_plan(api, alice, media(b"s1"))
    upload_plan(api, alice, media(b"s2"))  # sent after s1
    upload_plan(api, bob, media(b"s3"), media(b"s4"), media(b"s5"))
    ledger.mark_uploaded(alice.sub, media(b"s1")["sha256"], size=2, now=datetime.now(UTC))
    response = api.get("/v1/files/summary", params={"recent": 1}, headers=alice.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert body["counts"] == {"pending": 1, "uploaded": 1, "downloaded": 0, "failed": 0}
    # s1's upload is the latest change (s2 was only sent before it)
    assert [f["sha256"] for f in body["recent"]] == [media(b"s1")["sha256"]]
    assert set(body["recent"][0]) == set(FileView.model_fields)
    bobs = api.get("/v1/files/summary", headers=bob.auth).json()
    assert bobs["total"] == 3
    assert {f["sha256"] for f in bobs["recent"]} == {
        media(b)["sha256"] for b in (b"s3", b"s4", b"s5")
    }
    none = api.get("/v1/files/summary", params={"recent": 0}, headers=bob.auth).json()
    assert (none["total"], none["recent"]) == (3, [])
    too_many = api.get("/v1/files/summary", params={"recent": 1001}, headers=bob.auth)
    assert_error(too_many, 422, "invalid_request")
    assert_error(api.get("/v1/files/summary"), 401, "token_missing")


def test_files_list_newest_capture_first_from_a_month(api: httpx.Client, alice: User) -> None:
    """`order=taken` (the gallery's order) and `month` (start there, then older)."""
    taken = {b"t1": "2023-01-10T10:00:00Z", b"t2": "2024-05-31T23:59:00Z",
             b"t3": "2024-06-01T00:00:00Z", b"t4": "2023-12-25T08:00:00Z"}  # fmt: skip
    for content, at in taken.items():
        upload_plan(api, alice, media(content, taken_at=at))

    def names(**params: Any) -> list[str]:
        response = api.get("/v1/files", params={"limit": 2, **params}, headers=alice.auth)
        assert response.status_code == 200, response.text
        shown, cursor = [], response.json()["next_cursor"]
        shown += [f["sha256"] for f in response.json()["files"]]
        while cursor:
            more = api.get("/v1/files", params={"limit": 2, "cursor": cursor, **params},
                           headers=alice.auth).json()  # fmt: skip
            shown += [f["sha256"] for f in more["files"]]
            cursor = more["next_cursor"]
        return shown

    newest_first = [media(c)["sha256"] for c in (b"t3", b"t2", b"t4", b"t1")]
    assert names(order="taken") == newest_first
    assert names(order="taken", month="2024-05") == newest_first[1:]
    assert names(month="2023-06") == newest_first[3:]
    for bad in ("2024-13", "24-05", "2024-5", "0000-01", "9999-12"):
        refused = api.get("/v1/files", params={"month": bad}, headers=alice.auth)
        assert_error(refused, 422, "invalid_request")
    assert_error(
        api.get("/v1/files", params={"order": "size"}, headers=alice.auth), 422, "invalid_request"
    )


def test_files_changed_since_a_time_are_all_a_poll_reads(
    api: httpx.Client, alice: User, bob: User
) -> None:
    """Issue 32: the app's polls ask `changed_since` the last read's `as_of` (the API's
    clock) and get only the caller's entries written after it, oldest change first."""
    upload_plan(api, alice, media(b"c1"))
    first = api.get("/v1/files", params={"order": "taken"}, headers=alice.auth)
    assert first.status_code == 200, first.text
    as_of = first.json()["as_of"]
    assert as_of is not None
    assert datetime.fromisoformat(as_of).tzinfo is not None
    upload_plan(api, alice, media(b"c2"))
    upload_plan(api, alice, media(b"c3"))
    upload_plan(api, bob, media(b"c4"))

    def changed(since: str, limit: int = 1) -> list[str]:
        shown, cursor = [], None
        while True:
            params: dict[str, str | int] = {"changed_since": since, "limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/v1/files", params=params, headers=alice.auth)
            assert page.status_code == 200, page.text
            shown += [f["sha256"] for f in page.json()["files"]]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return shown

    assert changed(as_of) == [media(b"c2")["sha256"], media(b"c3")["sha256"]]
    assert len(changed("2000-01-01T00:00:00+00:00", limit=100)) == 3
    assert changed("2099-01-01T00:00:00Z") == []
    for bad in ({"changed_since": "2024-01-01T00:00:00"}, {"changed_since": "yesterday"}):
        assert_error(api.get("/v1/files", params=bad, headers=alice.auth), 422, "invalid_request")
    for mixed in ({"order": "taken"}, {"month": "2024-05"}):
        refused = api.get("/v1/files", params={"changed_since": as_of, **mixed}, headers=alice.auth)
        assert_error(refused, 422, "invalid_request")


def test_thumbnails_are_kept_for_ones_own_files_and_read_by_their_owner_only(
    api: httpx.Client, alice: User, bob: User
) -> None:
    """Issue 32, item 4: `POST /v1/thumbs` presigns a PUT under the caller's own `thumbs/`
    prefix, for files the ledger has for them only; `POST /v1/thumbs/urls` presigns GETs of
    the caller's own. Another member asking for the same content gets a link to their own
    (absent) thumbnail, never the first member's."""
    photo = media(b"a photo with a thumbnail")
    upload_plan(api, alice, photo)
    upload_plan(api, bob, photo)  # the same content, Bob's own entry
    thumb = b"\xff\xd8\xff\xe0 a small jpeg"
    checksum = base64.b64encode(hashlib.sha256(thumb).digest()).decode()
    stranger = media(b"never backed up")["sha256"]
    asked = api.post(
        "/v1/thumbs",
        json={"thumbs": [{"sha256": photo["sha256"], "size": len(thumb), "checksum": checksum},
                         {"sha256": stranger, "size": len(thumb), "checksum": checksum}]},
        headers=alice.auth,
    )  # fmt: skip
    assert asked.status_code == 200, asked.text
    uploads = asked.json()["uploads"]
    assert list(uploads) == [photo["sha256"]]  # nothing for a file Alice never backed up
    put = uploads[photo["sha256"]]
    assert f"/thumbs/{alice.sub}/{photo['sha256']}.jpg" in put["url"]
    # The length and the SHA-256 are signed: S3 takes these bytes only (the emulator does
    # not check checksums; test_api_multipart_seaweed.py shows S3's BadDigest).
    signed = parse_qs(urlsplit(put["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "x-amz-checksum-sha256"} <= set(signed)
    assert put["headers"]["x-amz-checksum-sha256"] == checksum
    assert httpx.put(put["url"], content=thumb, headers=put["headers"]).is_success

    urls = api.post("/v1/thumbs/urls", json={"sha256": [photo["sha256"], stranger]},
                    headers=alice.auth).json()["urls"]  # fmt: skip
    assert list(urls) == [photo["sha256"]]
    assert httpx.get(urls[photo["sha256"]]).content == thumb
    bobs = api.post("/v1/thumbs/urls", json={"sha256": [photo["sha256"]]},
                    headers=bob.auth).json()["urls"]  # fmt: skip
    assert f"/thumbs/{bob.sub}/" in bobs[photo["sha256"]]
    assert httpx.get(bobs[photo["sha256"]]).status_code == 404  # his own, never sent
    too_big = {"sha256": photo["sha256"], "size": 64 * 1024 + 1, "checksum": checksum}
    assert_error(
        api.post("/v1/thumbs", json={"thumbs": [too_big]}, headers=alice.auth),
        422,
        "invalid_request",
    )
    assert_error(api.post("/v1/thumbs/urls", json={"sha256": [stranger]}), 401, "token_missing")


def test_members_get_a_folder_name_once_unique_in_the_household(
    api: httpx.Client, stack: Any, stack_settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:6]
    anna = sign_in(stack_settings, stack, f"anna.{tag}@example.com")
    other = sign_in(stack_settings, stack, f"ANNA.{tag}@family.example")
    cognito_client(stack_settings, component="test").admin_update_user_attributes(
        UserPoolId=stack_settings.require("user_pool_id"),
        Username=f"ANNA.{tag}@family.example",
        UserAttributes=[{"Name": "preferred_username", "Value": f"Anna {tag}/../x"}],
    )

    def owner(user: User, content: bytes) -> str:
        upload_plan(api, user, media(content))
        (entry,) = [
            f for f in list_all(api, user, limit=100) if f["sha256"] == media(content)["sha256"]
        ]
        return str(entry["owner_name"])

    assert owner(anna, b"first") == f"anna.{tag}"
    # The preferred username wins over the e-mail; a path in it is only characters.
    assert owner(other, b"second") == f"Anna {tag}_.._x"
    third = sign_in(stack_settings, stack, f"Anna.{tag}@elsewhere.example")
    assert owner(third, b"third") == f"Anna.{tag}-2"  # same name, other case: a suffix
    # Settled for good: a later rename does not move anyone's folder.
    cognito_client(stack_settings, component="test").admin_update_user_attributes(
        UserPoolId=stack_settings.require("user_pool_id"),
        Username=f"anna.{tag}@example.com",
        UserAttributes=[{"Name": "preferred_username", "Value": "someone else"}],
    )
    assert owner(anna, b"fourth") == f"anna.{tag}"


def test_a_new_user_sees_no_files(api: httpx.Client, alice: User, bob: User) -> None:
    upload_plan(api, alice, media(b"mine"))
    response = api.get("/v1/files", headers=bob.auth)
    page = response.json()
    assert (page["files"], page["next_cursor"]) == ([], None)
    assert set(page) == {"files", "next_cursor", "as_of"}


def test_listing_paginates_with_a_cursor(api: httpx.Client, alice: User) -> None:
    contents = [b"p1", b"p2", b"p3"]
    upload_plan(api, alice, *(media(c) for c in contents))
    first = api.get("/v1/files", params={"limit": 1}, headers=alice.auth).json()
    assert len(first["files"]) == 1
    assert first["next_cursor"]
    listed = [f["sha256"] for f in list_all(api, alice, limit=1)]
    assert sorted(listed) == sorted(media(c)["sha256"] for c in contents)


def test_another_users_cursor_is_refused(api: httpx.Client, alice: User, bob: User) -> None:
    upload_plan(api, alice, media(b"c1"), media(b"c2"))
    cursor = api.get("/v1/files", params={"limit": 1}, headers=alice.auth).json()["next_cursor"]
    assert cursor
    response = api.get("/v1/files", params={"cursor": cursor}, headers=bob.auth)
    assert_error(response, 400, "invalid_cursor")
    garbage = api.get("/v1/files", params={"cursor": "not-a-cursor"}, headers=alice.auth)
    assert_error(garbage, 400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_limit_is_validated(api: httpx.Client, alice: User, limit: str) -> None:
    response = api.get("/v1/files", params={"limit": limit}, headers=alice.auth)
    body = assert_error(response, 422, "invalid_request")
    assert body["details"][0]["loc"] == ["query", "limit"]


def test_concurrent_requests_of_different_users_stay_apart(
    api: httpx.Client, alice: User, bob: User
) -> None:
    upload_plan(api, alice, media(b"alice only"))
    upload_plan(api, bob, media(b"bob only"))
    expected = {alice.sub: media(b"alice only")["sha256"], bob.sub: media(b"bob only")["sha256"]}
    users = [alice, bob] * 12

    def listed(user: User) -> tuple[str, list[str]]:
        response = api.get("/v1/files", headers=user.auth)
        assert response.status_code == 200, response.text
        return user.sub, [f["sha256"] for f in response.json()["files"]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        for sub, shas in pool.map(listed, users):
            assert shas == [expected[sub]]


# --------------------------------------------------------------------------- errors


def test_health_needs_no_token(api: httpx.Client) -> None:
    response = api.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_join_page_of_an_invite_needs_no_token_and_reflects_nothing(
    api: httpx.Client,
) -> None:
    """Issue 29: the page an invite link opens. Its script is the only one allowed to run
    (by its hash), and nothing of the request comes back in it."""
    import base64
    import hashlib
    import re

    plain = api.get("/v1/join")
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/html")
    (script,) = re.findall(r"<script>(.*?)</script>", plain.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = plain.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert plain.headers["referrer-policy"] == "no-referrer"
    probing = api.get("/v1/join", params={"name": "<script>alert(1)</script>"})
    assert probing.text == plain.text


def test_the_openapi_document_is_served(api: httpx.Client) -> None:
    response = api.get("/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/uploads", "/v1/files", "/v1/health"} <= set(doc["paths"])
    assert doc["paths"]["/v1/uploads"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/v1/health"]["get"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    error_ref = doc["paths"]["/v1/uploads"]["post"]["responses"]["422"]["content"]
    assert error_ref["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_check_now_asks_every_registered_pc_and_says_which_are_running(
    api: httpx.Client, alice: User, stack_settings: Settings, ledger: Ledger
) -> None:
    """`POST /v1/pcs/check` (the app's "Check now"): each PC's entry records the request
    (what its agent reads at its heartbeat); the answer names the PCs, never their hosts or
    library paths, and says which were running a moment ago."""
    registry = ledger.pc_registry()
    now = utcnow()
    registry.claim("main", queue_url="q-main", library_id="a" * 32, host="desk-7",
                   library="/home/anna/Photos", now=now)  # fmt: skip
    registry.claim("attic", queue_url="q-attic", library_id="b" * 32, host="old-box",
                   library="/srv/photos", now=now - timedelta(hours=3))  # fmt: skip
    try:
        response = api.post("/v1/pcs/check", headers=alice.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        asked = datetime.fromisoformat(body["requested_at"])
        pcs = {pc["name"]: pc for pc in body["pcs"]}
        assert set(pcs) == {"main", "attic"}
        assert pcs["main"]["running"] is True
        assert pcs["attic"]["running"] is False
        assert "desk-7" not in response.text
        assert "/home/anna" not in response.text
        for name in ("main", "attic"):
            record = registry.get(name)
            assert record is not None
            assert record.check_requested_at == asked
        assert_error(api.post("/v1/pcs/check"), 401, "token_missing")
        refused = api.get("/v1/pcs/check", headers=alice.auth)
        assert_error(refused, 405, "method_not_allowed")
        assert api.post("/v1/pcs/check", json={}, headers=alice.auth).status_code == 200
        with_body = api.post("/v1/pcs/check", json={"pc": "main"}, headers=alice.auth)
        assert_error(with_body, 422, "invalid_request")
    finally:  # the module's other tests share this table: their files are on no PC
        db = dynamodb_client(stack_settings, component="test")
        for name in ("main", "attic"):
            db.delete_item(
                TableName=stack_settings.require("table"),
                Key={"pk": {"S": "PCS"}, "sk": {"S": f"PC#{name}"}},
            )


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/uploads"), ("GET", "/v1/files")])
def test_no_token_is_401_with_a_challenge(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path, json={"files": [media(b"x")]})
    assert_error(response, 401, "token_missing")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_token_is_401_token_invalid(api: httpx.Client) -> None:
    response = api.get("/v1/files", headers={"Authorization": "Bearer not.a.jwt"})
    assert_error(response, 401, "token_invalid")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_authentication_is_checked_before_the_body(api: httpx.Client) -> None:
    # Behind API Gateway the JWT authorizer runs first; locally the answer must be the same.
    response = api.post(
        "/v1/uploads", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 401, "token_missing")
    response = api.post("/v1/uploads", json={"files": []})
    assert_error(response, 401, "token_missing")


def test_a_body_that_is_not_json_is_400(api: httpx.Client, alice: User) -> None:
    for body in (b"{not json", b'{"files": [', b"\xff\xfe\x00"):
        response = api.post(
            "/v1/uploads", content=body, headers={**alice.auth, "content-type": "application/json"}
        )
        assert_error(response, 400, "invalid_json")


def test_a_body_in_another_content_type_is_415(api: httpx.Client, alice: User) -> None:
    response = api.post(
        "/v1/uploads", content=b"files=1", headers={**alice.auth, "content-type": "text/plain"}
    )
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("payload", "loc", "hint"),
    [
        (None, ["body"], "JSON body"),
        ({}, ["body", "files"], "required"),
        ({"files": []}, ["body", "files"], "at least 1"),
        ({"files": [{"sha256": "0" * 64}]}, ["body", "files", 0, "size"], "required"),
        ({"files": [media(b"x", sha256="XYZ")]}, ["body", "files", 0, "sha256"], "pattern"),
        ({"files": [media(b"x", size=5 * 1024**3 + 1)]}, ["body", "files", 0, "size"], "5 GiB"),
        (
            {"files": [media(f"{i}".encode()) for i in range(101)]},
            ["body", "files"],
            "at most 100",
        ),
        ({"files": [media(b"x", filename="")]}, ["body", "files", 0, "filename"], "at least 1"),
    ],
)
def test_schema_violations_are_422_with_details(
    api: httpx.Client, alice: User, payload: Any, loc: list[Any], hint: str
) -> None:
    if payload is None:
        response = api.post(
            "/v1/uploads", headers={**alice.auth, "content-type": "application/json"}
        )
    else:
        response = api.post("/v1/uploads", json=payload, headers=alice.auth)
    body = assert_error(response, 422, "invalid_request")
    assert body["details"][0]["loc"] == loc
    assert hint in body["details"][0]["message"]
    assert hint in body["message"]


def test_an_unknown_route_is_404(api: httpx.Client, alice: User) -> None:
    assert_error(api.get("/v1/nothing-here", headers=alice.auth), 404, "not_found")
    assert_error(api.get("/"), 404, "not_found")


def test_a_wrong_method_is_405_with_allow(api: httpx.Client, alice: User) -> None:
    response = api.get("/v1/uploads", headers=alice.auth)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    response = api.delete("/v1/files", headers=alice.auth)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


def test_a_cors_preflight_needs_no_token(api: httpx.Client) -> None:
    response = api.options(
        "/v1/uploads",
        headers={
            "Origin": "http://127.0.0.1:8550",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed


# A removed member -------------------------------------------------------------------------
def test_a_removed_member_is_refused_on_every_route_at_once(
    api: httpx.Client, stack_settings: Settings, stack: Any
) -> None:
    """`users remove` used to leave a member able to start new uploads for the rest of
    their token's life (15 minutes). This API process has not seen the member before."""
    from mobile_backup.deploy import remove_member

    carol = sign_in(stack_settings, stack)
    email = cognito_client(stack_settings, component="test").get_user(AccessToken=carol.token)[
        "Username"
    ]
    remove_member(
        cognito_client(stack_settings, component="test"),
        user_pool_id=stack_settings.require("user_pool_id"),
        email=email,
    )
    doc = api.get("/v1/openapi.json").json()
    protected = [
        (method, path)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    assert len(protected) >= 7
    for method, path in protected:  # the schema is checked first: an empty body may be 422
        response = api.request(method, path, json={}, headers=carol.auth)
        assert response.status_code in (401, 422), (method, path, response.text)
    assert_error(api.get("/v1/files", headers=carol.auth), 401, "member_removed")
    plan = api.post("/v1/uploads", json={"files": [media(b"new photo")]}, headers=carol.auth)
    assert_error(plan, 401, "member_removed")


def test_a_member_removed_after_a_request_is_refused_within_a_minute(
    stack_settings: Settings, stack: Any
) -> None:
    from mobile_backup.api._members import CONFIRMED_FOR_SECONDS, MemberStatus
    from mobile_backup.api.exceptions import MemberRemovedError
    from mobile_backup.deploy import remove_member

    dave = sign_in(stack_settings, stack)
    principal = Principal(sub=dave.sub, username="dave", token=dave.token)
    now = [1000.0]
    asked: list[str] = []
    idp = cognito_client(stack_settings, component="test")

    def identity() -> Any:
        asked.append("GetUser")
        return idp

    status = MemberStatus(identity, clock=lambda: now[0])
    status.check(principal)
    status.check(principal)
    assert asked == ["GetUser"]  # once a minute per token, not per request
    email = idp.get_user(AccessToken=dave.token)["Username"]
    remove_member(idp, user_pool_id=stack_settings.require("user_pool_id"), email=email)
    now[0] += CONFIRMED_FOR_SECONDS - 1
    status.check(principal)  # still within the minute Cognito vouched for
    now[0] += 2
    with pytest.raises(MemberRemovedError):
        status.check(principal)
    assert CONFIRMED_FOR_SECONDS <= 60


def test_a_get_reads_while_cognito_is_asked_and_a_refusal_wins(
    stack_settings: Settings, stack: Any
) -> None:
    from mobile_backup.api._members import MemberStatus
    from mobile_backup.api.exceptions import MemberRemovedError
    from mobile_backup.deploy import remove_member

    dave = sign_in(stack_settings, stack)
    principal = Principal(sub=dave.sub, username="dave", token=dave.token)
    idp = cognito_client(stack_settings, component="test")
    # The read and Cognito's question each wait for the other: one after the other, the
    # first would time out.
    both = threading.Barrier(2, timeout=10)

    def identity() -> Any:
        both.wait()
        return idp

    def read() -> str:
        both.wait()
        return "the page"

    assert MemberStatus(identity).check_while(principal, read) == "the page"
    email = idp.get_user(AccessToken=dave.token)["Username"]
    remove_member(idp, user_pool_id=stack_settings.require("user_pool_id"), email=email)
    with pytest.raises(MemberRemovedError):  # the read ran; its answer is never given
        MemberStatus(identity).check_while(principal, read)


# Bad input is never a 5xx ------------------------------------------------------------------
def test_a_deeply_nested_body_is_400_not_a_crash(api: httpx.Client, alice: User) -> None:
    for depth in (2_000, 100_000):
        body = b"[" * depth + b"]" * depth
        response = api.post(
            "/v1/uploads", content=body, headers={**alice.auth, "content-type": "application/json"}
        )
        assert_error(response, 400, "invalid_json")
    nested = b'{"files": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"
    response = api.post(
        "/v1/uploads", content=nested, headers={**alice.auth, "content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")


def test_a_number_longer_than_python_converts_is_400_on_every_post_route(
    api: httpx.Client, alice: User
) -> None:
    """`json.loads` raises ValueError (not a decode error) past 4,300 digits: it was a 500 on
    all six POST routes, before authentication. The routes are read from the served document."""
    doc = api.get("/v1/openapi.json").json()
    posts = [path for path, ops in doc["paths"].items() if "post" in ops]
    assert len(posts) >= 6
    body = b'{"files": [{"size": ' + b"9" * 4301 + b"}]}"
    for path in posts:
        for headers in ({**alice.auth}, {}):
            headers["content-type"] = "application/json"
            response = api.post(path, content=body, headers=headers)
            assert response.status_code in (400, 401), (path, response.text)
            if headers.get("authorization"):
                assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"files=1&x=2", "application/x-www-form-urlencoded"),
        (
            b'--b\r\nContent-Disposition: form-data; name="files"\r\n\r\n[]\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        (b'{"files": []}', ""),
    ],
)
def test_a_body_that_is_not_json_by_type_is_415(
    api: httpx.Client, alice: User, content: bytes, content_type: str
) -> None:
    headers = {**alice.auth}
    if content_type:
        headers["content-type"] = content_type
    response = api.post("/v1/uploads", content=content, headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def _token_with_header(header: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = base64.urlsafe_b64encode(json_dumps(value).encode()).decode()
        return raw.rstrip("=")

    return f"{part(header)}.{part({'sub': 'x', 'token_use': 'access'})}.c2ln"


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RS256", "kid": 123},
        {"alg": "RS256", "kid": ["a"]},
        {"alg": "RS256", "kid": "k", "crit": ["exp"]},
        {"alg": "RS256", "kid": "k", "crit": "nope"},
        {"alg": ["RS256"], "kid": "k"},
    ],
)
def test_a_token_with_a_malformed_header_is_401(api: httpx.Client, header: dict[str, Any]) -> None:
    token = _token_with_header(header)
    response = api.get("/v1/files", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "token_invalid")


def test_a_cursor_without_its_sort_key_is_400(api: httpx.Client, alice: User) -> None:
    import json

    inners: list[object] = [
        {"pk": f"USER#{alice.sub}"},
        {"pk": f"USER#{alice.sub}", "sk": 5},
        [],
        "x",
    ]
    for inner in inners:
        cursor = base64.urlsafe_b64encode(json.dumps(inner).encode()).decode().rstrip("=")
        response = api.get("/v1/files", params={"cursor": cursor}, headers=alice.auth)
        assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("query", ["", "?verdicts=false"])
def test_lookup_says_what_is_backed_up_and_reserves_nothing(
    api: httpx.Client, stack_settings: Settings, alice: User, bob: User, query: str
) -> None:
    """`POST /v1/files/lookup` (`upload --dry-run`): read-only, the caller's own ledger;
    `verdicts=false` (a dry run's) reads each entry's status alone and says the same."""
    ledger = Ledger(
        dynamodb_client(stack_settings, component="test"), stack_settings.require("table")
    )
    now = datetime.now(UTC)
    tag = query.encode()
    up, on_pc, reserved, unknown = (media(c + tag)["sha256"] for c in (b"l1", b"l2", b"l3", b"l4"))
    upload_plan(api, alice, *(media(c + tag) for c in (b"l1", b"l2", b"l3")))
    ledger.mark_uploaded(alice.sub, up, size=2, now=now)
    ledger.mark_uploaded(alice.sub, on_pc, size=2, now=now)
    ledger.mark_downloaded(alice.sub, on_pc, Receipt(host="pc", path="x", sha256=on_pc, at=now))

    asked = [unknown, up, on_pc, reserved, up]
    response = api.post(f"/v1/files/lookup{query}", json={"sha256": asked}, headers=alice.auth)
    assert response.status_code == 200, response.text
    if query:  # no verdicts: whether each may be freed is left unsaid
        assert {(r["deletable"], r["reason"]) for r in response.json()["results"]} == {(False, "")}
    got = [(r["sha256"], r["backed_up"], r["on_pc"]) for r in response.json()["results"]]
    assert got == [
        (unknown, False, False),
        (up, True, False),
        (on_pc, True, True),
        (reserved, False, False),  # reserved, never uploaded: not backed up
        (up, True, False),
    ]
    assert ledger.get(alice.sub, unknown) is None  # nothing was reserved
    # Another member's ledger is not theirs to read.
    theirs = api.post(f"/v1/files/lookup{query}", json={"sha256": [up, on_pc]}, headers=bob.auth)
    assert [r["backed_up"] for r in theirs.json()["results"]] == [False, False]


def test_statuses_list_the_callers_contents_a_page_at_a_time(
    api: httpx.Client,
    stack_settings: Settings,
    alice: User,
    bob: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`GET /v1/files/statuses` (a first dry run of a folder of years): every content of
    the caller's and its status, pages joined by cursors, and nothing of anyone else's."""
    from mobile_backup.ledger import _listings

    monkeypatch.setattr(_listings, "STATUS_PAGE", 2)  # (the API runs in this process)
    ledger = Ledger(
        dynamodb_client(stack_settings, component="test"), stack_settings.require("table")
    )
    now = datetime.now(UTC)
    up, on_pc, reserved = (media(c)["sha256"] for c in (b"st1", b"st2", b"st3"))
    upload_plan(api, alice, *(media(c) for c in (b"st1", b"st2", b"st3")))
    ledger.mark_uploaded(alice.sub, up, size=3, now=now)
    ledger.mark_uploaded(alice.sub, on_pc, size=3, now=now)
    ledger.mark_downloaded(alice.sub, on_pc, Receipt(host="pc", path="x", sha256=on_pc, at=now))
    upload_plan(api, bob, media(b"bob's own"))

    def read_all(prefix: str = "") -> tuple[dict[str, str], int]:
        statuses: dict[str, str] = {}
        pages, cursor = 0, None
        while True:
            params = {"prefix": prefix} | ({"cursor": cursor} if cursor else {})
            response = api.get("/v1/files/statuses", params=params, headers=alice.auth)
            assert response.status_code == 200, response.text
            page = response.json()
            assert datetime.fromisoformat(page["as_of"]) >= now
            assert len(page["statuses"]) <= 2
            statuses |= page["statuses"]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                return statuses, pages

    statuses, pages = read_all()
    assert statuses == {up: "uploaded", on_pc: "downloaded", reserved: "pending"}
    assert pages >= 2
    theirs = api.get("/v1/files/statuses", headers=bob.auth).json()["statuses"]
    assert list(theirs.values()) == ["pending"]
    assert not set(theirs) & set(statuses)
    # A range of content ids: those whose SHA-256 starts with the prefix, and only those.
    for prefix in {up[0], up[:2], "0" if up[0] != "0" else "1"}:
        got, _ = read_all(prefix)
        assert got == {s: st for s, st in statuses.items() if s.startswith(prefix)}
    # A cursor carries on only its own range.
    first = api.get("/v1/files/statuses", headers=alice.auth).json()["next_cursor"]
    assert first is not None
    last_read = sorted(statuses)[1]  # (2 a page: the cursor is the second entry's key)
    other = "0" if last_read[0] != "0" else "1"
    response = api.get(
        "/v1/files/statuses", params={"prefix": other, "cursor": first}, headers=alice.auth
    )
    assert_error(response, 400, "invalid_cursor")
    for bad in ("A", "abc", "g", "/"):
        response = api.get("/v1/files/statuses", params={"prefix": bad}, headers=alice.auth)
        assert_error(response, 422, "invalid_request")
    # Another member's cursor does not open their list.
    response = api.get("/v1/files/statuses", params={"cursor": first}, headers=bob.auth)
    assert_error(response, 400, "invalid_cursor")
    assert_error(api.get("/v1/files/statuses"), 401, "token_missing")


@pytest.mark.parametrize(
    "body",
    [{"sha256": []}, {"sha256": ["A" * 64]}, {"sha256": ["a" * 64] * 101}, {"hashes": []}],
)
def test_lookup_validates_its_body(api: httpx.Client, alice: User, body: Any) -> None:
    response = api.post("/v1/files/lookup", json=body, headers=alice.auth)
    assert_error(response, 422, "invalid_request")


def test_lookup_needs_a_token(api: httpx.Client) -> None:
    response = api.post("/v1/files/lookup", json={"sha256": ["a" * 64]})
    assert_error(response, 401, "token_missing")
