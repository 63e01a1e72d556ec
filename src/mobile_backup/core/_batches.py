"""Batches: cutting a list into pieces, and SQS's ten-at-a-time deletes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from mobile_backup.core._boundary import aws_call

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")

SQS_BATCH = 10
"""SQS's limit per ReceiveMessage / DeleteMessageBatch / ChangeMessageVisibilityBatch."""


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive lists of at most `size`."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def delete_messages(
    sqs: SQSClient, queue_url: str, handles: Sequence[tuple[str, str]], *, what: str
) -> tuple[int, list[str]]:
    """Delete up to ten (message id, receipt handle) pairs in one call.

    Returns how many SQS deleted and its refusals' messages; raises ServiceError ("could not
    `what`: …") when SQS cannot be reached.
    """
    if len(handles) > SQS_BATCH:
        raise ValueError(f"at most {SQS_BATCH} messages per delete")
    with aws_call(what):
        resp = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h} for i, (_, h) in enumerate(handles)],
        )
    refused = [str(f.get("Message", "")) for f in resp.get("Failed", [])]
    return len(resp.get("Successful", [])), refused
