"""Errors raised by the ingest.

    MobileBackupError
    └── IngestError                    root of this package's errors
        ├── MalformedEventError        a queue body that is not an S3 notification (also
        │                              InvalidInputError); the item fails and, after the
        │                              queue's maxReceiveCount, lands in the dead-letter queue
        └── AnnounceError              the download message could not be sent (also
                                       ServiceError); the item fails and is retried

A key outside the media scheme is not an error: it is logged and ignored, since retrying it
could never succeed.
"""

from __future__ import annotations

from mobile_backup.core import InvalidInputError, MobileBackupError, ServiceError


class IngestError(MobileBackupError):
    """Root of the ingest's errors."""

    code = "ingest_error"


class MalformedEventError(IngestError, InvalidInputError):
    """A message body that is not an S3 event notification we understand."""

    code = "malformed_event"


class AnnounceError(IngestError, ServiceError):
    """Sending the download message to the downloads queue failed."""

    code = "announce_failed"
