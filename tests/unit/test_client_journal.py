"""The upload journal: a real SQLite file in WAL mode that survives its process."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mobile_backup.client import Journal, JournalError, journal_path
from mobile_backup.client._journal import DONE, UPLOADING, JournalPart
from mobile_backup.client._parts import FileStamp, hash_file


def test_the_journal_is_a_wal_database(tmp_path: Path) -> None:
    Journal(tmp_path / "j.db").close()
    mode = sqlite3.connect(tmp_path / "j.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_hashes_are_cached_until_size_or_mtime_change(tmp_path: Path) -> None:
    path = tmp_path / "IMG.jpg"
    path.write_bytes(b"photo")
    journal = Journal(tmp_path / "j.db")
    file_hash = hash_file(path, part_size=5 * 1024**2)
    journal.remember_hash(path, file_hash)
    reopened = Journal(tmp_path / "j.db")
    assert reopened.cached_hash(path, FileStamp.of(path)) == file_hash
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert reopened.cached_hash(path, FileStamp.of(path)) is None


def test_an_upload_and_its_parts_survive_a_reopen(tmp_path: Path) -> None:
    sha = "a" * 64
    journal = Journal(tmp_path / "j.db")
    journal.mark_uploading(sha, path=Path("/v.mp4"), size=99, upload_id="U1", part_size=8)
    journal.part_done("U1", JournalPart(1, 8, '"e1"', "c1"))
    journal.part_done("U1", JournalPart(2, 8, '"e2"', "c2"))
    again = Journal(tmp_path / "j.db")
    state = again.upload(sha)
    assert state is not None
    assert (state.state, state.upload_id, state.part_size) == (UPLOADING, "U1", 8)
    assert sorted(again.parts("U1")) == [1, 2]
    again.replace_parts("U1", [JournalPart(1, 8, '"e1"', "c1")])
    assert sorted(again.parts("U1")) == [1]
    # A new upload id for the same content drops the old one's parts.
    again.mark_uploading(sha, path=Path("/v.mp4"), size=99, upload_id="U2", part_size=8)
    assert again.parts("U1") == {}
    again.mark_done(sha, path=Path("/v.mp4"), size=99)
    assert again.is_done(sha)
    again.forget_upload(sha)  # never forgets a finished one
    finished = again.upload(sha)
    assert finished is not None
    assert finished.state == DONE


def test_journal_paths_are_per_account(tmp_path: Path) -> None:
    assert journal_path(tmp_path, "api|alice") != journal_path(tmp_path, "api|bob")
    assert journal_path(tmp_path, "api|alice").parent == tmp_path


def test_an_unusable_journal_is_one_readable_error(tmp_path: Path) -> None:
    (tmp_path / "j.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="upload journal"):
        Journal(tmp_path / "j.db")


def test_local_copy_is_the_backed_up_file_only_while_it_still_holds_those_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "IMG.jpg"
    path.write_bytes(b"photo")
    journal = Journal(tmp_path / "j.db")
    file_hash = hash_file(path, part_size=5 * 1024**2)
    journal.remember_hash(path, file_hash)
    assert journal.local_copy(file_hash.sha256) is None  # hashed, not backed up
    journal.mark_done(file_hash.sha256, path=path, size=5)
    assert journal.local_copy(file_hash.sha256) == path
    path.write_bytes(b"edited")  # another picture now
    assert journal.local_copy(file_hash.sha256) is None
    path.unlink()
    assert journal.local_copy(file_hash.sha256) is None
