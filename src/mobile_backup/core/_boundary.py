"""The one boundary where botocore's errors become ours: map what we know, re-raise the rest.

`aws_call("write the ledger")` turns a `ClientError` or `BotoCoreError` raised inside the
block into a `ServiceError` (a 503 at the API, a retry at the agent). Anything else (a
`KeyError`, a `RecursionError`, a bug) passes through untouched, so a bug stays a bug: a
logged 500, never a retried "service unavailable". This is httpx's transport boundary.

`object_missing` answers "is this object gone?" the way S3 means it: S3 says 404 only to a
caller allowed to list the bucket and 403 to anyone else, so a 403 is settled by listing
the key itself (`ListObjectsV2` with the key as prefix, which the templates grant on the
`media/` prefix only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mobile_backup.core._errors import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})


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


@contextlib.contextmanager
def aws_call(doing: str, *, error: type[ServiceError] = ServiceError) -> Iterator[None]:
    """Translate botocore failures inside the block into `error("could not {doing}: …")`."""
    try:
        yield
    except boto_errors() as exc:
        raise error(f"could not {doing}: {exc}") from exc


def object_missing(s3: S3Client, bucket: str, key: str, exc: BaseException) -> bool:
    """True when `exc` (from a GET or HEAD of `key`) means the object does not exist."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    if code not in ACCESS_DENIED_CODES:
        return False
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except boto_errors():
        return False  # cannot tell: not "missing", so nothing is given up on
    return not any(item.get("Key") == key for item in listed.get("Contents", []))
