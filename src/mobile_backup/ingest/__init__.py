"""The ingest: S3 events → ledger `uploaded` + one download message per new object.

On AWS it runs as a Lambda behind the SQS "events" queue (`mobile_backup.ingest.handler`);
locally `IngestPoller` feeds the same handler from the emulator's queue.
"""

from __future__ import annotations

from mobile_backup.ingest._poller import IngestPoller, LocalLambdaContext
from mobile_backup.ingest._processor import IngestOutcome, IngestProcessor
from mobile_backup.ingest.exceptions import AnnounceError, IngestError, MalformedEventError

__all__ = [
    "AnnounceError",
    "IngestError",
    "IngestOutcome",
    "IngestPoller",
    "IngestProcessor",
    "LocalLambdaContext",
    "MalformedEventError",
]
