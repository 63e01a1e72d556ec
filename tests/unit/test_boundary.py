"""The AWS error boundary: botocore errors become ours, everything else stays a bug."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mobile_backup.aws import Bucket, aws_call
from mobile_backup.core import ServiceError
from mobile_backup.ledger import Ledger


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


def test_botocore_errors_become_service_errors() -> None:
    with pytest.raises(ServiceError, match="could not read it"), aws_call("read it"):
        raise client_error("ThrottlingException")
    with pytest.raises(ServiceError), aws_call("read it"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_a_bug_is_not_dressed_up_as_a_service_error() -> None:
    with pytest.raises(KeyError), aws_call("read it"):
        raise KeyError("a bug")
    with pytest.raises(RecursionError), aws_call("read it"):
        raise RecursionError


class _Db:
    """A DynamoDB client whose every call fails with `exc` (the ledger's seam)."""

    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

        class _Exceptions:
            ConditionalCheckFailedException = type("ConditionalCheckFailed", (Exception,), {})

        self.exceptions = _Exceptions

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise self._exc

        return call


def test_the_ledger_translates_aws_failures_only() -> None:
    with pytest.raises(ServiceError):
        Ledger(_Db(client_error("ProvisionedThroughputExceededException")), "t").get("u", "h")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Ledger(_Db(TypeError("a bug in our request")), "t").get("u", "h")  # type: ignore[arg-type]


class _S3:
    """A HEAD that fails with `error`, and a listing of `keys`."""

    def __init__(self, keys: list[str], error: ClientError) -> None:
        self.keys = keys
        self.error = error
        self.listed: list[str] = []

    def head_object(self, **_: Any) -> Any:
        raise self.error

    def list_objects_v2(self, *, Bucket: str, Prefix: str, MaxKeys: int) -> dict[str, Any]:
        self.listed.append(Prefix)
        return {"Contents": [{"Key": k} for k in self.keys if k.startswith(Prefix)][:MaxKeys]}


def _missing(keys: list[str], key: str, error: ClientError) -> tuple[bool, list[str]]:
    s3 = _S3(keys, error)
    try:
        gone = Bucket(s3, "b").size_of(key) is None  # type: ignore[arg-type]
    except ServiceError:
        gone = False
    return gone, s3.listed


def test_a_404_is_missing_without_asking_and_a_403_is_settled_by_listing() -> None:
    present = ["media/u/present"]
    assert _missing(present, "media/u/gone", client_error("NoSuchKey", 404)) == (True, [])
    assert _missing(present, "media/u/gone", client_error("403", 403))[0]
    # Denied although present: a real permission problem, not a missing object.
    assert not _missing(present, "media/u/present", client_error("AccessDenied", 403))[0]
    # A key that is only a prefix of another is still missing.
    assert _missing(present, "media/u/pre", client_error("AccessDenied", 403))[0]
    assert not _missing(present, "media/u/x", client_error("SlowDown", 503))[0]


def test_the_boundary_maps_codes_through_its_one_table() -> None:
    from mobile_backup.aws import (
        AccessDeniedError,
        AwsNotFoundError,
        ConditionFailedError,
        NotAuthorizedError,
        ThrottledError,
    )
    from mobile_backup.aws._boundary import CODES

    for code, kind in CODES.items():
        with pytest.raises(kind) as raised, aws_call("do it"):
            raise client_error(code)
        assert raised.value.aws_code == code
    assert CODES["NoSuchKey"] is AwsNotFoundError
    assert CODES["AccessDenied"] is AccessDeniedError
    assert CODES["ConditionalCheckFailedException"] is ConditionFailedError
    assert CODES["NotAuthorizedException"] is NotAuthorizedError
    assert CODES["ThrottlingException"] is ThrottledError
