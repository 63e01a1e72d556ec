"""The ingest: S3 events → ledger `uploaded` + one download message per new object.

On AWS it runs as a Lambda behind the SQS "events" queue (`mobile_backup.ingest.handler`);
the local stack feeds the same handler from the emulator's queue
(`mobile_backup.local.IngestPoller`).
"""

from __future__ import annotations

from mobile_backup.ingest._processor import IngestOutcome, IngestProcessor
from mobile_backup.ingest.exceptions import AnnounceError, IngestError, MalformedEventError

__all__ = [
    "AnnounceError",
    "IngestError",
    "IngestOutcome",
    "IngestProcessor",
    "MalformedEventError",
]
