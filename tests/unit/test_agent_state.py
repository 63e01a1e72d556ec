"""The agent's state file: a real SQLite file in WAL mode, read by a second connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

import pytest

from mobile_backup.agent import AgentError, StateDB

SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    return StateDB(tmp_path / "state" / "agent.sqlite3")


def test_the_file_is_in_wal_mode(db: StateDB) -> None:
    conn = sqlite3.connect(db.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_placed_files_are_remembered_and_counted_once_per_day(db: StateDB) -> None:
    rel = PurePosixPath(SUB, "2024", "07", "a.jpg")
    db.record_placed(
        user_sub=SUB, sha256="a" * 64, path=rel, size=10, mtime_ns=5, at=AT, new_file=True
    )
    db.record_placed(
        user_sub=SUB, sha256="a" * 64, path=rel, size=10, mtime_ns=6, at=AT, new_file=False
    )
    db.record_placed(
        user_sub=SUB, sha256="b" * 64, path=rel, size=32, mtime_ns=7, at=AT, new_file=True
    )
    placed = db.placed(SUB, "a" * 64)
    assert placed is not None
    assert (placed.path, placed.size, placed.mtime_ns) == (rel, 10, 6)
    assert db.placed(SUB, "c" * 64) is None
    assert [p.sha256 for p in db.iter_placed(batch=1)] == ["a" * 64, "b" * 64]
    assert db.users() == [SUB]
    health = db.health(today=date(2025, 3, 4))
    assert (health.files_today, health.bytes_today, health.placed_total) == (2, 42, 2)
    assert health.last_success_at == AT
    assert db.health(today=date(2025, 3, 5)).files_today == 0


def test_a_reader_sees_health_while_the_writer_has_it_open(db: StateDB) -> None:
    db.record_error(code="disk_full", message="disk full in /lib", at=AT)
    db.set_values(paused_until=AT, pause_reason="disk_full", pid=123, alive_at=AT)
    reader = StateDB(db.path, readonly=True)
    try:
        health = reader.health(today=AT.date())
        assert (health.last_error_code, health.last_error) == ("disk_full", "disk full in /lib")
        assert (health.paused_until, health.pause_reason, health.pid) == (AT, "disk_full", 123)
        with pytest.raises(AgentError):
            reader.set_values(pid=1)  # read-only
    finally:
        reader.close()
    db.set_values(paused_until=None)
    assert db.health(today=AT.date()).paused_until is None


def test_a_download_journal_resumes_only_the_same_content(db: StateDB) -> None:
    assert db.begin_download("x.part", sha256="a" * 64, size=100, part_size=10, at=AT) == set()
    db.part_done("x.part", 0)
    db.part_done("x.part", 3)
    assert db.begin_download("x.part", sha256="a" * 64, size=100, part_size=10, at=AT) == {0, 3}
    assert db.resumable() == {"x.part"}
    # Another part size (or other bytes) cannot reuse those parts.
    assert db.begin_download("x.part", sha256="a" * 64, size=100, part_size=20, at=AT) == set()
    db.end_download("x.part")
    assert db.resumable() == set()


def test_an_unfinished_parts_progress_is_kept_until_the_part_or_the_download_ends(
    db: StateDB,
) -> None:
    db.begin_download("x.part", sha256="a" * 64, size=100, part_size=10, at=AT)
    db.part_progress("x.part", 1, 4)
    db.part_progress("x.part", 1, 8)  # further on: replaces
    db.part_progress("x.part", 2, 4)
    assert db.kept_of_parts("x.part") == {1: 8, 2: 4}
    db.part_done("x.part", 2)
    assert db.kept_of_parts("x.part") == {1: 8}  # a finished part is whole, not 4 bytes
    assert db.kept_of_parts("y.part") == {}
    # Other bytes (or another part size) keep nothing of it.
    db.begin_download("x.part", sha256="b" * 64, size=100, part_size=10, at=AT)
    assert db.kept_of_parts("x.part") == {}
    db.part_progress("x.part", 0, 4)
    db.end_download("x.part")
    assert db.kept_of_parts("x.part") == {}


def test_an_unreadable_state_file_is_one_agent_error(tmp_path: Path) -> None:
    bad = tmp_path / "agent.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AgentError) as info:
        StateDB(bad)
    assert str(bad) in str(info.value)


def test_concurrent_placements_share_commits_and_none_is_lost(db: StateDB) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(8)

    def place(worker: int) -> None:
        start.wait()
        for i in range(25):
            sha = f"{worker:02x}{i:062x}"
            db.record_placed(
                user_sub=SUB, sha256=sha, path=PurePosixPath(SUB, sha), size=3,
                mtime_ns=i, at=AT, new_file=True,
            )  # fmt: skip
            # Returned means committed: a second connection already sees it.
            assert db.placed(SUB, sha) is not None

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(place, w) for w in range(8)]:
            future.result()  # an assertion failed in a thread fails the test
    other = sqlite3.connect(db.path)
    assert other.execute("SELECT COUNT(*) FROM placed").fetchone()[0] == 200
    assert other.execute("SELECT files, bytes FROM daily").fetchall() == [(200, 600)]
    other.close()
    health = db.health(today=AT.date())
    assert (health.placed_total, health.files_today) == (200, 200)
