"""`mobile-backup demo`: sample media goes phone → cloud → PC on the local stack, verified."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mobile_backup.client import (
    DUPLICATE,
    UPLOADED,
    ApiClient,
    Authenticator,
    TokenStore,
    Uploader,
    UploadSubscriber,
    UploadSummary,
)
from mobile_backup.core import FileStatus, sha256_file
from mobile_backup.core.wire import FileView
from mobile_backup.local._samples import make_samples
from mobile_backup.local._stack import LocalStack


@dataclass(frozen=True, slots=True)
class DemoRow:
    """One file's end-to-end result."""

    name: str
    size: int
    verified: bool
    seconds: float | None
    placed_at: str | None
    problem: str | None = None


@dataclass(slots=True)
class DemoReport:
    library: Path
    upload: UploadSummary
    rows: list[DemoRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.verified for r in self.rows)


def wait_for_downloads(
    api: ApiClient,
    shas: set[str],
    *,
    timeout: float,
    on_tick: Callable[[int, int], None] | None = None,
) -> dict[str, FileView]:
    """Poll the ledger until every file has a receipt (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        records = {r.sha256: r for r in api.iter_files() if r.sha256 in shas}
        done = sum(1 for r in records.values() if r.status == FileStatus.DOWNLOADED)
        if on_tick:
            on_tick(done, len(shas))
        if done == len(shas) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def verify_rows(
    library: Path, upload: UploadSummary, records: dict[str, FileView]
) -> list[DemoRow]:
    """Re-hash every file the receipts point at; a row is verified only if bytes match."""
    rows = []
    for result in upload.results:
        rec = records.get(result.sha256 or "")
        name = result.path.name
        if result.status not in (UPLOADED, DUPLICATE) or rec is None:
            rows.append(
                DemoRow(name, result.size, False, None, None, result.reason or "not uploaded")
            )
            continue
        if rec.receipt is None or rec.status != FileStatus.DOWNLOADED:
            rows.append(DemoRow(name, result.size, False, None, None, f"status {rec.status}"))
            continue
        placed = library.joinpath(*PurePosixPath(rec.receipt.path).parts)
        ok = placed.is_file() and sha256_file(placed) == result.sha256
        seconds = None
        if rec.uploaded_at and rec.downloaded_at:
            seconds = max(0.0, (rec.downloaded_at - rec.uploaded_at).total_seconds())
        rows.append(
            DemoRow(
                name,
                result.size,
                ok,
                seconds,
                rec.receipt.path,
                None if ok else "bytes on disk differ from the upload",
            )
        )
    return rows


def run_demo(
    *,
    library: Path,
    workdir: Path,
    subscribers: Sequence[UploadSubscriber] = (),
    timeout: float = 60.0,
    on_stage: Callable[[str], None] = lambda _msg: None,
    on_wait: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Run the whole pipeline once on a fresh local stack (the emulator in a process of its
    own, as `local up` runs it)."""
    on_stage("starting the local stack (emulator, API, ingest, agent)")
    with LocalStack(library=library, emulator_process=True) as stack:
        on_stage("making sample photos and a video")
        samples = make_samples(workdir / "camera-roll")
        auth = Authenticator(settings=stack.settings, store=TokenStore(workdir / "session.json"))
        auth.login(stack.email, stack.password)
        api = ApiClient(base_url=stack.settings.require("api_url"), token=auth.access_token)
        try:
            on_stage(f"uploading {len(samples)} files as {stack.email}")
            upload = Uploader(api=api, subscribers=subscribers, device="demo").upload(
                [s.path for s in samples]
            )
            shas = {
                r.sha256 for r in upload.results if r.sha256 and r.status in (UPLOADED, DUPLICATE)
            }
            on_stage("waiting for the PC agent to file and verify them")
            records = wait_for_downloads(api, shas, timeout=timeout, on_tick=on_wait)
        finally:
            api.close()
    report = DemoReport(library=library, upload=upload)
    report.rows = verify_rows(library, upload, records)
    return report
