"""The client's public API is what we mean to publish (the app and the CLI build on it)."""

from __future__ import annotations

import mobile_backup.client as client


def test_all_is_sorted_and_complete() -> None:
    assert client.__all__ == sorted(client.__all__, key=lambda n: (not n.isupper(), n))
    for name in client.__all__:
        assert hasattr(client, name), name


def test_the_engine_names_the_app_uses_are_published() -> None:
    assert {
        "Uploader",
        "UploadSubscriber",
        "UploadSummary",
        "FileResult",
        "UPLOADED",
        "DUPLICATE",
        "FAILED",
        "CANCELLED",
        "Journal",
        "journal_path",
        "Watcher",
        "RetryPolicy",
    } <= set(client.__all__)
    assert {"on_queued", "on_progress", "on_done"} <= set(dir(client.UploadSubscriber))
