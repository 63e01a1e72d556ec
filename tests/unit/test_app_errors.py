"""Every error the app can meet becomes one readable sentence; never a raw exception."""

from __future__ import annotations

import pytest

from mobile_backup.app import reason_message, user_message
from mobile_backup.app._errors import OFFLINE, SESSION_ENDED, UNEXPECTED
from mobile_backup.client import (
    ApiError,
    LoginError,
    NoFilesError,
    NotLoggedInError,
    TransportError,
    UploadError,
)
from mobile_backup.core import ConfigError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (LoginError("wrong email or password"), "Wrong email or password."),
        (NotLoggedInError("not signed in to profile 'x'"), SESSION_ENDED),
        (TransportError("cannot reach the API at http://127.0.0.1:1: refused"), OFFLINE),
        (ApiError("token expired (unauthorized, HTTP 401)", status=401, code="unauthorized"),
         SESSION_ENDED),
        (ApiError("boom (internal, HTTP 503)", status=503, code="internal"),
         "The backup service is busy right now. Try again in a minute."),
        (ApiError("file too large (too_large, HTTP 413)", status=413, code="too_large"),
         "File too large."),
        (UploadError("storage refused the file: HTTP 403 SignatureDoesNotMatch", status=403),
         "Storage refused the file: HTTP 403 SignatureDoesNotMatch."),
        (NoFilesError("no photos or videos found"), "No photos or videos found."),
        (FileNotFoundError(2, "No such file or directory"),
         "Can't read the file: No such file or directory."),
    ],
)  # fmt: skip
def test_known_errors_read_as_sentences(exc: BaseException, expected: str) -> None:
    assert user_message(exc) == expected


def test_config_errors_say_the_deployment_is_not_set_up() -> None:
    msg = user_message(ConfigError("setting 'api_url' is not configured for profile 'x'"))
    assert msg.startswith("This app is not set up for that deployment:")


def test_unexpected_errors_show_no_internals() -> None:
    msg = user_message(KeyError("'AuthenticationResult'"))
    assert msg == UNEXPECTED
    assert "KeyError" not in msg
    assert "Authentication" not in msg


def test_long_messages_are_cut_and_urls_hidden() -> None:
    msg = user_message(LoginError("x" * 500))
    assert len(msg) <= 160
    assert msg.endswith("…")
    assert "http" not in user_message(UploadError("refused by https://bucket.s3/key?X-Amz=secret"))


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (None, "The upload failed for an unknown reason."),
        ("upload interrupted: timed out",
         "The connection dropped. Retry when you are back online."),
        ("cannot reach the API at http://x: refused",
         "The connection dropped. Retry when you are back online."),
        ("file changed while uploading (conflict, HTTP 409)", "File changed while uploading."),
    ],
)  # fmt: skip
def test_per_file_reasons_are_readable(reason: str | None, expected: str) -> None:
    assert reason_message(reason) == expected
