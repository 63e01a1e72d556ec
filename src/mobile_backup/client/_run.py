"""One run of the upload engine (`upload` or `dry_run`): its files once each and in order,
the unreadable ones answered at once, the first file of each content, and the summary."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mobile_backup.client._engine import Engine, Prepared
from mobile_backup.client._results import CANCELLED, FAILED, FileResult, UploadSummary
from mobile_backup.media import NotRegularFileError

__all__ = ["Run", "size_of", "unreadable"]


class Run:
    """What `upload` and `dry_run` share: the files once each and in order, the unreadable
    ones answered at once, the first file of each content, and the summary at the end."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._started = time.monotonic()
        self.files: list[Path] = []
        self.todo: list[Path] = []
        self.todo_bytes = 0
        self.results: dict[Path, FileResult] = {}
        self._first_of: dict[str, Path] = {}  # sha256 -> the first file of this run with it
        self._hashed = (0, 0, 0.0)  # files, bytes, seconds spent preparing batches that hashed
        self._hashed_until = 0.0

    @classmethod
    def begin(cls, engine: Engine, paths: Iterable[Path]) -> Run:
        run = cls(engine)
        run.files = list(dict.fromkeys(p if isinstance(p, Path) else Path(p) for p in paths))
        for path in run.files:
            try:
                size = path.stat().st_size
            except OSError as exc:
                run.finish(unreadable(path, exc))
                continue
            engine.queued(path, size)
            run.todo.append(path)
            run.todo_bytes += size
        return run

    def hashed(self, files: int, size: int, started: float, ended: float) -> None:
        """A batch was prepared from `started` to `ended` (monotonic), reading and hashing
        `files` (`size` bytes). Batches overlap (the next one hashes while this one is
        handled): the time counted is when at least one was under way."""
        if files:
            n, b, s = self._hashed
            counted = max(0.0, ended - max(started, self._hashed_until))
            self._hashed = (n + files, b + size, s + counted)
            self._hashed_until = max(self._hashed_until, ended)

    def finish(self, result: FileResult) -> None:
        self.results[result.path] = self._engine.finish(result)

    def firsts(
        self, outcomes: Iterable[Prepared | FileResult], twins: list[tuple[Prepared, Path]]
    ) -> Iterator[Prepared]:
        """The prepared files whose content is new to this run; a file that could not be
        prepared is finished, one whose content came earlier goes to `twins` with its
        first."""
        for outcome in outcomes:
            if isinstance(outcome, FileResult):
                self.finish(outcome)
            elif outcome.hash.sha256 in self._first_of:
                twins.append((outcome, self._first_of[outcome.hash.sha256]))
            else:
                self._first_of[outcome.hash.sha256] = outcome.path
                yield outcome

    def summary(self, *, never_reached: str) -> UploadSummary:
        """Every file's result in the order given; those never reached were cancelled."""
        files, size, seconds = self._hashed
        summary = UploadSummary(
            seconds=time.monotonic() - self._started,
            hashed_files=files,
            hashed_bytes=size,
            hashing_seconds=seconds,
        )
        for path in self.files:
            if path not in self.results:
                self.finish(FileResult(path, CANCELLED, size_of(path), reason=never_reached))
            summary.results.append(self.results[path])
        return summary


def unreadable(path: Path, exc: OSError) -> FileResult:
    if isinstance(exc, NotRegularFileError):  # one line that says what it is
        return FileResult(path, FAILED, 0, None, f"{exc.strerror}: only files are backed up")
    return FileResult(path, FAILED, 0, None, f"cannot read file: {exc.strerror or exc}")


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
