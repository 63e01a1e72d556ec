"""The ledger table's gateway: a DynamoDB client whose every call leaves through the boundary.

The ledger and the PC registry call DynamoDB through this (and nothing else calls it), so a
refused condition arrives as `ConditionFailedError`, a missing table as `AwsNotFoundError`,
and anything else AWS answered, or no answer, as `AwsServiceError`: never botocore's own
exceptions (`aws/_boundary.py` holds the table of codes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from mobile_backup.aws import aws_call

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_DOING = {
    "get_item": "read the ledger",
    "batch_get_item": "read the ledger",
    "query": "read the ledger",
    "put_item": "write the ledger",
    "update_item": "write the ledger",
}


class _Translated:
    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr) or name not in _DOING:
            return attr
        call: Callable[..., Any] = attr

        def translated(*args: Any, **kwargs: Any) -> Any:
            with aws_call(_DOING[name]):
                return call(*args, **kwargs)

        return translated


def ledger_table(client: DynamoDBClient) -> DynamoDBClient:
    """`client`, its ledger calls translated at the boundary (typed as the client itself)."""
    if isinstance(client, _Translated):
        return cast("DynamoDBClient", client)
    return cast("DynamoDBClient", _Translated(client))
