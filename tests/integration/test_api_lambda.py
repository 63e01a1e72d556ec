"""The Lambda entry point with a real API Gateway HTTP API event, against the emulator."""

from __future__ import annotations

import copy
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import load_event, snapstart_init_env
from mobile_backup.api import handler as lambda_entry
from mobile_backup.aws import cognito_client, dynamodb_client
from mobile_backup.core import FileMeta, Settings
from mobile_backup.ledger import Ledger
from mobile_backup.local import LocalLambdaContext, create_user

pytestmark = pytest.mark.integration

PASSWORD = "Correct-Horse-9-Battery"


@pytest.fixture(autouse=True)
def function_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Capture the function's JSON log stream, and undo the logging set-up a cold start
    does (it re-routes the `mobile_backup` loggers for the rest of the process)."""
    package = logging.getLogger(lambda_entry.PACKAGE_LOGGER)
    saved = (package.handlers[:], package.propagate, package.level)
    stream = io.StringIO()
    monkeypatch.setattr(lambda_entry.logger.registered_handler, "stream", stream)
    try:
        yield stream
    finally:
        package.handlers, package.propagate = saved[0], saved[1]
        package.setLevel(saved[2])


def configure_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, **override: str) -> None:
    """The function's environment, as the template sets it (the only input to the handler)."""
    values = {
        "LOCAL": "true",
        "REGION": settings.region,
        "AWS_ENDPOINT_URL": settings.require("aws_endpoint_url"),
        "AWS_ACCESS_KEY_ID": settings.require("aws_access_key_id"),
        "AWS_SECRET_ACCESS_KEY": settings.require("aws_access_key_id"),
        "BUCKET": settings.require("bucket"),
        "TABLE": settings.require("table"),
        "USER_POOL_ID": settings.require("user_pool_id"),
        "CLIENT_ID": settings.require("client_id"),
    }
    values.update(override)
    for name, value in values.items():
        monkeypatch.setenv(f"MOBILE_BACKUP_{name}", value)
    # Each test is a fresh container.
    monkeypatch.setattr(lambda_entry, "_app", None)


def sign_in(settings: Settings, resources: Any) -> tuple[str, str]:
    email = f"lambda-{uuid.uuid4().hex[:8]}@example.com"
    sub = create_user(resources, email=email, password=PASSWORD)
    auth = cognito_client(settings, component="test").initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        ClientId=settings.require("client_id"),
    )
    return sub, auth["AuthenticationResult"]["AccessToken"]


def get_files_event(token: str) -> dict[str, Any]:
    event = load_event("api_http_v2_get_files.json")
    event["headers"]["authorization"] = f"Bearer {token}"
    return event


def post_uploads_event(token: str, body: dict[str, Any]) -> dict[str, Any]:
    event = get_files_event(token)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/uploads"
    event["requestContext"]["http"]["method"] = "POST"
    event["rawQueryString"] = ""
    del event["queryStringParameters"]
    event["headers"]["content-type"] = "application/json"
    event["body"] = json.dumps(body)
    event["headers"]["content-length"] = str(len(event["body"]))
    return event


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    context: Any = LocalLambdaContext(str(uuid.uuid4()))  # duck-types Lambda's context
    result = lambda_entry.handler(copy.deepcopy(event), context)
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


def test_the_handler_answers_from_the_token_not_the_authorizer_context(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, resources: Any
) -> None:
    configure_env(monkeypatch, settings)
    sub, token = sign_in(settings, resources)
    Ledger(dynamodb_client(settings, component="test"), settings.require("table")).reserve(
        sub, FileMeta("ab" * 32, 1, "a.jpg", "image/jpeg"), now=datetime.now(UTC)
    )
    # The stored event's authorizer claims name another user: they must not matter.
    status, body = invoke(get_files_event(token))
    assert status == 200
    assert [f["sha256"] for f in body["files"]] == ["ab" * 32]

    sha = "cd" * 32
    upload = {"sha256": sha, "size": 3, "filename": "b.jpg", "content_type": "image/jpeg"}
    status, body = invoke(post_uploads_event(token, {"files": [upload]}))
    assert status == 200
    assert f"media/{sub}/{sha}" in body["results"][0]["upload"]["url"]
    first_app = lambda_entry._app
    assert first_app is not None
    invoke(get_files_event(token))
    assert lambda_entry._app is first_app  # built once per container


