"""Watch mode: keep backing up folders as new photos and videos appear.

Polling, not file-system events: it works the same on every platform and file system
(network shares and phone storage included) and needs no dependency. A file is sent only
once it has stopped changing: the same size and modification time in two scans in a row,
and nothing written to it for a quiet period, so a video still being recorded or copied is
left alone until it is complete.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mobile_backup.client._parts import FileStamp
from mobile_backup.client._results import CANCELLED, FAILED, UploadSummary
from mobile_backup.client._scan import Skipped, classify, walk
from mobile_backup.client._upload import Uploader
from mobile_backup.client.exceptions import NoFilesError

log = logging.getLogger(__name__)


class Watcher:
    """Scans `roots` every `interval` seconds and uploads files that have settled.

    Keyword-only arguments:
        uploader: the engine (its journal makes a restart skip what is backed up).
        roots: folders (scanned as `client/_scan.py` says; each skipped file is reported
            once, in the next batch's summary) or files.
        interval: seconds between scans.
        quiet: seconds a file must have gone unmodified before it is sent.
        retry_failed_after: seconds before a file that failed is tried again.
        clock: wall-clock seconds (compared with file modification times).
        on_batch: called with each batch's summary (e.g. to print it).
    """

    def __init__(
        self,
        *,
        uploader: Uploader,
        roots: Sequence[Path],
        interval: float = 2.0,
        quiet: float = 2.0,
        retry_failed_after: float = 60.0,
        clock: Callable[[], float] = time.time,
        on_batch: Callable[[UploadSummary], None] | None = None,
    ) -> None:
        missing = [str(r) for r in roots if not Path(r).exists()]
        if missing:
            raise NoFilesError(f"no such file or folder: {', '.join(missing)}")
        if not roots:
            raise NoFilesError("name at least one folder to watch")
        self._uploader = uploader
        self._roots = [Path(r).expanduser().resolve() for r in roots]
        self._interval = interval
        self._quiet = quiet
        self._retry_after = retry_failed_after
        self._clock = clock
        self._on_batch = on_batch
        self._stop = threading.Event()
        self._last_scan: dict[Path, FileStamp] = {}
        # What was dealt with, at which stamp (a file that changes is considered again).
        self._handled: dict[Path, FileStamp] = {}
        self._failed_at: dict[Path, float] = {}
        # classify() per file, redone only when the file changes (it may read the file).
        self._verdicts: dict[Path, tuple[FileStamp, Skipped | None]] = {}
        self._skipped: dict[Path, Skipped] = {}  # found since the last batch, not reported
        self._reported: set[Path] = set()

    def stop(self) -> None:
        """Stop watching (thread-safe, e.g. from a signal handler); cancels a running batch."""
        self._stop.set()
        self._uploader.cancel()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _candidates(self) -> dict[Path, FileStamp]:
        found: dict[Path, FileStamp] = {}
        for root in self._roots:
            entries = [root] if root.is_file() else walk(root)
            for entry in entries:
                if isinstance(entry, Skipped):
                    self._skip(entry)
                    continue
                try:
                    stamp = FileStamp.of(entry)
                except OSError:  # vanished between listing and stat: the next scan sees
                    continue
                verdict = self._verdicts.get(entry)
                if verdict is None or verdict[0] != stamp:
                    skipped = None if entry == root else classify(entry, root)
                    verdict = self._verdicts[entry] = (stamp, skipped)
                if verdict[1] is None:
                    found[entry] = stamp
                else:
                    self._skip(verdict[1])
        return found

    def _skip(self, skipped: Skipped) -> None:
        if skipped.path not in self._reported:
            self._reported.add(skipped.path)
            self._skipped[skipped.path] = skipped

    def take_skipped(self) -> list[Skipped]:
        """The files found skipped since the last call, each reported once."""
        taken = list(self._skipped.values())
        self._skipped.clear()
        return taken

    def scan(self) -> list[Path]:
        """One pass: the files that have settled and still need backing up."""
        now = self._clock()
        current = self._candidates()
        ready = []
        for path, stamp in sorted(current.items()):
            if self._handled.get(path) == stamp:
                continue
            failed_at = self._failed_at.get(path)
            if failed_at is not None and now - failed_at < self._retry_after:
                continue
            settled = self._last_scan.get(path) == stamp
            quiet = now - stamp.mtime_ns / 1e9 >= self._quiet
            if settled and quiet:
                ready.append(path)
        self._last_scan = current
        return ready

    def _note(self, summary: UploadSummary) -> None:
        now = self._clock()
        for result in summary.results:
            stamp = self._last_scan.get(result.path)
            if result.status == CANCELLED or stamp is None:
                continue
            if result.status == FAILED:
                self._failed_at[result.path] = now
            else:
                self._failed_at.pop(result.path, None)
                self._handled[result.path] = stamp

    def run_once(self) -> UploadSummary:
        """Scan once and upload what is ready (an empty summary if nothing is)."""
        ready = self.scan()
        skipped = self.take_skipped()
        if not ready and not skipped:
            return UploadSummary()
        log.info("watch: %d file(s) ready, %d skipped", len(ready), len(skipped))
        summary = self._uploader.upload(ready) if ready else UploadSummary()
        summary.skipped.extend(skipped)
        self._note(summary)
        if self._on_batch is not None:
            self._on_batch(summary)
        return summary

    def run(self) -> UploadSummary:
        """Watch until `stop()`; returns everything done meanwhile."""
        total = UploadSummary()
        while not self._stop.is_set():
            total.extend(self.run_once())
            self._stop.wait(self._interval)
        return total
