"""Starting the agent the way every front end does: `agent run`, the Windows service and the
systemd/launchd units (which run `agent run`) all go through `run_agent` here.

What a front end may override of the profile travels as one typed value, `AgentOptions`,
with its units in its field names; it is checked once, here, at the boundary.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.agent._config import AgentConfig, config_from_settings
from mobile_backup.agent._logging import configure_file_log, log_path
from mobile_backup.agent._outcome import Outcome
from mobile_backup.agent._placement import library_problem
from mobile_backup.agent._transfer import TransferConfig
from mobile_backup.agent._worker import Agent
from mobile_backup.core import ConfigError, Settings, load_settings


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOptions:
    """What a front end overrides of the profile for one agent; None keeps the profile's."""

    workers: int | None = None
    delete_after_download: bool | None = None
    path_template: str | None = None
    max_bandwidth_bytes_per_s: int | None = None
    part_size_bytes: int | None = None
    """Exactly this size per ranged GET (else chosen for throughput)."""
    reconcile_interval_s: float | None = None
    """Seconds between reconcile passes inside `run` (None: the profile's, else none)."""
    poll_wait_s: int | None = None
    log_file: Path | None = None
    """The rotating log (default: in the library's hidden dir)."""

    def __post_init__(self) -> None:
        positive = {
            "workers": self.workers,
            "max_bandwidth_bytes_per_s": self.max_bandwidth_bytes_per_s,
            "part_size_bytes": self.part_size_bytes,
            "reconcile_interval_s": self.reconcile_interval_s,
            "poll_wait_s": self.poll_wait_s,
        }
        bad = [name for name, value in positive.items() if value is not None and value <= 0]
        if bad:
            raise ConfigError(f"invalid agent option: {', '.join(bad)} must be positive")

    def transfer(self) -> TransferConfig | None:
        """The transfer settings these options change, or None to keep the defaults."""
        if not self.max_bandwidth_bytes_per_s and not self.part_size_bytes:
            return None
        base = TransferConfig()
        part = self.part_size_bytes
        try:
            return TransferConfig(
                max_bandwidth=self.max_bandwidth_bytes_per_s or base.max_bandwidth,
                part_size=part or base.part_size,
                max_part_size=part or base.max_part_size,  # asked for: exactly that size
                threshold=max(base.threshold, 2 * part) if part else base.threshold,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid agent option: {exc}") from exc


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
    options: AgentOptions | None = None,
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Agent:
    """The agent for a profile plus a front end's options (template validated here)."""
    options = options or AgentOptions()
    if options.path_template is not None:
        cfg = cfg.model_copy(update={"path_template": options.path_template})
    try:
        config: AgentConfig = config_from_settings(
            cfg,
            workers=options.workers,
            delete_after_download=options.delete_after_download,
            transfer=options.transfer(),
            reconcile_interval=options.reconcile_interval_s,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid agent option: {exc}") from exc
    if options.poll_wait_s is None:
        return Agent.from_settings(
            cfg, library=library_root(cfg), config=config, on_outcome=on_outcome
        )
    return Agent.from_settings(
        cfg,
        library=library_root(cfg),
        config=config,
        wait_seconds=options.poll_wait_s,
        on_outcome=on_outcome,
    )


def run_agent(
    cfg: Settings,
    options: AgentOptions | None = None,
    *,
    stop: threading.Event,
    on_start: Callable[[Agent, Path], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> None:
    """Run the agent with its rotating log until `stop` is set.

    The library is taken first (`Agent.start`): a second agent on it, a library of another
    PC or a PC collected elsewhere is refused in one line before anything is received.
    `on_start(agent, log_file)` is called once it is taken (the CLI says where it collects).
    """
    options = options or AgentOptions()
    agent = build_agent(cfg, options, on_outcome=on_outcome)
    log = options.log_file or log_path(agent.library.root)
    handler = configure_file_log(log)
    try:
        agent.start()
        if on_start is not None:
            on_start(agent, log)
        agent.run(stop)
    finally:
        agent.close()
        logging.getLogger("mobile_backup").removeHandler(handler)
        handler.close()


def run_agent_for_profile(
    stop: threading.Event, *, profile: str | None = None, config_file: Path | None = None
) -> None:
    """What a service runs: the profile's agent until `stop` (the Windows service)."""
    if config_file is not None:
        # The Windows service runs as another account: point it at the installer's config.
        os.environ["MOBILE_BACKUP_CONFIG_FILE"] = str(config_file)
    run_agent(load_settings(profile), stop=stop)
