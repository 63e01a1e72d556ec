"""API-layer errors and the one place that maps errors to HTTP responses.

    MobileBackupError (core)
    ├── AuthError (core) ──────────────── 401, `WWW-Authenticate: Bearer ...`
    │   ├── TokenMissingError             token_missing: no `Authorization: Bearer` header
    │   ├── TokenExpiredError             token_expired: the access token's `exp` has passed
    │   ├── TokenInvalidError             token_invalid: signature, issuer, client, use, form
    │   └── MemberRemovedError            member_removed: removed, disabled or signed out
    │                                     everywhere (Cognito says so; asked once a minute)
    ├── InvalidInputError (core) ──────── 400 (e.g. invalid_cursor from the ledger)
    │   ├── InvalidJsonError              400 invalid_json: the body is not JSON (or not UTF-8)
    │   ├── InvalidRequestError           422 invalid_request: the request fails the schema
    │   ├── UnsupportedMediaTypeError     415 unsupported_media_type
    │   ├── PayloadTooLargeError          413 payload_too_large (the local server's body limit)
    │   └── MethodNotAllowedError         405 method_not_allowed (+ `Allow`)
    │   └── IncompleteUploadError         upload_incomplete: S3 does not hold every part yet
    ├── NotFoundError (core) ──────────── 404
    │   ├── RouteNotFoundError            not_found: no such route
    │   └── UploadNotFoundError           upload_not_found: no such multipart upload of yours
    ├── IntegrityError (core) ─────────── 400
    │   ├── PartMismatchError             part_mismatch: a held part has the wrong size/CRC
    │   └── FileMismatchError             file_mismatch: the parts are not the declared file
    ├── ServiceError (core) ───────────── 503 service_unavailable (logged; detail not exposed)
    ├── AwsFailure (aws) ──────────────── 503 too, whatever core class it refines: an AWS
    │                                     error no route turned into one of its own
    └── anything else ─────────────────── 500 internal_error (logged; a 500 is a bug)

Every error response is JSON: `{"code": "<stable code>", "message": "<human text>"}`, plus
`"details"` where there is more to say (the list of schema violations).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from mobile_backup.aws import AwsFailure
from mobile_backup.core import (
    AuthError,
    IntegrityError,
    InvalidInputError,
    MobileBackupError,
    NotFoundError,
    ServiceError,
)

__all__ = [
    "InvalidJsonError",
    "InvalidRequestError",
    "MemberRemovedError",
    "MethodNotAllowedError",
    "PayloadTooLargeError",
    "RouteNotFoundError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenMissingError",
    "UnsupportedMediaTypeError",
    "error_body",
    "error_response",
    "from_validation_errors",
    "status_for",
]

logger = logging.getLogger(__name__)

BEARER_REALM = "mobile-backup"


class TokenMissingError(AuthError):
    """The request carries no bearer token."""

    code = "token_missing"


class TokenExpiredError(AuthError):
    """The access token has expired; the client should refresh it."""

    code = "token_expired"


class TokenInvalidError(AuthError):
    """The token is malformed, badly signed, or not an access token for this client."""

    code = "token_invalid"


class MemberRemovedError(AuthError):
    """A valid token of someone who is no longer an active member of the household."""

    code = "member_removed"


class InvalidJsonError(InvalidInputError):
    """The request body could not be parsed as JSON."""

    code = "invalid_json"


class InvalidRequestError(InvalidInputError):
    """The request is JSON but does not match the schema; `details` lists each violation."""

    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.details = [dict(d) for d in details]


class UnsupportedMediaTypeError(InvalidInputError):
    """The body is in a content type the API does not accept."""

    code = "unsupported_media_type"


class PayloadTooLargeError(InvalidInputError):
    """The request body exceeds what API Gateway (and so the local server) accepts."""

    code = "payload_too_large"


class MethodNotAllowedError(InvalidInputError):
    """The path exists but not for this method."""

    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.allowed = sorted(set(allowed))


class RouteNotFoundError(NotFoundError):
    """No route matches the request's path."""

    code = "not_found"


class UploadNotFoundError(NotFoundError):
    """No multipart upload with this id exists under the caller's key for this file."""

    code = "upload_not_found"


