"""The local stack's stand-in for Lambda's SQS event source mapping.

On AWS, Lambda long-polls the events queue, hands batches to the ingest handler and deletes
the records that did not come back in `batchItemFailures`. `IngestPoller` does exactly that
against the emulator and calls a handler made by the same `make_handler`, so the local
stack exercises the Lambda's code path rather than a copy of it.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import AwsFailure, Queue, sqs_client
from mobile_backup.core import SQS_BATCH, Settings, chunked
from mobile_backup.ingest import IngestProcessor
from mobile_backup.local._lambda_context import LocalLambdaContext

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageTypeDef,
    )

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]

ERROR_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)
CONCURRENCY = 5
"""Batches handled at once. Lambda's SQS event source starts with five concurrent pollers
and scales up; one at a time made a burst of 200 uploads queue behind a single batch."""


class IngestPoller:
    """Long-poll the events queue and feed the messages to an SQS Lambda handler.

    Args:
        settings: supplies `events_queue_url` and `region`.
        handler: an SQS Lambda handler; by default `make_handler` over an
            `IngestProcessor` built from `settings`, i.e. what the Lambda runs.
        sqs: an SQS client for the events queue; by default built from `settings`.
        wait_seconds: the long-poll wait; short so that `run` stops promptly.
        batch_size: messages per handler call (1 to 10).
        concurrency: batches in flight at once (`run` polls from this many threads).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        handler: Handler | None = None,
        sqs: SQSClient | None = None,
        wait_seconds: int = 1,
        batch_size: int = SQS_BATCH,
        concurrency: int = CONCURRENCY,
    ) -> None:
        if not 1 <= batch_size <= SQS_BATCH:
            raise ValueError(f"batch_size must be 1..{SQS_BATCH}, not {batch_size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._concurrency = concurrency
        self._region = settings.region
        if handler is None:
            # Imported here: Powertools is only needed when the poller actually runs.
            from mobile_backup.ingest.handler import make_handler

            handler = make_handler(IngestProcessor.from_settings(settings))
        self._handler = handler
        self._queue = Queue(
            sqs if sqs is not None else sqs_client(settings, component="local"),
            settings.require("events_queue_url"),
        )
        self._wait_seconds = max(0, wait_seconds)
        self._batch_size = batch_size
        self._queue_arn: str | None = None

    def poll_once(self) -> int:
        """Receive one batch, hand it to the handler, delete what succeeded.

        Returns the number of messages received (0 when the wait ended empty-handed).
        Messages the handler reports as failed, or all of them if it raises, are left on
        the queue: they reappear after the visibility timeout, as with Lambda.
        """
        messages = self._queue.receive(
            self._batch_size, wait_s=self._wait_seconds, all_attributes=True
        )
        if not messages:
            return 0
        event = {"Records": [self._lambda_record(m) for m in messages]}
        context = LocalLambdaContext(
            str(uuid.uuid4()), function_name="mobile-backup-ingest-local", memory_limit_in_mb=128
        )
        try:
            response = self._handler(event, context)
        except Exception:
            logger.exception(
                "the ingest handler raised; %d message(s) will be retried", len(messages)
            )
            return len(messages)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if failed:
            logger.warning(
                "%d of %d event(s) failed and will be retried", len(failed), len(messages)
            )
        self._delete(done)
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set, `concurrency` batches at a time (as Lambda would);
        errors are logged and retried with a bounded backoff."""
        helpers = [
            threading.Thread(target=self._poll_until, args=(stop,), name=f"ingest-{i}", daemon=True)
            for i in range(1, self._concurrency)
        ]
        for t in helpers:
            t.start()
        try:
            self._poll_until(stop)
        finally:
            for t in helpers:
                t.join()

    def _poll_until(self, stop: threading.Event) -> None:
        errors = 0
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                errors += 1
                logger.exception("ingest poll failed; retrying in %.1f s", delay)
                stop.wait(delay)
            else:
                errors = 0

    # Helpers ---------------------------------------------------------------------------
    def _delete(self, messages: list[MessageTypeDef]) -> None:
        handles = [(str(i), m["ReceiptHandle"]) for i, m in enumerate(messages)]
        for batch in chunked(handles, SQS_BATCH):
            try:
                refused = self._queue.delete_batch(batch).refused
            except AwsFailure as exc:
                # Harmless: the events come back and the ingest is idempotent.
                logger.warning("%s", exc)
                continue
            for message in refused:
                logger.warning("could not delete a processed event: %s", message)

    def _arn(self) -> str:
        if self._queue_arn is None:
            self._queue_arn = self._queue.attributes("QueueArn")["QueueArn"]
        return self._queue_arn

    def _lambda_record(self, message: MessageTypeDef) -> dict[str, Any]:
        """One SQS message in the shape Lambda's event source mapping delivers it."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _lambda_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn(),
            "awsRegion": self._region,
        }


def _lambda_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    """boto3's message attribute → Lambda's camelCase form (binary values base64)."""
    out: dict[str, Any] = {
        "dataType": value.get("DataType", "String"),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [
            base64.b64encode(b).decode("ascii") for b in value.get("BinaryListValues", [])
        ],
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return out
