"""The path template: checked when loaded, and never able to leave the library root."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobile_backup.agent import (
    DEFAULT_TEMPLATE,
    MAX_FILENAME_BYTES,
    PathTemplate,
    UnsafePathError,
    ensure_inside,
)
from mobile_backup.core import ConfigError

# Written out independently of the implementation's tables, so a gap in one shows.
WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[1-9¹²³]) *", re.I)
WINDOWS_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


def assert_safe_component(name: str) -> None:
    assert name
    assert name not in {".", ".."}
    assert not set(name) & WINDOWS_FORBIDDEN, name
    assert not any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in name)
    assert not name.endswith((".", " ")), name
    assert not name.startswith((".", " ")), name
    assert WINDOWS_RESERVED.fullmatch(name.split(".")[0]) is None, name
    assert len(name.encode("utf-8")) <= MAX_FILENAME_BYTES


SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
SHA = "ab" * 32
WHEN = datetime(2024, 7, 14, 9, 20, tzinfo=UTC)


def render(template: str, filename: str = "IMG_0001.HEIC", when: datetime = WHEN) -> str:
    path = PathTemplate.parse(template).render(
        user_sub=SUB, when=when, filename=filename, sha256=SHA
    )
    return path.as_posix()


def test_the_default_files_by_user_year_and_month() -> None:
    assert DEFAULT_TEMPLATE == "{user}/{year}/{month}/{filename}"
    assert render(DEFAULT_TEMPLATE) == f"{SUB}/2024/07/IMG_0001.HEIC"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{user}/{year}/{year}-{month}-{day}/{filename}", f"{SUB}/2024/2024-07-14/IMG_0001.HEIC"),
        ("Photos/{year}/{stem}-{hash}{ext}", f"Photos/2024/IMG_0001-{SHA[:12]}.HEIC"),
        ("{filename}", "IMG_0001.HEIC"),
        ("{user}/Camera Roll/{filename}", f"{SUB}/Camera Roll/IMG_0001.HEIC"),
    ],
)
def test_other_layouts(template: str, expected: str) -> None:
    assert render(template) == expected


def test_an_aware_time_is_filed_by_its_utc_date_and_a_naive_one_as_is() -> None:
    # 00:30 on New Year's Day in UTC+2 is still December in UTC.
    aware = datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert render("{year}/{month}/{filename}", when=aware) == "2023/12/IMG_0001.HEIC"
    naive = datetime(2024, 1, 1, 0, 30)  # an EXIF wall-clock time
    assert render("{year}/{month}/{filename}", when=naive) == "2024/01/IMG_0001.HEIC"


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("", "non-empty"),
        (" {filename}", "surrounding spaces"),
        ("/abs/{filename}", "relative"),
        ("{user}\\{filename}", "'/'"),
        ("{user}//{filename}", "empty"),
        ("{user}/../{filename}", "'..'"),
        ("./{filename}", "'.'"),
        ("{user}/{year}", "last part"),
        ("{user}/{camera}/{filename}", "unknown field {camera}"),
        ("{year:04d}/{filename}", "format spec"),
        ("{user!r}/{filename}", "conversion"),
        ("{user/{filename}", "path template"),
        ("a:b/{filename}", "not a safe folder name"),
        ("{user}:{year}/{filename}", "Windows refuses"),
        ("CON/{filename}", "safe folder name"),
        ("trailing./{filename}", "safe folder name"),
        ("/".join(["x"] * 9) + "/{filename}", "levels"),
    ],
)
def test_a_bad_template_is_refused_when_loaded(template: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        PathTemplate.parse(template)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_user_id_is_refused() -> None:
    with pytest.raises(UnsafePathError):
        PathTemplate.parse().render(user_sub="../x", when=WHEN, filename="a.jpg", sha256=SHA)


def test_a_rendered_reserved_name_is_made_safe() -> None:
    # `{stem}{ext}` of "con.txt" must not produce the device name CON on Windows.
    assert render("{stem}{ext}", filename="con.txt") == "_con.txt"


TEMPLATES = st.sampled_from(
    [
        DEFAULT_TEMPLATE,
        "{user}/{year}-{month}-{day}/{filename}",
        "{year}/{stem}{ext}",
        "Media {user}/{day}/{stem} {hash}{ext}",
        "{stem}.{ext}.{filename}",
    ]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(
    template=TEMPLATES,
    when=st.datetimes(timezones=st.none() | st.timezones()),
    filename=st.text(max_size=400),
)
def test_every_rendered_path_is_safe_on_windows_and_inside_the_root(
    tmp_path: Path, template: str, when: datetime, filename: str
) -> None:
    rel = PathTemplate.parse(template).render(
        user_sub=SUB, when=when, filename=filename, sha256=SHA
    )
    assert isinstance(rel, PurePosixPath)
    assert not rel.is_absolute()
    for part in rel.parts:
        assert_safe_component(part)
    root = tmp_path.resolve()
    target = ensure_inside(root, rel)
    assert target.relative_to(root).parts == rel.parts
