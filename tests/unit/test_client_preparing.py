"""Preparing files: batches are pipelined (the next one hashes while the caller handles this
one), and the run counts the time hashing was under way, overlaps once."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from mobile_backup.client import _preparing as preparing
from mobile_backup.client._engine import Engine, Prepared
from mobile_backup.client._journal import Journal
from mobile_backup.client._parts import hash_file
from mobile_backup.client._preparing import Preparer
from mobile_backup.client._run import Run


def _setup(tmp_path: Path, files: int) -> tuple[Engine, Preparer, list[Path]]:
    paths = []
    for i in range(files):
        path = tmp_path / f"IMG_{i:03d}.jpg"
        path.write_bytes(f"photo {i}".encode() * 100)
        paths.append(path)
    engine = cast(
        Engine,
        SimpleNamespace(
            journal=Journal.memory(),
            queued=lambda path, size: None,
            finish=lambda result: result,
        ),
    )
    preparer = Preparer(
        engine,
        cancel=threading.Event(),
        threshold=1 << 30,
        part_size=8 << 20,
        device=None,
        received_dir=None,
        workers=2,
    )
    return engine, preparer, paths


def test_the_next_batch_hashes_while_the_caller_handles_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, preparer, paths = _setup(tmp_path, 6)
    first, second = paths[:3], paths[3:]
    second_hashing = threading.Event()
    real_hash = hash_file

    def watching(path: Path, **kwargs: Any) -> Any:
        if path in second:
            second_hashing.set()
        return real_hash(path, **kwargs)

    monkeypatch.setattr(preparing, "hash_file", watching)
    run = Run.begin(engine, paths)
    with ThreadPoolExecutor(2) as hashers:
        batches = preparer.batches(run, hashers, [first, second], describe=False)
        handed = next(batches)
        # The caller holds the first batch's outcomes; the second is hashing already.
        assert second_hashing.wait(10)
        rest = list(batches)
    outcomes = [o for batch in (handed, *rest) for o in batch]
    assert [o.path for o in outcomes] == paths
    for o in outcomes:
        assert isinstance(o, Prepared)
        assert o.hash.sha256 == hashlib.sha256(o.path.read_bytes()).hexdigest()
    # Each batch's new hashes were remembered: a second run hashes nothing.
    assert engine.journal.cached_hashes(paths).keys() == set(paths)
    assert run.summary(never_reached="-").hashed_files == 6


def test_overlapping_batches_count_the_time_hashing_was_under_way_once(tmp_path: Path) -> None:
    engine, _, paths = _setup(tmp_path, 1)
    run = Run.begin(engine, paths)
    run.hashed(2, 20, 10.0, 12.0)
    run.hashed(3, 30, 11.0, 13.0)  # overlaps the first by a second
    run.hashed(0, 0, 12.5, 20.0)  # nothing hashed (all known): not counted
    run.hashed(1, 10, 14.0, 15.0)  # after a gap: the gap is not counted
    summary = run.summary(never_reached="-")
    assert (summary.hashed_files, summary.hashed_bytes) == (6, 60)
    assert summary.hashing_seconds == pytest.approx(4.0)
