"""What an upload run reports: per-file results, the run's summary, and its subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mobile_backup.client._scan import Skipped

UPLOADED, DUPLICATE, FAILED, CANCELLED = "uploaded", "duplicate", "failed", "cancelled"
WOULD_UPLOAD = "would_upload"  # a dry run's answer for a file the ledger does not have


@dataclass(frozen=True, slots=True)
class FileResult:
    """How one file ended.

    `status` is `uploaded`, `duplicate` (backed up already: no byte sent), `failed` (with a
    `reason`) or `cancelled` (the run was stopped first; the next run carries on from the
    last completed part). `bytes_sent` counts the bytes this run sent for the file.
    """

    path: Path
    status: str
    size: int
    sha256: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    bytes_sent: int = 0
    copy_of: Path | None = None
    """Set when the file has the same bytes as an earlier file of the run, sent once as it."""


@dataclass(slots=True)
class UploadSummary:
    """The outcome of one run, one result per file in the order given, and the files a
    folder scan found and left (with why)."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)
    hashed_files: int = 0
    """Files read and hashed by this run (the journal knew the others' hashes)."""
    hashed_bytes: int = 0
    hashing_seconds: float = 0.0
    """Wall time of the batches that hashed files (reading, hashing, noting them)."""

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def bytes_sent(self) -> int:
        """Bytes sent by this run (a resumed file counts only the parts sent now)."""
        return sum(r.bytes_sent for r in self.results)

    @property
    def throughput(self) -> float:
        """Bytes per second over the whole run (hashing and API calls included)."""
        return self.bytes_sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def ok(self) -> bool:
        """True when no file failed or was left for a later run."""
        return self.count(FAILED) == 0 and self.count(CANCELLED) == 0

    def extend(self, other: UploadSummary) -> None:
        """Add another run's results (watch mode adds one per batch)."""
        self.results.extend(other.results)
        self.seconds += other.seconds
        self.skipped.extend(other.skipped)
        self.hashed_files += other.hashed_files
        self.hashed_bytes += other.hashed_bytes
        self.hashing_seconds += other.hashing_seconds


READING_LEDGER = "reading the ledger"
HASHING = "hashing"
"""A dry run's phases, as `on_phase` is told them."""


class UploadSubscriber(Protocol):
    """Receives progress; every method may be called from worker threads, concurrently.

    `on_queued` once per file before any work; `on_progress` with the bytes handed to the
    network since the last call (negative when a failed attempt takes back what it
    reported); `on_resumed` at once with the bytes of a resumed file that an earlier run
    sent (not network traffic: a speed must leave them out); `on_done` once per file with
    its result. A subscriber may also have `on_phase(*, what: str)`: a dry run says when it
    reads the member's ledger ("reading the ledger") and when it goes back to "hashing".
    """

    def on_queued(self, *, path: Path, size: int) -> None: ...
    def on_progress(self, *, path: Path, bytes_sent: int) -> None: ...
    def on_resumed(self, *, path: Path, bytes_held: int) -> None: ...
    def on_done(self, *, result: FileResult) -> None: ...
