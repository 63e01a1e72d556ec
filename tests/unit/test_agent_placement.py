"""Staging, verification and no-overwrite placement on a real directory (invariants 2-4)."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path, PurePosixPath

import pytest

from mobile_backup.agent import STAGING_DIR, DownloadIntegrityError, Library, UnsafePathError
from mobile_backup.core import IntegrityError

SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
REL = PurePosixPath(SUB, "2024", "07", "IMG_0001.jpg")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(library: Library, data: bytes, relative: PurePosixPath = REL) -> Path:
    return library.store(io.BytesIO(data), relative, sha256=sha(data), size=len(data)).path


def files_under(root: Path) -> list[str]:
    """Every regular file below `root`, as sorted '/'-separated relative paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def library(tmp_path: Path) -> Library:
    lib = Library(tmp_path / "library")
    lib.prepare()
    return lib


def test_a_verified_file_lands_under_its_name_with_its_bytes(library: Library) -> None:
    data = b"\xff\xd8\xff\xe0 a jpeg" * 1000
    placed = library.store(io.BytesIO(data), REL, sha256=sha(data), size=len(data))
    assert placed.path == library.root / REL
    assert placed.relative == REL
    assert not placed.already_present
    assert placed.path.read_bytes() == data
    assert files_under(library.root) == [REL.as_posix()]
    assert list(library.staging.iterdir()) == []


def test_the_same_content_twice_is_one_file(library: Library) -> None:
    data = b"same bytes"
    first = library.store(io.BytesIO(data), REL, sha256=sha(data), size=len(data))
    again = library.store(io.BytesIO(data), REL, sha256=sha(data), size=len(data))
    assert again.path == first.path
    assert again.already_present
    assert files_under(library.root) == [REL.as_posix()]
    assert list(library.staging.iterdir()) == []


def test_same_name_different_content_keeps_both_with_a_suffix(library: Library) -> None:
    a, b, c = b"first photo", b"second photo", b"third photo"
    assert store(library, a).name == "IMG_0001.jpg"
    assert store(library, b).name == "IMG_0001 (1).jpg"
    assert store(library, c).name == "IMG_0001 (2).jpg"
    # A redelivery of the second finds it under its suffixed name instead of adding a fourth.
    again = library.store(io.BytesIO(b), REL, sha256=sha(b), size=len(b))
    assert again.already_present
    assert again.path.name == "IMG_0001 (1).jpg"
    month = library.root / REL.parent
    assert {p.name: p.read_bytes() for p in month.iterdir()} == {
        "IMG_0001.jpg": a,
        "IMG_0001 (1).jpg": b,
        "IMG_0001 (2).jpg": c,
    }


def test_a_name_without_extension_gets_its_suffix_at_the_end(library: Library) -> None:
    rel = REL.with_name("README")
    store(library, b"one", rel)
    assert store(library, b"two", rel).name == "README (1)"


def test_an_existing_file_of_the_same_size_but_other_bytes_is_not_taken_for_it(
    library: Library,
) -> None:
    store(library, b"AAAA")
    assert store(library, b"BBBB").name == "IMG_0001 (1).jpg"


@pytest.mark.parametrize(
    ("served", "declared"),
    [
        (b"tampered bytes!", b"original bytes!"),  # same size, other content
        (b"short", b"original bytes"),  # truncated download
        (b"original bytes and more", b"original bytes"),  # longer than declared
    ],
)
def test_corrupt_bytes_are_never_placed(library: Library, served: bytes, declared: bytes) -> None:
    with pytest.raises(DownloadIntegrityError) as info:
        library.store(io.BytesIO(served), REL, sha256=sha(declared), size=len(declared))
    assert isinstance(info.value, IntegrityError)
    # Nothing under the library but the staging dir, and that is empty.
    assert files_under(library.root) == []
    assert sorted(p.relative_to(library.root).as_posix() for p in library.root.rglob("*")) == [
        STAGING_DIR.parts[0],
        STAGING_DIR.as_posix(),
    ]
    assert list(library.staging.iterdir()) == []


