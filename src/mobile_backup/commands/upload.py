"""`upload`: back up files and folders, once or continuously (`--watch`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mobile_backup.commands._common import (
    JsonOpt,
    RichProgress,
    err,
    human,
    load_profile,
    note,
    print_dry_run,
    print_failures,
    print_json,
    print_summary,
    progress_bar,
    safe,
    skipped_lines,
    state,
    summary_json,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from mobile_backup.client import ApiClient, UploadSummary

log = logging.getLogger(__name__)

MIB = 1024**2
EXIT_INTERRUPTED = 130


def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Photos, videos or folders (searched for media)."),
    ],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep running: back up new photos and videos in these folders as they "
            "appear (files still being written are left until they settle). Ctrl+C stops.",
        ),
    ] = False,
    parallel: Annotated[
        int,
        typer.Option(min=1, max=64, metavar="N", help="Transfers at once (files or parts)."),
    ] = 4,
    part_size: Annotated[
        int,
        typer.Option(
            "--part-size",
            metavar="MIB",
            min=5,
            max=5120,
            help="Part size in MiB for big files (sent in resumable parts).",
        ),
    ] = 8,
    multipart_threshold: Annotated[
        int,
        typer.Option(
            "--multipart-threshold",
            metavar="MIB",
            min=1,
            help="Files of at least this many MiB go in parts.",
        ),
    ] = 16,
    interval: Annotated[
        float,
        typer.Option(min=0.1, metavar="SECONDS", help="With --watch: seconds between scans."),
    ] = 2.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Send nothing: hash the files and say what would be uploaded, what is "
            "already backed up and what a folder scan skips, and why.",
        ),
    ] = False,
    thumbnails: Annotated[
        bool,
        typer.Option(
            "--thumbnails/--no-thumbnails",
            help="Keep a small thumbnail (a few KB) of each photo sent in the cloud, as the "
            "app does: its gallery then shows the photo on every device, also after it has "
            "left the phone and the cloud.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Back up photos and videos: hash, skip what is already backed up, upload the rest.

    Interrupted uploads (Ctrl+C, a crash, a lost connection) carry on from their last
    completed part when the same command runs again.
    """
    from mobile_backup.client import UploadSession, Watcher, discover

    if as_json and watch:
        raise typer.BadParameter("--json reports one run; it does not go with --watch")
    if dry_run and watch:
        raise typer.BadParameter("--dry-run looks once; it does not go with --watch")
    cfg = load_profile()
    scan = None if watch else discover(paths)
    with UploadSession(cfg) as session, progress_bar() as progress:
        uploader = session.uploader(
            parallel=parallel,
            part_size=part_size * MIB,
            multipart_threshold=multipart_threshold * MIB,
            subscribers=[RichProgress(progress)],
        )
        try:
            if watch:

                def on_batch(batch: UploadSummary) -> None:
                    _print_batch(progress.console, batch)
                    if thumbnails:
                        _keep_thumbnails(session.api, batch, progress)

                watcher = Watcher(
                    uploader=uploader, roots=paths, interval=interval, on_batch=on_batch
                )
                note(f"watching {safe(', '.join(str(p) for p in paths))} (Ctrl+C stops)")
                with _on_stop_signal(watcher.stop):
                    summary = watcher.run()
            else:
                files = scan.files if scan else []
                with _on_stop_signal(uploader.cancel):
                    summary = uploader.dry_run(files) if dry_run else uploader.upload(files)
                if thumbnails and not dry_run:
                    _keep_thumbnails(session.api, summary, progress)
        finally:
            uploader.close()
    if scan is not None:
        summary.skipped.extend(scan.skipped)
    if as_json:
        print_json(summary_json(summary, dry_run=dry_run))
    elif dry_run:
        print_dry_run(summary)
    else:
        print_summary(summary)
    if uploader.cancelled and not watch:
        err.print("interrupted: run the same command again to carry on where it stopped")
        state.said_interrupted = True
        raise typer.Exit(EXIT_INTERRUPTED)
    if not summary.ok and not uploader.cancelled:
        raise typer.Exit(1)


def _keep_thumbnails(api: ApiClient, summary: UploadSummary, progress: Progress) -> None:
    """A thumbnail of each photo this run sent, kept in the cloud for the app's gallery."""
    from mobile_backup.client import UPLOADED, keep_thumbnails

    sent = [(r.sha256, r.path) for r in summary.results if r.status == UPLOADED and r.sha256]
    if not sent:
        return
    task = progress.add_task("keeping thumbnails", total=len(sent))
    kept = keep_thumbnails(lambda: api, sent, on_kept=lambda n: progress.advance(task, n))
    progress.remove_task(task)
    log.info("%d thumbnail(s) kept in the cloud", kept)


def _print_batch(console: Console, summary: UploadSummary) -> None:
    if state.quiet:
        print_failures(summary)
    else:
        console.print(_batch_line(summary), highlight=False)


def _batch_line(summary: UploadSummary) -> str:
    from mobile_backup.client import DUPLICATE, FAILED, UPLOADED

    skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
    line = (
        f"{summary.count(UPLOADED)} uploaded, {summary.count(DUPLICATE)} already backed up, "
        f"{summary.count(FAILED)} failed{skipped} ({human(summary.bytes_sent)})"
    )
    return "\n".join([line, *skipped_lines(summary)])


@contextmanager
def _on_stop_signal(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl+C or SIGTERM stops cleanly (parts in flight finish); a second Ctrl+C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled on the main thread (e.g. under a test runner)
        return
    stopping = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stopping.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopping.set()
        note("stopping after the transfers in flight… (Ctrl+C again to quit now)")
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["upload"]