class IncompleteUploadError(InvalidInputError):
    """Completion was asked for while S3 does not hold every part."""

    code = "upload_incomplete"


class PartMismatchError(IntegrityError):
    """A part S3 holds does not have the size or checksum the declared file implies."""

    code = "part_mismatch"


class FileMismatchError(IntegrityError):
    """The parts S3 holds do not assemble into the file declared at start (full-object CRC)."""

    code = "file_mismatch"


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> InvalidInputError:
    """Translate Powertools' request-validation errors into ours.

    Powertools reports a body that is not JSON as a validation error of type `json_invalid`;
    that is a 400 (the client sent garbage), not a 422 (the client sent the wrong shape).
    """
    details = [
        {
            "loc": list(e.get("loc", ())),
            "type": str(e.get("type", "invalid")),
            "message": _human(e),
        }
        for e in errors
    ]
    for e in errors:
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error") or "malformed"
            return InvalidJsonError(f"the request body is not valid JSON ({reason})")
    if not details:
        return InvalidRequestError("the request does not match the API schema")
    first = details[0]
    where = ".".join(str(p) for p in first["loc"]) or "request"
    more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
    return InvalidRequestError(f"{where}: {first['message']}{more}", details=details)


def _human(error: Mapping[str, Any]) -> str:
    if tuple(error.get("loc", ())) == ("body",) and error.get("type") == "missing":
        return "the request needs a JSON body"
    # Our own validators raise ValueError; pydantic prefixes their text with "Value error, ".
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def status_for(exc: BaseException) -> int:
    """The HTTP status for an error; anything not raised on purpose is a 500."""
    # Order matters: subclasses before the core classes they refine. An AWS failure that
    # reaches here was not turned into one of the API's own errors by the code that met it:
    # the backend's problem (a missing table, credentials, throttling), never the caller's.
    table: tuple[tuple[type[BaseException], HTTPStatus], ...] = (
        (AwsFailure, HTTPStatus.SERVICE_UNAVAILABLE),
        (AuthError, HTTPStatus.UNAUTHORIZED),
        (InvalidJsonError, HTTPStatus.BAD_REQUEST),
        (InvalidRequestError, HTTPStatus.UNPROCESSABLE_ENTITY),
        (UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        (PayloadTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
        (MethodNotAllowedError, HTTPStatus.METHOD_NOT_ALLOWED),
        (InvalidInputError, HTTPStatus.BAD_REQUEST),
        (IntegrityError, HTTPStatus.BAD_REQUEST),
        (NotFoundError, HTTPStatus.NOT_FOUND),
        (ServiceError, HTTPStatus.SERVICE_UNAVAILABLE),
    )
    for cls, status in table:
        if isinstance(exc, cls):
            return int(status)
    return int(HTTPStatus.INTERNAL_SERVER_ERROR)


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON body for an error (what the client may see; nothing internal)."""
    status = status_for(exc)
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        # The botocore text names tables and internals; the log keeps it, the caller may retry.
        return {
            "code": "service_unavailable",
            "message": "a cloud service the API depends on failed; try again shortly",
        }
    if status >= 500 or not isinstance(exc, MobileBackupError):
        return {
            "code": "internal_error",
            "message": "the server hit an unexpected error; it has been logged",
        }
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    details = getattr(exc, "details", None)
    if details:
        body["details"] = details
    return body


def error_response(exc: BaseException) -> Response[dict[str, Any]]:
    """The complete HTTP response for an error, logging the ones that are our fault."""
    status = status_for(exc)
    if status >= 500:
        # Server-side failures are logged with their traceback; client errors are not noise.
        logger.error("request failed with %d: %s", status, exc, exc_info=exc)
    headers: dict[str, str | list[str]] = {}
    if isinstance(exc, AuthError):
        challenge = f'Bearer realm="{BEARER_REALM}"'
        if not isinstance(exc, TokenMissingError):
            # RFC 6750 §3: a presented but unusable token is `invalid_token`.
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    if isinstance(exc, MethodNotAllowedError):
        headers["Allow"] = ", ".join(exc.allowed)
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = "1"
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(exc),
        headers=headers,
    )
