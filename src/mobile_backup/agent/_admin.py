"""`agent status` and `agent redrive`: the queues and the state file, seen from outside.

Both work while the service runs: the status reads the state file read-only (WAL) and the
queues' attributes; redrive sends each dead letter back to its PC's queue
(`_dead_letters.py`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from mobile_backup.agent._dead_letters import DeadLetters, RedriveReport
from mobile_backup.agent._placement import STAGING_DIR
from mobile_backup.agent._state import STATE_FILE, Health, StateDB
from mobile_backup.aws import AwsFailure, Queue, dynamodb_client, sqs_client
from mobile_backup.core import ServiceError, Settings, utcnow
from mobile_backup.ledger import PcRecord, PcRegistry

logger = logging.getLogger(__name__)

HIDDEN_DIR = PurePosixPath(STAGING_DIR.parts[0])
ALIVE_WITHIN = timedelta(seconds=60)


def state_path(library: Path) -> Path:
    """Where the agent serving `library` keeps its state file."""
    return library.joinpath(*HIDDEN_DIR.parts, STATE_FILE)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Everything `agent status` shows."""

    library: Path
    queue: QueueDepth | None
    dlq: QueueDepth | None
    disk_free: int | None
    health: Health | None
    """None when no agent has ever run on this library."""
    running: bool
    queue_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        h = self.health
        return {
            "library": str(self.library),
            "running": self.running,
            "queue": None if self.queue is None else vars_of(self.queue),
            "dlq": None if self.dlq is None else vars_of(self.dlq),
            "queue_error": self.queue_error,
            "disk_free": self.disk_free,
            "last_success_at": _iso(h.last_success_at) if h else None,
            "files_today": h.files_today if h else 0,
            "bytes_today": h.bytes_today if h else 0,
            "placed_total": h.placed_total if h else 0,
            "resumable_downloads": h.resumable if h else 0,
            "last_error": h.last_error if h else None,
            "last_error_code": h.last_error_code if h else None,
            "last_error_at": _iso(h.last_error_at) if h else None,
            "paused_until": _iso(h.paused_until) if h else None,
            "pause_reason": h.pause_reason if h else None,
            "pid": h.pid if h else None,
            "host": h.host if h else None,
        }


def vars_of(depth: QueueDepth) -> dict[str, int]:
    return {"visible": depth.visible, "in_flight": depth.in_flight}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def queue_depth(queue: Queue) -> QueueDepth:
    counts = queue.counts()
    return QueueDepth(visible=counts.visible, in_flight=counts.in_flight)


def agent_status(*, library: Path, queue: Queue | None, now: datetime | None = None) -> AgentStatus:
    """Collect the status; a queue that cannot be read is reported, not raised."""
    now = now or utcnow()
    health: Health | None = None
    path = state_path(library)
    if path.exists():
        db = StateDB(path, readonly=True)
        try:
            health = db.health(today=now.date())
        finally:
            db.close()
    queue_error = None
    depth = dlq = None
    if queue is not None:
        try:
            depth = queue_depth(queue)
            found = queue.dead_letter_queue()
            dlq = queue_depth(found) if found is not None else None
        except AwsFailure as exc:
            queue_error = str(exc)
    try:
        free: int | None = shutil.disk_usage(library).free
    except OSError:
        free = None
    running = bool(
        health
        and health.pid
        and health.alive_at
        and now - health.alive_at < ALIVE_WITHIN
        and process_may_be_alive(health.pid, host=health.host)
    )
    return AgentStatus(
        library=library,
        queue=depth,
        dlq=dlq,
        disk_free=free,
        health=health,
        running=running,
        queue_error=queue_error,
    )


def process_may_be_alive(pid: int, *, host: str | None) -> bool:
    """False only when `pid` is certainly gone: it ran on this machine and no process has
    that id now (a killed agent, before its heartbeat goes stale). Elsewhere, or on
    Windows, where probing a pid is not harmless, the heartbeat alone decides."""
    if host != socket.gethostname() or sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's (a service account)
    return True


def dead_letters(settings: Settings) -> DeadLetters:
    """The downloads DLQ of the profile's deployment (found from the queue's redrive policy)."""
    queue = Queue(sqs_client(settings, component="agent"), settings.require("downloads_queue_url"))
    dlq = queue.dead_letter_queue()
    if dlq is None:
        raise ServiceError("the downloads queue has no dead-letter queue")
    return DeadLetters(dlq, pc_registry(settings))


def redrive(settings: Settings, *, limit: int | None = None) -> RedriveReport:
    """`agent redrive`: every dead letter back to the queue of the PC it was for."""
    return dead_letters(settings).redrive(limit=limit)


def pc_registry(settings: Settings) -> PcRegistry:
    """The household's PCs, as the agent's profile reaches them."""
    return PcRegistry(
        dynamodb_client(settings, component="agent"),
        settings.require("table"),
        downloads_queue_url=settings.downloads_queue_url,
    )


def register_pc(settings: Settings, name: str) -> PcRecord:
    """Give PC `name` its own downloads queue (`agent register`), with the agent's rights."""
    return pc_registry(settings).register(sqs_client(settings, component="agent"), name)
