"""The ingest's errors sit in the shared tree, with stable codes."""

from __future__ import annotations

import mobile_backup.ingest as ingest
from mobile_backup.core import InvalidInputError, MobileBackupError, ServiceError


def test_errors_sit_in_the_shared_tree() -> None:
    assert issubclass(ingest.IngestError, MobileBackupError)
    assert issubclass(ingest.MalformedEventError, InvalidInputError)
    assert issubclass(ingest.AnnounceError, ServiceError)
    assert ingest.MalformedEventError("x").code == "malformed_event"
    assert ingest.AnnounceError("x").code == "announce_failed"