class CountingStream(io.BytesIO):
    """A body that records the size of every read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_the_body_is_read_in_chunks_never_whole(tmp_path: Path) -> None:
    library = Library(tmp_path / "library", chunk_size=1024)
    library.prepare()
    data = os.urandom(1024 * 5 + 17)
    stream = CountingStream(data)
    library.store(stream, REL, sha256=sha(data), size=len(data))
    assert all(0 < n <= 1024 for n in stream.reads)
    assert len(stream.reads) == 7  # five full chunks, one partial, one empty read at the end


def test_placing_never_follows_a_planted_symlink_out_of_the_library(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    library = Library(tmp_path / "library")
    library.prepare()
    (library.root / SUB).symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        store(library, b"data")
    assert list(outside.iterdir()) == []
    assert list(library.staging.iterdir()) == []


def test_a_link_planted_at_the_file_name_is_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.jpg"
    library = Library(tmp_path / "library")
    library.prepare()
    store(library, b"first", REL.with_name("other.jpg"))  # the folder exists already
    # A dangling link (nothing there yet), and one to a file outside holding other bytes.
    (library.root / REL).symlink_to(victim)
    with pytest.raises(UnsafePathError):
        store(library, b"data")
    victim.write_bytes(b"not yours")
    with pytest.raises(UnsafePathError):
        store(library, b"data")
    assert [p.name for p in outside.iterdir()] == ["victim.jpg"]
    assert victim.read_bytes() == b"not yours"
    assert list(library.staging.iterdir()) == []


def test_a_month_folder_swapped_for_a_link_after_use_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    library = Library(tmp_path / "library")
    library.prepare()
    store(library, b"first")
    month = library.root / REL.parent
    for entry in month.iterdir():
        entry.unlink()
    month.rmdir()
    month.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        store(library, b"second", REL.with_name("IMG_0002.jpg"))
    assert list(outside.iterdir()) == []


def test_prepare_removes_leftovers_of_a_crash(tmp_path: Path) -> None:
    library = Library(tmp_path / "library")
    library.prepare()
    (library.staging / "abc.part").write_bytes(b"half a download")
    (library.staging / "odd-dir").mkdir()
    (library.staging / "odd-dir" / "x").write_bytes(b"x")
    assert Library(tmp_path / "library").prepare() == 2
    assert list(library.staging.iterdir()) == []


def test_find_reports_a_file_already_in_place(library: Library) -> None:
    data = b"photo"
    assert library.find(REL, sha256=sha(data), size=len(data)) is None
    store(library, b"another photo")
    store(library, data)
    found = library.find(REL, sha256=sha(data), size=len(data))
    assert found is not None
    assert found.relative == REL.with_name("IMG_0001 (1).jpg")
    assert found.already_present


class NoHardLinks:
    """The link call of a filesystem without hard links (FAT, exFAT, some shares)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, src: Path, dst: Path) -> None:
        self.calls += 1
        raise OSError(errno.EPERM, "Operation not permitted", str(dst))


def test_without_hard_links_placement_still_never_overwrites(tmp_path: Path) -> None:
    link = NoHardLinks()
    library = Library(tmp_path / "library", link=link)
    library.prepare()
    a, b = b"first", b"second"
    assert store(library, a).name == "IMG_0001.jpg"
    assert store(library, b).name == "IMG_0001 (1).jpg"
    again = library.store(io.BytesIO(a), REL, sha256=sha(a), size=len(a))
    assert again.already_present
    month = library.root / REL.parent
    assert {p.name: p.read_bytes() for p in month.iterdir()} == {
        "IMG_0001.jpg": a,
        "IMG_0001 (1).jpg": b,
    }
    assert list(library.staging.iterdir()) == []
    assert link.calls == 1  # learnt once, then the rename path is used directly
