"""The upload engine: hash, presign in batches, PUT each file straight to S3.

Progress is reported to subscribers (`on_queued`, `on_progress`, `on_done`), so the CLI, the
app and tests all watch the same engine. One file's failure never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from mobile_backup.client._api import MAX_BATCH, ApiClient, UploadRequest, UploadTicket
from mobile_backup.client._media import capture_time, content_type
from mobile_backup.client.exceptions import ApiError, TransportError, UploadError
from mobile_backup.core import MobileBackupError, sha256_file

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
UPLOADED, DUPLICATE, FAILED = "uploaded", "duplicate", "failed"


@dataclass(frozen=True, slots=True)
class FileResult:
    """How one file ended."""

    path: Path
    status: str
    size: int
    sha256: str | None = None
    reason: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class UploadSummary:
    """The outcome of one run."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def bytes_sent(self) -> int:
        return sum(r.size for r in self.results if r.status == UPLOADED)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0


class UploadSubscriber(Protocol):
    """Receives progress; every method is called from worker threads."""

    def on_queued(self, *, path: Path, size: int) -> None: ...
    def on_progress(self, *, path: Path, bytes_sent: int) -> None: ...
    def on_done(self, *, result: FileResult) -> None: ...


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ApiError | UploadError):
        return bool(exc.transient)
    return False


class Uploader:
    """Uploads files through the API's presigned URLs."""

    def __init__(
        self,
        *,
        api: ApiClient,
        http: httpx.Client | None = None,
        parallel: int = 4,
        attempts: int = 4,
        device: str | None = None,
        subscribers: Sequence[UploadSubscriber] = (),
    ) -> None:
        self._api = api
        self._http = http or httpx.Client(timeout=httpx.Timeout(30.0, write=120.0))
        self._parallel = max(1, parallel)
        self._attempts = max(1, attempts)
        self._device = device
        self._subscribers = list(subscribers)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            reraise=True,
        )

    def upload(self, paths: Iterable[Path]) -> UploadSummary:
        """Back up each path (files only; see `discover` for folders)."""
        started = time.monotonic()
        summary = UploadSummary()
        files = list(paths)
        sizes = {}
        for path in files:
            size = path.stat().st_size
            sizes[path] = size
            for sub in self._subscribers:
                sub.on_queued(path=path, size=size)
        with ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="upload") as pool:
            for batch in _chunks(files, MAX_BATCH):
                summary.results.extend(self._upload_batch(pool, batch, sizes))
        summary.seconds = time.monotonic() - started
        return summary

    def _upload_batch(
        self, pool: ThreadPoolExecutor, batch: list[Path], sizes: dict[Path, int]
    ) -> list[FileResult]:
        t0 = time.monotonic()
        prepared: list[tuple[Path, UploadRequest]] = []
        results: dict[Path, FileResult] = {}
        for path, outcome in zip(batch, pool.map(self._prepare, batch), strict=True):
            if isinstance(outcome, FileResult):
                results[path] = outcome
            else:
                prepared.append((path, outcome))
        tickets: list[UploadTicket] = []
        if prepared:
            try:
                tickets = self._retrying()(self._api.request_uploads, [r for _, r in prepared])
            except (MobileBackupError, RetryError) as exc:
                for path, req in prepared:
                    results[path] = FileResult(path, FAILED, req.size, req.sha256, str(exc))
                prepared = []
        futures = {}
        for (path, req), ticket in zip(prepared, tickets, strict=True):
            if ticket.status == DUPLICATE:
                results[path] = FileResult(
                    path, DUPLICATE, req.size, req.sha256, seconds=time.monotonic() - t0
                )
            else:
                futures[path] = pool.submit(self._put, path, req, ticket, t0)
        for path, fut in futures.items():
            results[path] = fut.result()
        ordered = [results[p] for p in batch]
        for result in ordered:
            if result.status != UPLOADED:  # uploaded files were reported by _put
                for sub in self._subscribers:
                    sub.on_done(result=result)
        return ordered

    def _prepare(self, path: Path) -> UploadRequest | FileResult:
        try:
            size = path.stat().st_size
            digest = sha256_file(path)
        except OSError as exc:
            return FileResult(path, FAILED, 0, None, f"cannot read file: {exc.strerror or exc}")
        return UploadRequest(
            sha256=digest,
            size=size,
            filename=path.name,
            content_type=content_type(path),
            taken_at=capture_time(path),
            device=self._device,
        )

    def _put(self, path: Path, req: UploadRequest, ticket: UploadTicket, t0: float) -> FileResult:
        try:
            self._retrying()(self._put_once, path, req, ticket)
        except (MobileBackupError, OSError, RetryError) as exc:
            result = FileResult(path, FAILED, req.size, req.sha256, str(exc))
        else:
            result = FileResult(path, UPLOADED, req.size, req.sha256, seconds=time.monotonic() - t0)
            for sub in self._subscribers:
                sub.on_done(result=result)
        return result

    def _put_once(self, path: Path, req: UploadRequest, ticket: UploadTicket) -> None:
        if not ticket.url or ticket.headers is None:
            raise UploadError("the API returned no upload URL")
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    sent += len(chunk)
                    for sub in self._subscribers:
                        sub.on_progress(path=path, bytes_sent=len(chunk))
                    yield chunk

        try:
            resp = self._http.put(ticket.url, content=body(), headers=ticket.headers)
        except httpx.HTTPError as exc:
            self._rewind(path, sent)
            raise TransportError(f"upload interrupted: {exc}") from exc
        if not resp.is_success:
            self._rewind(path, sent)
            raise UploadError(
                f"storage refused the file: HTTP {resp.status_code} {_s3_reason(resp)}",
                status=resp.status_code,
                transient=resp.status_code >= 500 or resp.status_code == 429,
            )

    def _rewind(self, path: Path, sent: int) -> None:
        # A retried attempt starts from byte 0 again: take back the progress reported.
        for sub in self._subscribers:
            sub.on_progress(path=path, bytes_sent=-sent)


def _s3_reason(resp: httpx.Response) -> str:
    text = resp.text
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else resp.reason_phrase


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
