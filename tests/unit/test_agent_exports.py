"""The agent's public surface is what we mean to publish."""

from __future__ import annotations

import mobile_backup.agent as agent


def test_public_names() -> None:
    assert len(agent.__all__) == len(set(agent.__all__))
    assert set(agent.__all__) == {
        "DEFAULT_TEMPLATE",
        "MAX_FILENAME_BYTES",
        "STAGING_DIR",
        "STATE_FILE",
        "Agent",
        "AgentConfig",
        "AgentError",
        "AuditFinding",
        "Bandwidth",
        "ObjectMissingError",
        "DownloadError",
        "ContentMismatchError",
        "DownloadIntegrityError",
        "Downloader",
        "FileState",
        "Health",
        "Library",
        "MalformedMessageError",
        "Outcome",
        "OutcomeKind",
        "PathTemplate",
        "build_agent",
        "library_problem",
        "library_root",
        "run_agent_until",
        "AgentStatus",
        "agent_status",
        "pc_registry",
        "redrive",
        "register_pc",
        "configure_file_log",
        "log_path",
        "ServicePlan",
        "launchd_plan",
        "systemd_plan",
        "install_service",
        "uninstall_service",
        "Pywin32Api",
        "install_windows_service",
        "uninstall_windows_service",
        "PlacedFile",
        "Placement",
        "ReconcileReport",
        "Reconciler",
        "StateDB",
        "TransferConfig",
        "UnsafePathError",
        "config_from_settings",
        "ensure_inside",
        "is_reserved_name",
        "media_capture_time",
        "relative_path",
        "sanitize_filename",
    }
    for name in agent.__all__:
        assert getattr(agent, name) is not None
