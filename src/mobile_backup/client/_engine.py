"""What every transfer of one run shares: clients, journal, pools, retries, cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from mobile_backup.client._api import ApiClient
from mobile_backup.client._journal import Journal
from mobile_backup.client._parts import FileHash
from mobile_backup.client._results import CANCELLED, FAILED, FileResult, UploadSubscriber
from mobile_backup.client._retry import is_transient
from mobile_backup.core import CancelledError, FileMeta, RetryPolicy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file hashed and described, ready to be sent."""

    path: Path
    hash: FileHash
    request: FileMeta
    queued_at: float
    hashed_now: bool = False
    """Hashed by this run (not the journal's): the journal is told, a batch at a time."""

    @property
    def size(self) -> int:
        return self.hash.size


class Engine:
    """The shared context of one `Uploader` (thread-safe)."""

    def __init__(
        self,
        *,
        api: ApiClient,
        http: httpx.Client,
        journal: Journal,
        retry: RetryPolicy,
        subscribers: Sequence[UploadSubscriber],
        cancel: threading.Event,
        parts_in_flight: int,
    ) -> None:
        self.api = api
        self.http = http
        self.journal = journal
        self.retry = retry
        self.subscribers = list(subscribers)
        self.cancel = cancel
        self.parts_in_flight = parts_in_flight
        self.transfers: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self.transfers is None:
            raise RuntimeError("transfers run only inside Uploader.upload()")
        return self.transfers

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """`fn(*args, **kwargs)`, retried on transient failures until cancelled."""
        if self.cancel.is_set():
            raise CancelledError("stopped before this step")
        result: T = self.retry.call(
            lambda: fn(*args, **kwargs), transient=is_transient, cancel=self.cancel
        )
        return result

    def progress(self, path: Path, n: int) -> None:
        if n:
            for sub in self.subscribers:
                sub.on_progress(path=path, bytes_sent=n)

    def resumed(self, path: Path, n: int) -> None:
        """`n` bytes of the file were sent by an earlier run (parts S3 already holds)."""
        if n:
            for sub in self.subscribers:
                sub.on_resumed(path=path, bytes_held=n)

    def phase(self, what: str) -> None:
        """The run moves on to `what` ("reading the ledger", "hashing"): told to the
        subscribers that draw it (an optional `on_phase(what=...)`)."""
        for sub in self.subscribers:
            on_phase = getattr(sub, "on_phase", None)
            if on_phase is not None:
                on_phase(what=what)

    def queued(self, path: Path, size: int) -> None:
        for sub in self.subscribers:
            sub.on_queued(path=path, size=size)

    def finish(self, result: FileResult) -> FileResult:
        for sub in self.subscribers:
            sub.on_done(result=result)
        return result

    def failed(self, prepared: Prepared, exc: BaseException, *, bytes_sent: int = 0) -> FileResult:
        """The result of a file that ended with `exc` (cancelled if the run was stopped)."""
        status = CANCELLED if self.cancel.is_set() or isinstance(exc, CancelledError) else FAILED
        reason = (
            "stopped before it finished; the next run carries on where this one stopped"
            if status == CANCELLED
            else str(exc) or type(exc).__name__
        )
        return FileResult(
            prepared.path,
            status,
            prepared.size,
            prepared.hash.sha256,
            reason,
            seconds=time.monotonic() - prepared.queued_at,
            bytes_sent=bytes_sent,
        )
