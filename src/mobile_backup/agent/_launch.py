"""Starting the agent the way every front end does: `agent run`, the Windows service and
the systemd/launchd units all build it here from a profile plus options."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from mobile_backup.agent._config import AgentConfig, config_from_settings
from mobile_backup.agent._logging import configure_file_log, log_path
from mobile_backup.agent._placement import library_problem
from mobile_backup.agent._transfer import TransferConfig
from mobile_backup.agent._worker import Agent
from mobile_backup.core import ConfigError, Settings, load_settings


def library_root(cfg: Settings) -> Path:
    """The profile's library folder, resolved; a ConfigError if it cannot be one."""
    root = cfg.library
    if root is None:
        raise ConfigError("no library folder: pass --library or set it in the profile")
    root = root.expanduser().resolve()
    problem = library_problem(root)
    if problem:
        raise ConfigError(f"{problem} (--library)")
    return root


def build_agent(
    cfg: Settings,
    *,
    workers: int | None = None,
    delete_after_download: bool | None = None,
    path_template: str | None = None,
    max_bandwidth_mb: float | None = None,
    part_size_mb: int | None = None,
    reconcile_hours: float | None = None,
    wait_seconds: int | None = None,
) -> Agent:
    """The agent for a profile plus command-line overrides (template validated here)."""
    if path_template is not None:
        cfg = cfg.model_copy(update={"path_template": path_template})
    transfer: dict[str, Any] = {}
    if max_bandwidth_mb:
        transfer["max_bandwidth"] = int(max_bandwidth_mb * 1_000_000)
    if part_size_mb:
        transfer["part_size"] = part_size_mb * 1024 * 1024
        transfer["max_part_size"] = transfer["part_size"]  # asked for: exactly that size
        transfer["threshold"] = max(TransferConfig().threshold, 2 * transfer["part_size"])
    try:
        config: AgentConfig = config_from_settings(
            cfg,
            workers=workers,
            delete_after_download=delete_after_download,
            transfer=TransferConfig(**transfer) if transfer else None,
            reconcile_interval=reconcile_hours * 3600 if reconcile_hours else None,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid agent option: {exc}") from exc
    kwargs: dict[str, Any] = {"library": library_root(cfg), "config": config}
    if wait_seconds is not None:
        kwargs["wait_seconds"] = wait_seconds
    return Agent.from_settings(cfg, **kwargs)


def run_agent_until(
    stop: threading.Event,
    *,
    profile: str | None = None,
    config_file: Path | None = None,
    **options: Any,
) -> None:
    """Run the agent with a rotating log until `stop` is set (the services call this)."""
    if config_file is not None:
        # The Windows service runs as another account: point it at the installer's config.
        os.environ["MOBILE_BACKUP_CONFIG_FILE"] = str(config_file)
    cfg = load_settings(profile)
    agent = build_agent(cfg, **options)
    handler = configure_file_log(log_path(agent.library.root))
    try:
        agent.run(stop)
    finally:
        agent.close()
        logging.getLogger("mobile_backup").removeHandler(handler)
        handler.close()
