"""The one mapping from errors to HTTP responses."""

from __future__ import annotations

import json
import logging

import pytest

from mobile_backup.api.exceptions import (
    InvalidJsonError,
    InvalidRequestError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
    TokenMissingError,
    UnsupportedMediaTypeError,
    error_body,
    error_response,
    from_validation_errors,
    status_for,
)
from mobile_backup.core import (
    AuthError,
    ConfigError,
    IntegrityError,
    InvalidInputError,
    InvalidKeyError,
    MobileBackupError,
    NotFoundError,
    ServiceError,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TokenMissingError("x"), 401, "token_missing"),
        (TokenExpiredError("x"), 401, "token_expired"),
        (TokenInvalidError("x"), 401, "token_invalid"),
        (AuthError("x"), 401, "unauthorized"),
        (InvalidJsonError("x"), 400, "invalid_json"),
        (InvalidRequestError("x"), 422, "invalid_request"),
        (UnsupportedMediaTypeError("x"), 415, "unsupported_media_type"),
        (PayloadTooLargeError("x"), 413, "payload_too_large"),
        (MethodNotAllowedError("x", allowed=["GET"]), 405, "method_not_allowed"),
        (InvalidInputError("x", code="invalid_cursor"), 400, "invalid_cursor"),
        (InvalidKeyError("x"), 400, "invalid_key"),
        (IntegrityError("x"), 400, "integrity_error"),
        (RouteNotFoundError("x"), 404, "not_found"),
        (NotFoundError("x"), 404, "not_found"),
        (ServiceError("x"), 503, "service_unavailable"),
        (ConfigError("x"), 500, "internal_error"),
        (MobileBackupError("x"), 500, "internal_error"),
        (KeyError("x"), 500, "internal_error"),
    ],
)
def test_every_error_has_a_status_and_a_stable_code(
    error: Exception, status: int, code: str
) -> None:
    assert status_for(error) == status
    response = error_response(error)
    assert response.status_code == status
    assert response.body is not None
    assert response.body["code"] == code
    assert isinstance(response.body["message"], str)
    assert response.body["message"]
    json.dumps(response.body)  # serialisable as it stands


def test_client_errors_carry_their_message() -> None:
    assert error_body(InvalidInputError("the cursor is stale", code="invalid_cursor")) == {
        "code": "invalid_cursor",
        "message": "the cursor is stale",
    }


@pytest.mark.parametrize(
    "error",
    [
        ServiceError("could not write the ledger: ResourceNotFoundException table t-ledger"),
        RuntimeError("secret internals at /var/task/x.py"),
        ConfigError("setting 'table' is not configured (set MOBILE_BACKUP_TABLE)"),
    ],
)
def test_server_side_errors_do_not_leak_internals_but_are_logged(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mobile_backup.api.exceptions"):
        response = error_response(error)
    assert response.body is not None
    assert str(error) not in json.dumps(response.body)
    assert any(str(error) in r.getMessage() and r.exc_info for r in caplog.records)


def test_client_errors_are_not_logged_as_errors(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mobile_backup.api.exceptions"):
        error_response(TokenInvalidError("bad signature"))
    assert not caplog.records


def test_auth_errors_send_a_bearer_challenge() -> None:
    missing = error_response(TokenMissingError("x")).headers["WWW-Authenticate"]
    invalid = error_response(TokenExpiredError("x")).headers["WWW-Authenticate"]
    assert missing == 'Bearer realm="mobile-backup"'
    assert invalid == 'Bearer realm="mobile-backup", error="invalid_token"'


def test_method_not_allowed_lists_the_allowed_methods() -> None:
    response = error_response(MethodNotAllowedError("x", allowed=["POST", "GET", "POST"]))
    assert response.headers["Allow"] == "GET, POST"


def test_service_unavailable_suggests_a_retry() -> None:
    assert error_response(ServiceError("x")).headers["Retry-After"] == "1"


def test_a_body_that_is_not_json_is_a_400_not_a_422() -> None:
    error = from_validation_errors(
        [
            {
                "type": "json_invalid",
                "loc": ("body", 1),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting property name enclosed in double quotes"},
            }
        ]
    )
    assert isinstance(error, InvalidJsonError)
    assert "double quotes" in error.message


def test_schema_violations_become_details_with_readable_messages() -> None:
    error = from_validation_errors(
        [
            {"type": "missing", "loc": ("body",), "msg": "Field required"},
            {
                "type": "value_error",
                "loc": ("body", "files", 0, "size"),
                "msg": "Value error, the file is too big",
                "input": 1,
                "ctx": {"error": "x"},
            },
        ]
    )
    assert isinstance(error, InvalidRequestError)
    assert error.details == [
        {"loc": ["body"], "type": "missing", "message": "the request needs a JSON body"},
        {
            "loc": ["body", "files", 0, "size"],
            "type": "value_error",
            "message": "the file is too big",
        },
    ]
    assert error.message == "body: the request needs a JSON body (and 1 more problem(s))"
    assert error_body(error)["details"] == error.details
