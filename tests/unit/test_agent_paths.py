"""Filenames from phones are data, never paths (DESIGN invariant 5)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobile_backup.agent import (
    MAX_FILENAME_BYTES,
    UnsafePathError,
    ensure_inside,
    relative_path,
    sanitize_filename,
)
from mobile_backup.core import InvalidInputError

SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"

# Written out independently of the implementation's table, so a gap in one shows.
WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[1-9¹²³]) *", re.I)
WINDOWS_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


def assert_safe_component(name: str) -> None:
    assert name, "empty name"
    assert name not in {".", ".."}
    assert not set(name) & WINDOWS_FORBIDDEN, f"forbidden character in {name!r}"
    assert not any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in name)
    assert not name.endswith((".", " ")), f"trailing dot or space in {name!r}"
    assert not name.startswith((".", " ")), f"leading dot or space in {name!r}"
    assert WINDOWS_RESERVED.fullmatch(name.split(".")[0]) is None, f"reserved: {name!r}"
    assert len(name.encode("utf-8")) <= MAX_FILENAME_BYTES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IMG_0001.HEIC", "IMG_0001.HEIC"),
        ("My Holiday Photo.jpg", "My Holiday Photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\Pictures\\beach.jpg", "beach.jpg"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("photos/", "unnamed"),
        ("12:30:00 <draft>?.jpg", "12_30_00 _draft__.jpg"),
        ('a"b|c*d.png', "a_b_c_d.png"),
        ("tab\there\x00nul\x1f.jpg", "tabherenul.jpg"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("photo.jpg. . ", "photo.jpg"),
        ("  spaced  ", "spaced"),
        (".hidden.jpg", "hidden.jpg"),
        (" .jpg", "unnamed.jpg"),  # the extension is all there is: kept
        (".HEIC", "unnamed.HEIC"),
        ("", "unnamed"),
        (".", "unnamed"),
        ("..", "unnamed"),
        (" . . ", "unnamed"),
        ("con", "_con"),
        ("CON.txt", "_CON.txt"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("Com1.jpg", "_Com1.jpg"),
        ("lpt9", "_lpt9"),
        ("COM\u00b2.png", "_COM\u00b2.png"),
        ("aux .jpg", "_aux .jpg"),
        ("console.jpg", "console.jpg"),
        ("COM10.jpg", "COM10.jpg"),
        ("e\u0301te\u0301.jpg", "\u00e9t\u00e9.jpg"),
    ],
)
def test_sanitize_examples(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_names_are_capped_keeping_the_extension() -> None:
    name = sanitize_filename("a" * 500 + ".jpeg")
    assert name.endswith(".jpeg")
    assert len(name.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert name.startswith("a" * 150)


def test_multibyte_names_are_cut_on_a_character_boundary() -> None:
    name = sanitize_filename("\U0001f4f7" * 100 + "\u00e9" * 100 + ".mov")
    assert name.endswith(".mov")
    encoded = name.encode("utf-8")
    assert len(encoded) <= MAX_FILENAME_BYTES
    assert encoded.decode("utf-8") == name  # no broken character
    assert set(name[:-4]) == {"\U0001f4f7"}


def test_a_long_tail_that_is_not_an_extension_is_cut_like_the_rest() -> None:
    name = sanitize_filename("holiday." + "x" * 300)
    assert len(name.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert name.startswith("holiday.xxx")


@given(st.text(max_size=600))
def test_any_string_becomes_one_safe_component(raw: str) -> None:
    name = sanitize_filename(raw)
    assert_safe_component(name)
    assert sanitize_filename(name) == name  # stable: sanitising twice changes nothing


@given(
    st.lists(
        st.sampled_from(["CON", "prn", "Aux", "nul", "COM1", "lpt3", "com\u00b9", "CONIN$"])
        | st.text(alphabet=". /\\:", max_size=4)
        | st.text(max_size=5),
        max_size=6,
    ).map("".join)
)
def test_adversarial_mixes_of_reserved_names_and_separators(raw: str) -> None:
    assert_safe_component(sanitize_filename(raw))


def test_relative_path_files_by_utc_year_and_month() -> None:
    when = datetime(2024, 7, 14, 9, 21, tzinfo=UTC)
    path = relative_path(user_sub=SUB, when=when, filename="IMG 0001.HEIC")
    assert path == PurePosixPath(SUB, "2024", "07", "IMG 0001.HEIC")


def test_relative_path_converts_to_utc_first() -> None:
    # Half past midnight on New Year's Day in UTC+2 is still December in UTC.
    when = datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert relative_path(user_sub=SUB, when=when, filename="a.jpg").parts[1:3] == ("2023", "12")


def test_relative_path_takes_a_naive_time_as_utc() -> None:
    path = relative_path(user_sub=SUB, when=datetime(999, 3, 1), filename="old.jpg")
    assert path.parts[1:3] == ("0999", "03")


@pytest.mark.parametrize(
    ("when", "folder"),
    [
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), ("0001", "01")),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), ("9999", "12")),
    ],
)
def test_relative_path_survives_times_at_the_edge_of_the_calendar(
    when: datetime, folder: tuple[str, str]
) -> None:
    assert relative_path(user_sub=SUB, when=when, filename="a.jpg").parts[1:3] == folder


@pytest.mark.parametrize("sub", ["", "..", "../other", "a/b", "a\\b", "-leading-dash", "x" * 200])
def test_relative_path_refuses_a_user_id_that_is_not_a_folder_name(sub: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        relative_path(user_sub=sub, when=datetime.now(UTC), filename="a.jpg")
    assert isinstance(info.value, InvalidInputError)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sub=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True),
    when=st.datetimes(timezones=st.timezones()),
    filename=st.text(max_size=300),
)
def test_relative_path_always_stays_inside_the_root(
    tmp_path: Path, sub: str, when: datetime, filename: str
) -> None:
    rel = relative_path(user_sub=sub, when=when, filename=filename)
    root = tmp_path.resolve()
    target = ensure_inside(root, rel)
    assert target.parent.parent.parent.parent == root
    assert target.relative_to(root).parts == rel.parts
    assert len(rel.parts) == 4
    assert_safe_component(rel.name)


@pytest.mark.parametrize("bad", ["..", "../outside", "a/../../outside", "/etc/passwd", "."])
def test_ensure_inside_refuses_escapes_and_the_root_itself(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        ensure_inside(tmp_path, PurePosixPath(bad))


def test_ensure_inside_allows_dots_inside_names(tmp_path: Path) -> None:
    assert ensure_inside(tmp_path, PurePosixPath("a/b/..c..")) == tmp_path.resolve() / "a/b/..c.."


def test_ensure_inside_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "library"
    outside = tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / SUB).symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        ensure_inside(root, PurePosixPath(SUB, "2024", "07", "a.jpg"))