def test_the_handler_rejects_a_missing_token(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    configure_env(monkeypatch, settings)
    event = load_event("api_http_v2_get_files.json")
    del event["headers"]["authorization"]
    status, body = invoke(event)
    assert (status, body["code"]) == (401, "token_missing")


@pytest.mark.parametrize(
    "header", [{"alg": "RS256", "kid": 7}, {"alg": "RS256", "kid": "k", "crit": ["exp"]}]
)
def test_a_token_header_pyjwt_refuses_is_401_through_the_lambda_entry_point(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, header: dict[str, Any]
) -> None:
    import base64
    import json

    configure_env(monkeypatch, settings)
    part = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    event = load_event("api_http_v2_get_files.json")
    event["headers"]["authorization"] = f"Bearer {part}.e30.c2ln"
    status, body = invoke(event)
    assert (status, body["code"]) == (401, "token_invalid")


def test_a_misconfigured_function_answers_json_and_retries_next_time(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    configure_env(monkeypatch, settings)
    monkeypatch.delenv("MOBILE_BACKUP_BUCKET")
    status, body = invoke(load_event("api_http_v2_get_files.json"))
    assert (status, body["code"]) == (500, "internal_error")
    assert lambda_entry._app is None


def test_failures_are_logged_as_json_without_the_token(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    resources: Any,
    function_logs: io.StringIO,
) -> None:
    configure_env(monkeypatch, settings, TABLE="no-such-table")
    _, token = sign_in(settings, resources)
    status, body = invoke(get_files_event(token))
    assert (status, body["code"]) == (503, "service_unavailable")
    out = function_logs.getvalue()
    logged = [json.loads(line) for line in out.splitlines()]
    errors = [entry for entry in logged if entry["level"] == "ERROR"]
    assert len(errors) == 1, out
    assert errors[0]["service"] == lambda_entry.SERVICE_NAME
    assert errors[0]["name"] == "mobile_backup.api.exceptions"
    assert errors[0]["correlation_id"] == "UZ2a3hqeIAMEVuQ="  # the event's requestId
    assert "no-such-table" not in body["message"]
    assert "ResourceNotFoundException" in errors[0]["exception"]
    # Neither the token nor its claims segment appears anywhere in the logs.
    assert token not in out
    assert token.split(".")[1] not in out


def test_debug_settings_never_print_the_event_or_a_presigned_url(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    resources: Any,
    function_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """POWERTOOLS_DEV / event-handler debug would print every event, bearer token included."""
    configure_env(monkeypatch, settings)
    for var in ("POWERTOOLS_DEV", "POWERTOOLS_EVENT_HANDLER_DEBUG", "POWERTOOLS_LOGGER_LOG_EVENT"):
        monkeypatch.setenv(var, "true")
    _, token = sign_in(settings, resources)
    event = load_event("api_http_v2_get_files.json")
    event["headers"]["authorization"] = f"Bearer {token}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/uploads"
    event["requestContext"]["http"]["method"] = "POST"
    event["body"] = json.dumps(
        {
            "files": [
                {"sha256": "a" * 64, "size": 3, "filename": "a.jpg", "content_type": "image/jpeg"}
            ]
        }
    )
    event["headers"]["content-type"] = "application/json"
    lambda_entry.logger.info("presigned %s", "http://h/b/k?X-Amz-Signature=deadbeef&a=1")
    status, body = invoke(event)
    assert status == 200, body
    printed = capsys.readouterr().out + function_logs.getvalue()
    assert token not in printed
    assert token.split(".")[1] not in printed
    assert "deadbeef" not in printed
    assert "X-Amz-Signature=REDACTED" in printed  # the log line is there, its secret is not


SNAPSTART_CHILD = r"""
import json, sys, urllib.request
import mobile_backup.api.handler as entry
import mobile_backup.aws._clients as aws
from mobile_backup.local import LocalLambdaContext

assert entry._app is not None, "the app was not built at init"
# What a restored environment's first request may no longer do: build a client or fetch keys.
def refuse(*args, **kwargs):
    raise AssertionError("the first request after a restore built or fetched something")
aws._client = refuse
urllib.request.urlopen = refuse
answers = []
for event in json.loads(sys.stdin.read()):
    result = entry.handler(event, LocalLambdaContext("snapstart"))
    answers.append([result["statusCode"], json.loads(result["body"])])
print(json.dumps(answers))
"""


def test_snapstart_init_builds_everything_the_first_request_needs(
    settings: Settings, resources: Any
) -> None:
    """With AWS_LAMBDA_INITIALIZATION_TYPE=snap-start (Lambda taking the snapshot), importing
    the handler builds the app, its clients and the pool's keys, so that a restored
    environment answers its first requests without building or fetching anything."""
    import subprocess
    import sys

    _, token = sign_in(settings, resources)
    upload = {"sha256": "ef" * 32, "size": 3, "filename": "c.jpg", "content_type": "image/jpeg"}
    events = [get_files_event(token), post_uploads_event(token, {"files": [upload]})]
    env = snapstart_init_env(settings, "bucket", "table", "user_pool_id", "client_id")
    proc = subprocess.run(
        [sys.executable, "-c", SNAPSTART_CHILD],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (listed, listing), (presigned, presigning) = json.loads(proc.stdout.splitlines()[-1])
    assert (listed, presigned) == (200, 200), (listing, presigning)
    assert "files" in listing
    assert presigning["results"][0]["upload"]["url"]
