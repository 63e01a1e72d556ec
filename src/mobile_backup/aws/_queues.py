"""SQS queues' gateway: the only code that calls SQS.

A `Queue` is one queue through one SQS client: receive (long-polling, with the attributes
the caller wants), send, delete and change visibility (ten at a time, as SQS takes them),
its counts and attributes, its dead-letter queue, and a new queue made like it (a PC's own
downloads queue). Every failure leaves as one of the boundary's errors (`_boundary.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_backup.aws._boundary import AwsFailure, AwsServiceError, aws_call
from mobile_backup.core import SQS_BATCH, chunked

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handle = tuple[str, str]
"""(message id, receipt handle)."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What SQS did with a batch: how many it took, and its refusals' messages."""

    ok: int
    refused: list[str]


@dataclass(frozen=True, slots=True)
class QueueCounts:
    visible: int
    in_flight: int


class Queue:
    """One SQS queue."""

    def __init__(self, sqs: SQSClient, url: str) -> None:
        self.sqs = sqs
        self.url = url

    def receive(
        self,
        count: int,
        *,
        wait_s: int = 0,
        visibility_s: int | None = None,
        receive_count: bool = False,
        message_attributes: bool = False,
        all_attributes: bool = False,
    ) -> list[MessageTypeDef]:
        """Up to `count` (at most ten) messages, with their receive count, their message
        attributes, or every attribute (the local stack hands Lambda's event shape on)."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(count, SQS_BATCH)),
            "WaitTimeSeconds": wait_s,
        }
        if visibility_s is not None:
            kwargs["VisibilityTimeout"] = visibility_s
        if receive_count:
            kwargs["MessageSystemAttributeNames"] = ["ApproximateReceiveCount"]
        if message_attributes or all_attributes:
            kwargs["MessageAttributeNames"] = ["All"]
        if all_attributes:
            kwargs["MessageSystemAttributeNames"] = ["All"]
        with aws_call("receive from the queue"):
            resp = self.sqs.receive_message(**kwargs)
        return list(resp.get("Messages", []))

    def send(self, body: str, *, attributes: Mapping[str, str] | None = None) -> None:
        """One message, with string message attributes."""
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = _string_attributes(attributes)
        with aws_call("send to the queue"):
            self.sqs.send_message(**kwargs)

    def send_as_is(self, message: MessageTypeDef) -> None:
        """A received message's body and message attributes, sent to this queue."""
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": message.get("Body", "")}
        if message.get("MessageAttributes"):
            kwargs["MessageAttributes"] = message["MessageAttributes"]
        with aws_call("send to the queue"):
            self.sqs.send_message(**kwargs)

    def delete(self, handle: str) -> None:
        with aws_call("delete a message"):
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)

    def delete_batch(self, handles: Sequence[Handle]) -> BatchResult:
        """Delete up to ten messages in one call."""
        if len(handles) > SQS_BATCH:
            raise ValueError(f"at most {SQS_BATCH} messages per delete")
        with aws_call(f"delete {len(handles)} message(s)"):
            resp = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, (_, h) in enumerate(handles)],
            )
        return BatchResult(
            ok=len(resp.get("Successful", [])),
            refused=[str(f.get("Message", "")) for f in resp.get("Failed", [])],
        )

    def change_visibility(self, handles: Iterable[Handle], seconds: int) -> BatchResult:
        """Set the visibility of messages, ten per call; a batch SQS could not take is
        counted as refused (and the next one is still tried)."""
        ok, refused = 0, list[str]()
        for batch in chunked(list(handles), SQS_BATCH):
            try:
                with aws_call("change the visibility of messages"):
                    resp = self.sqs.change_message_visibility_batch(
                        QueueUrl=self.url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                            for i, (_, handle) in enumerate(batch)
                        ],
                    )
            except AwsFailure as exc:
                refused.extend(str(exc) for _ in batch)
                continue
            ok += len(resp.get("Successful", []))
            refused.extend(str(f.get("Message", "")) for f in resp.get("Failed", []))
        return BatchResult(ok=ok, refused=refused)

    def attributes(self, *names: str) -> dict[str, str]:
        with aws_call("read the queue's attributes"):
            resp = self.sqs.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=list(names),  # type: ignore[arg-type]
            )
        return {str(k): str(v) for k, v in resp.get("Attributes", {}).items()}

    def counts(self) -> QueueCounts:
        attrs = self.attributes(
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
        )
        return QueueCounts(
            visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def dead_letter_queue(self) -> Queue | None:
        """The queue's DLQ, from its redrive policy (None if it has none)."""
        policy = self.attributes("RedrivePolicy").get("RedrivePolicy")
        if not policy:
            return None
        try:
            arn = str(json.loads(policy)["deadLetterTargetArn"])
            account, name = arn.split(":")[4], arn.split(":")[5]
        except (KeyError, IndexError, ValueError) as exc:
            raise AwsServiceError(f"the queue's redrive policy is not readable: {exc}") from exc
        with aws_call("find the dead-letter queue"):
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return Queue(self.sqs, url["QueueUrl"])

    def create_like(self, name: str, attributes: Sequence[str]) -> Queue:
        """A queue named `name` with this queue's `attributes` (idempotent)."""
        mine = self.attributes("All")
        copied: dict[Any, str] = {k: mine[k] for k in attributes if k in mine}
        with aws_call("create the queue"):
            url = self.sqs.create_queue(QueueName=name, Attributes=copied)["QueueUrl"]
        return Queue(self.sqs, url)


def _string_attributes(values: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}
