"""The backup at a glance: who, where to, how it stands, and the top bar's icon.

Plain words from the controller's state (the ledger's history, the queue, the last call to
the backend); the screens only draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mobile_backup.app._format import human_ago


class Link(StrEnum):
    """How the app's last word with the backend went."""

    UNKNOWN = "unknown"
    OK = "ok"
    OFFLINE = "offline"
    ERROR = "error"


class Signal(StrEnum):
    """The top bar's icon: what the app last learnt from the backend, and the queue."""

    CHECKING = "checking"
    OFFLINE = "offline"
    ERROR = "error"
    ATTENTION = "attention"
    BUSY = "busy"
    OK = "ok"


@dataclass(frozen=True, slots=True)
class Glance:
    """Everything the status card and the top bar say."""

    who: str
    where: str
    counts: tuple[tuple[str, int | None], ...]
    """(label, number) pairs: on your PC, waiting for the PC, to upload, failed; None where
    the ledger has not been read (a dash, never a zero that is not true)."""
    collected: str
    signal: Signal
    signal_text: str

    @property
    def problem(self) -> str | None:
        """What stops the backup right now (the backend unreachable or failing), if anything."""
        return self.signal_text if self.signal in (Signal.OFFLINE, Signal.ERROR) else None


def glance(
    *,
    username: str | None,
    member: str | None,
    deployment: str,
    on_pc: int,
    waiting_for_pc: int,
    failed: int,
    to_upload: int,
    loaded: bool,
    collected: dict[str, datetime],
    link: Link,
    link_message: str | None,
    now: datetime,
    read_at: datetime | None = None,
) -> Glance:
    """The glance for the signed-in member. What comes from the ledger is a dash until it
    has been read; while the service cannot be reached, the last figures read say how old
    they are."""
    who = f"Signed in as {username or 'nobody'}"
    where = f"To {deployment}" + (f" · library folder {member}" if member else "")
    unreachable = link in (Link.OFFLINE, Link.ERROR)
    counts: tuple[tuple[str, int | None], ...] = (
        ("on your PC", on_pc if loaded else None),
        ("waiting for your PC", waiting_for_pc if loaded else None),
        ("to upload", to_upload),
        ("failed", failed),
    )
    if not loaded:
        said = (
            "Your backups cannot be read until the service answers."
            if unreachable
            else ("Reading the ledger…")
        )
    elif not collected:
        said = "Your PC has not collected any file yet."
    elif len(collected) == 1:
        (when,) = collected.values()
        said = f"Your PC last collected a file {human_ago(when, now)}."
    else:
        said = "Last collected: " + ", ".join(
            f"PC {pc} {human_ago(when, now)}" for pc, when in sorted(collected.items())
        )
    if loaded and unreachable and read_at is not None:
        said += f" Figures as of {human_ago(read_at, now)}."
    signal, text = _signal(link, link_message, failed=failed, busy=to_upload > 0)
    return Glance(who, where, counts, said, signal, text)


def _signal(link: Link, message: str | None, *, failed: int, busy: bool) -> tuple[Signal, str]:
    if link == Link.OFFLINE:
        return Signal.OFFLINE, message or "Cannot reach the backup service."
    if link == Link.ERROR:
        return Signal.ERROR, message or "The backup service reported a problem."
    if failed:
        return (
            Signal.ATTENTION,
            f"{failed} {'file needs' if failed == 1 else 'files need'} attention",
        )
    if busy:
        return Signal.BUSY, "Backing up"
    if link == Link.OK:
        return Signal.OK, "Connected; nothing is waiting to upload"
    return Signal.CHECKING, "Checking the connection…"
