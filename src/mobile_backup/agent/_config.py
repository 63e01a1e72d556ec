"""How the agent works: workers, transfers, path template, retention, backoffs."""

from __future__ import annotations

from dataclasses import dataclass, field

from mobile_backup.agent._template import DEFAULT_TEMPLATE, PathTemplate
from mobile_backup.agent._transfer import TransferConfig
from mobile_backup.core import SQS_BATCH, ConfigError, Settings
from mobile_backup.ledger import MAIN_PC, check_pc_name

# A long poll cannot be interrupted, so this bounds how long a stop waits for it; at 5 s an
# idle agent makes ~0.5 M receives a month, inside SQS's free tier.
DEFAULT_WAIT_SECONDS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """How the agent works; every field has a sensible default."""

    workers: int = 8
    """Messages processed at the same time."""
    prefetch: int = SQS_BATCH
    """Messages received ahead of free workers (released at once on stop)."""
    receivers: int = 3
    """Receive calls in flight while messages keep coming (one long poll when idle)."""
    transfer: TransferConfig = field(default_factory=TransferConfig)
    path_template: PathTemplate = field(default_factory=PathTemplate.parse)
    delete_after_download: bool = False
    """Delete the cloud copy once the receipt is written (instead of tagging it)."""
    pc_name: str = MAIN_PC
    """This PC's name: `main` collects the downloads queue, others their own (`register`)."""
    shared_library: bool = False
    """Folders and files readable by the PC's other accounts (default: the owner's only)."""
    shutdown_grace: float = 10.0
    """Seconds work in flight may take to finish after a stop before it is interrupted."""
    retry_backoff: tuple[int, ...] = (10, 30, 60, 120, 300)
    """Visibility (s) before the n-th retry of a failed message, capped by the queue's."""
    pause_backoff: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
    """Pauses (s) after consecutive disk-full / permission-denied failures."""
    reconcile_interval: float | None = None
    """Seconds between reconcile passes inside `run` (None: only on demand)."""

    def __post_init__(self) -> None:
        check_pc_name(self.pc_name)
        if self.workers < 1 or self.prefetch < 0 or self.receivers < 1:
            raise ConfigError(
                "the agent needs at least one worker and one receiver, and a non-negative prefetch"
            )


def config_from_settings(settings: Settings, **overrides: object) -> AgentConfig:
    """The agent's config from the profile (path template validated here, at load)."""
    values: dict[str, object] = {
        "path_template": PathTemplate.parse(settings.path_template or DEFAULT_TEMPLATE),
        "delete_after_download": settings.delete_after_download,
        "shared_library": settings.shared_library,
        "pc_name": settings.pc_name or MAIN_PC,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AgentConfig(**values)  # type: ignore[arg-type]
