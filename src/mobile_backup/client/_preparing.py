"""Preparing files to send: each hashed (or its hash taken from the journal, while the file
is as it was then) and described, a batch at a time, on the hashing threads.

Batches are pipelined: the next batch's files are hashing while the caller works on this
one's (the journal's writes, the ledger's questions, the sends), so the hashing threads do
not wait for any of that. A dry run over a folder of years is mostly this.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mobile_backup.client._engine import Engine, Prepared
from mobile_backup.client._media import capture_of, content_type
from mobile_backup.client._parts import FileHash, FileStamp, hash_file
from mobile_backup.client._results import CANCELLED, FAILED, FileResult
from mobile_backup.client._run import Run, size_of, unreadable
from mobile_backup.client.exceptions import FileChangedError
from mobile_backup.core import FileMeta, choose_part_size, chunked, part_count

HASH_TASK_FILES = 16
"""Files handed to a hashing thread at once (fewer when a batch would not fill them all)."""


@dataclass
class _Started:
    """A batch whose hashing was handed to the threads."""

    batch: Sequence[Path]
    known: dict[Path, FileHash]
    inline: set[Path]
    made: Iterator[Prepared | FileResult]
    started: float
    ends: list[float]
    """When each hashing task ended."""


class Preparer:
    """Prepares files for an Uploader (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        cancel: threading.Event,
        threshold: int,
        part_size: int,
        device: str | None,
        received_dir: Path | None,
        workers: int,
    ) -> None:
        self._engine = engine
        self._cancel = cancel
        self._threshold = threshold
        self._part_size = part_size
        self._device = device
        self._received_dir = received_dir
        self._workers = workers

    def batches(
        self,
        run: Run,
        hashers: ThreadPoolExecutor,
        batches: Iterable[Sequence[Path]],
        *,
        describe: bool = True,
    ) -> Iterator[list[Prepared | FileResult]]:
        """Each batch's outcomes, in order (a file that could not be prepared is a
        FileResult). The next batch is already hashing while the caller handles one. The run
        is told what was hashed and how long hashing was under way."""
        ahead: _Started | None = None
        for batch in batches:
            started = self._start(hashers, batch, describe=describe)
            if ahead is not None:
                yield self._finish(run, ahead)
            ahead = started
        if ahead is not None:
            yield self._finish(run, ahead)

    def _start(
        self, hashers: ThreadPoolExecutor, batch: Sequence[Path], *, describe: bool
    ) -> _Started:
        """The journal is read in one query a batch; the files it knows and a dry run need
        not read are taken on this thread, the rest go to the hashing threads."""
        started = time.monotonic()
        known = self._engine.journal.cached_hashes(batch)
        inline = set() if describe else set(known)  # known, and nothing to read: no thread
        # A few files a task: small files hash in tens of microseconds, about what handing
        # one to a thread and back costs.
        todo = [path for path in batch if path not in inline]
        per_task = max(1, min(HASH_TASK_FILES, -(-len(todo) // self._workers)))
        ends: list[float] = []

        def task(paths: Sequence[Path]) -> list[Prepared | FileResult]:
            done = [self.prepare(path, describe=describe, known=known.get(path)) for path in paths]
            ends.append(time.monotonic())
            return done

        made = itertools.chain.from_iterable(hashers.map(task, chunked(todo, per_task)))
        return _Started(batch, known, inline, made, started, ends)

    def _finish(self, run: Run, s: _Started) -> list[Prepared | FileResult]:
        """The batch's outcomes; the new hashes are remembered in one transaction."""
        outcomes = [
            self.prepare(path, describe=False, known=s.known[path])
            if path in s.inline
            else next(s.made)
            for path in s.batch
        ]
        hashed_by = max(s.ends, default=time.monotonic())
        fresh = [(o.path, o.hash) for o in outcomes if isinstance(o, Prepared) and o.hashed_now]
        self._engine.journal.remember_hashes(fresh)
        run.hashed(len(fresh), sum(h.size for _, h in fresh), s.started, hashed_by)
        return outcomes

    def prepare(
        self, path: Path, *, describe: bool = True, known: FileHash | None = None
    ) -> Prepared | FileResult:
        """Hash (or take `known`, the journal's hash, while the file is as it was then) and
        describe one file (its type always, its capture time with `describe`: a dry run
        sends no metadata)."""
        queued_at = time.monotonic()
        if self._cancel.is_set():
            return FileResult(path, CANCELLED, size_of(path), reason="stopped before it started")
        try:
            stamp = FileStamp.of(path)
            part_size = None
            if stamp.size >= self._threshold:
                part_size = choose_part_size(stamp.size, preferred=self._part_size)
            file_hash = known if known is not None and known.stamp == stamp else None
            hashed_now = file_hash is None or not _fits(file_hash, part_size)
            if hashed_now or file_hash is None:
                file_hash = hash_file(path, part_size=part_size, stamp=stamp)
        except FileChangedError as exc:
            return FileResult(path, FAILED, size_of(path), reason=f"{exc}; try again later")
        except OSError as exc:
            return unreadable(path, exc)
        kind, taken = "application/octet-stream", None  # a dry run sends neither
        if describe:
            kind = content_type(path)
            received = self._received_dir is not None and path.is_relative_to(self._received_dir)
            taken = capture_of(path, content_type=kind, file_time=not received)
        request = FileMeta(
            sha256=file_hash.sha256,
            size=file_hash.size,
            filename=path.name,
            content_type=kind,
            taken_at=taken.when if taken else None,
            device=self._device,
            taken_at_source=taken.source if taken else None,
        )
        return Prepared(path, file_hash, request, queued_at, hashed_now=hashed_now)


def _fits(file_hash: FileHash, part_size: int | None) -> bool:
    if part_size is None:
        return True
    return (
        file_hash.part_size == part_size
        and file_hash.full_crc is not None
        and len(file_hash.part_digests) == part_count(file_hash.size, part_size)
    )
