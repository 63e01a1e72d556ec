"""The agent's public surface is what we mean to publish."""

from __future__ import annotations

import mobile_backup.agent as agent


def test_public_names() -> None:
    assert len(agent.__all__) == len(set(agent.__all__))
    assert set(agent.__all__) == {
        "MAX_FILENAME_BYTES",
        "STAGING_DIR",
        "Agent",
        "AgentError",
        "DownloadError",
        "DownloadIntegrityError",
        "Library",
        "MalformedMessageError",
        "Outcome",
        "OutcomeKind",
        "Placement",
        "UnsafePathError",
        "ensure_inside",
        "is_reserved_name",
        "relative_path",
        "sanitize_filename",
    }
    for name in agent.__all__:
        assert getattr(agent, name) is not None
