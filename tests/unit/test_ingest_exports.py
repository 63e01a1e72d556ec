"""The ingest's public surface is what we mean to publish."""

from __future__ import annotations

import mobile_backup.ingest as ingest
from mobile_backup.core import InvalidInputError, MobileBackupError, ServiceError


def test_public_names() -> None:
    assert len(ingest.__all__) == len(set(ingest.__all__))
    assert set(ingest.__all__) == {
        "AnnounceError",
        "IngestError",
        "IngestOutcome",
        "IngestProcessor",
        "MalformedEventError",
    }
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None


def test_errors_sit_in_the_shared_tree() -> None:
    assert issubclass(ingest.IngestError, MobileBackupError)
    assert issubclass(ingest.MalformedEventError, InvalidInputError)
    assert issubclass(ingest.AnnounceError, ServiceError)
    assert ingest.MalformedEventError("x").code == "malformed_event"
    assert ingest.AnnounceError("x").code == "announce_failed"
