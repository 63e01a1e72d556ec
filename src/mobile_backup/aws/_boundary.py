"""The one boundary where botocore's errors become ours: map what we know, re-raise the rest.

    ServiceError (core)
    └── AwsFailure                            every failure of an AWS call is a ServiceError
        ├── AwsServiceError                   anything the table does not refine, or no answer
        │   ├── AccessDeniedError             the role may not (IAM), or S3's 403
        │   ├── ThrottledError                slow down: retried by the caller's policy
        │   └── ConditionFailedError          a conditional write's condition was false
        ├── AwsNotFoundError + NotFoundError  no such key, upload, user, queue, table, stack
        ├── AwsRefusedError + InvalidInputError  the request itself was refused (a bad value)
        ├── NotAuthorizedError + AuthError    Cognito: wrong password, revoked token, disabled
        └── CredentialsError + ConfigError    no credentials, or expired / invalid ones

Every AWS failure is a `ServiceError`, so code that only needs "AWS did not do it" (the
agent's loop, a best-effort tag) catches that; the second parents let callers that care
tell a missing object, a refused value or a wrong password apart.

Every class carries `aws_code`, the code AWS answered with ('' when it never answered),
for the few callers that tell codes apart (the sign-in's words for each refusal). The table
`CODES` is the only place an AWS code is named outside the gateways' docstrings.

`aws_call("write the ledger")` turns a `ClientError` or `BotoCoreError` raised inside the
block into the mapped error ("could not write the ledger: ..."). Anything else (a
`KeyError`, a `RecursionError`, a bug) passes through untouched, so a bug stays a bug: a
logged 500, never a retried "service unavailable" (httpx's transport boundary).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mobile_backup.core import (
    AuthError,
    ConfigError,
    InvalidInputError,
    MobileBackupError,
    NotFoundError,
    ServiceError,
)


class AwsFailure(ServiceError):
    """What every error of this boundary has: the AWS code it was translated from."""

    code = "service_unavailable"

    aws_code: str = ""
    aws_message: str = ""
    """AWS's own words (e.g. the pool's password rules), '' when it never answered."""

    def __init__(
        self, message: str, *, aws_code: str = "", aws_message: str = "", code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.aws_code = aws_code
        self.aws_message = aws_message


class AwsServiceError(AwsFailure):
    code = "service_unavailable"


class AccessDeniedError(AwsServiceError):
    code = "access_denied"


class ThrottledError(AwsServiceError):
    code = "throttled"


class ConditionFailedError(AwsServiceError):
    code = "condition_failed"

    item: dict[str, Any] | None = None
    """The item as it stood, when the write asked for it (`ReturnValuesOnConditionCheckFailure`)
    and the service sent it: None when it did not (no such item, or an emulator that does
    not return it)."""


class AwsNotFoundError(AwsFailure, NotFoundError):
    code = "not_found"


class AwsRefusedError(AwsFailure, InvalidInputError):
    code = "refused"


class NotAuthorizedError(AwsFailure, AuthError):
    code = "not_authorized"


class CredentialsError(AwsFailure, ConfigError):
    code = "no_credentials"


CODES: dict[str, type[AwsFailure]] = {
    # Not there (S3 says 404 only to a caller who may list: see `Bucket.missing`).
    **dict.fromkeys(
        ["404", "NoSuchKey", "NotFound", "NoSuchUpload", "NoSuchBucket",
         "UserNotFoundException", "ResourceNotFoundException", "QueueDoesNotExist",
         "AWS.SimpleQueueService.NonExistentQueue"],
        AwsNotFoundError,
    ),
    **dict.fromkeys(
        ["403", "AccessDenied", "AccessDeniedException", "Forbidden"], AccessDeniedError
    ),
    **dict.fromkeys(
        ["ThrottlingException", "Throttling", "ProvisionedThroughputExceededException",
         "RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
         "LimitExceededException"],
        ThrottledError,
    ),
    "ConditionalCheckFailedException": ConditionFailedError,
    "NotAuthorizedException": NotAuthorizedError,
    **dict.fromkeys(
        ["ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
         "UnrecognizedClientException"],
        CredentialsError,
    ),
    **dict.fromkeys(
        ["InvalidParameterException", "InvalidPasswordException", "UsernameExistsException",
         "CodeMismatchException", "EnableSoftwareTokenMFAException", "InvalidPart",
         "InvalidPartOrder", "EntityTooSmall", "BadDigest", "InvalidRequest",
         "PasswordResetRequiredException", "UserNotConfirmedException", "InvalidRange"],
        AwsRefusedError,
    ),
}  # fmt: skip

_NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, "
    "or pass --aws-profile"
)


def boto_errors() -> tuple[type[Exception], ...]:
    """botocore's two error roots (imported late: the Lambda cold start)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def translate_error(
    exc: Exception, doing: str, *, error: type[ServiceError] = AwsServiceError
) -> MobileBackupError:
    """The error of ours for a botocore failure (`error` for what the table does not know)."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(_NO_CREDENTIALS)
    code = error_code(exc)
    said = _aws_message(exc)
    mapped = CODES.get(code)
    message = f"could not {doing}: {exc}"
    if mapped is CredentialsError:
        message = f"could not {doing}: the AWS credentials are expired or invalid ({code})"
    if mapped is not None:
        failure = mapped(message, aws_code=code, aws_message=said)
        if isinstance(failure, ConditionFailedError):
            item = getattr(exc, "response", {}).get("Item")
            failure.item = item if isinstance(item, dict) else None
        return failure
    if issubclass(error, AwsFailure):
        return error(message, aws_code=code, aws_message=said)
    return error(message)


def _aws_message(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))
    return ""


@contextlib.contextmanager
def aws_call(doing: str, *, error: type[ServiceError] = AwsServiceError) -> Iterator[None]:
    """Translate botocore failures inside the block (see the module docstring)."""
    try:
        yield
    except boto_errors() as exc:
        raise translate_error(exc, doing, error=error) from exc
