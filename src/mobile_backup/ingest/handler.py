"""The ingest Lambda entry point: SQS "events" → `IngestProcessor`, with partial batch failures.

`handler` is what the Lambda runtime calls (`mobile_backup.ingest.handler.handler`). The
local stack's poller wraps queue messages into the same SQS event and calls a handler built
by the same `make_handler`, so both run one code path. The event source mapping must enable
`ReportBatchItemFailures`, so that only the failed items come back.

Imports stay light for cold start: core, Powertools, and nothing of the agent or client.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mobile_backup.core import (
    LazyPool,
    MobileBackupError,
    RedactingFilter,
    load_settings,
    reseed_after_restore,
    snapshot_init,
)
from mobile_backup.ingest._processor import IngestProcessor

SERVICE = "mobile-backup-ingest"
PACKAGE_LOGGER = "mobile_backup"

# On Lambda this Powertools logger carries the invocation's context and its JSON formatter is
# copied onto the package's stdlib loggers (see `_default_handler`); everything else logs
# through stdlib `logging`, so the local poller keeps its host process's log format.
logger = Logger(service=SERVICE)
logger.registered_handler.addFilter(RedactingFilter())  # no secret reaches CloudWatch
_log = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


METRICS_NAMESPACE = "MobileBackup"
QUARANTINED_METRIC = "QuarantinedObjects"
"""Objects the API never presigned (the template's alarm watches it)."""


def emit_metric(name: str, value: int) -> None:
    """One CloudWatch metric as an Embedded Metric Format line on stdout: Lambda's log
    stream turns it into a metric, with no API call, no IAM grant and no import at cold
    start."""
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["Service"]],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }
            ],
        },
        "Service": SERVICE,
        name: value,
    }
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


RECORD_THREADS = 10
"""The records of a batch run side by side (the template's batch size is 10): each one's
ledger writes, messages and tags are round trips to AWS, and one batch's records are
independent (a repeated event settles on the ledger's conditions)."""
_record_pool = LazyPool(RECORD_THREADS, "ingest-record")


class _SideBySide(BatchProcessor):
    """Powertools' SQS batch processor, its records processed at the same time: each in a
    copy of the caller's context (the processor's batch state travels with it)."""

    def process(self) -> list[tuple[Any, ...]]:
        if len(self.records) < 2:
            return super().process()
        runs = [
            _record_pool().submit(contextvars.copy_context().run, self._process_record, record)
            for record in self.records
        ]
        return [run.result() for run in runs]


def make_handler(
    processor: IngestProcessor, *, metric: Callable[[str, int], None] | None = None
) -> LambdaHandler:
    """An SQS Lambda handler that feeds each record's body to `processor`.

    Returns `{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`: a record fails
    when its body raises, and only failed records are redelivered. A batch in which every
    record failed is reported the same way rather than raised, which Lambda treats alike.
    `metric(name, value)` is told of quarantined objects (on Lambda: `emit_metric`).
    """

    def record_handler(record: SQSRecord) -> None:
        outcome = processor.process_body(record.body)
        if outcome.quarantined and metric is not None:
            metric(QUARANTINED_METRIC, len(outcome.quarantined))
        _log.debug(
            "record %s: %d announced, %d duplicate(s), %d ignored",
            record.message_id,
            len(outcome.announced),
            len(outcome.duplicates),
            len(outcome.ignored),
        )

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = _SideBySide(
            event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=_log
        )
        with processor.batch():  # the PC registry is read once for the batch
            response = process_partial_response(
                event=event, record_handler=record_handler, processor=batch, context=context
            )
        failures = response.get("batchItemFailures", [])
        if failures:
            _log.warning(
                "%d of %d record(s) failed and will be retried",
                len(failures),
                len(event.get("Records", [])),
            )
        return dict(response)

    return handle


@functools.cache
def _default_handler() -> LambdaHandler:
    """Built once per container, on the first invocation, from the function's environment."""
    # Route this package's stdlib loggers through Powertools' JSON formatter. Only on the
    # Lambda path: the local poller keeps the host process's logging as it is.
    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER})
    return make_handler(IngestProcessor.from_settings(load_settings()), metric=emit_metric)


if snapshot_init():  # Lambda is initialising this function to snapshot it (SnapStart)
    reseed_after_restore()
    try:
        _default_handler()
    except MobileBackupError:
        logger.exception("the ingest function could not start")  # the first batch retries


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    return _default_handler()(event, context)
