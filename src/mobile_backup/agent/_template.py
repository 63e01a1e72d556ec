"""The library's folder layout: a path template such as `{user}/{year}/{month}/{filename}`.

A template is checked once, when it is loaded (`PathTemplate.parse`), so a typo stops the
agent at start with one readable line instead of filing a thousand photos wrongly. Rendering
sanitises every produced component with the same Windows rules as filenames, so neither a
phone's filename nor a template can name a path outside the library root.
"""

from __future__ import annotations

import contextlib
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from mobile_backup.agent._paths import sanitize_filename, split_extension
from mobile_backup.agent.exceptions import UnsafePathError
from mobile_backup.core import ConfigError, is_member_folder, is_user_sub

DEFAULT_TEMPLATE = "{user}/{year}/{month}/{filename}"
FIELDS: dict[str, str] = {
    "user": "the household member's name (their folder, given once by the ledger)",
    "sub": "the household member's permanent user id (a UUID)",
    "year": "capture year, four digits",
    "month": "capture month, 01-12",
    "day": "capture day of month, 01-31",
    "filename": "the phone's filename, sanitised",
    "stem": "the filename without its extension",
    "ext": "the filename's extension with its dot ('.jpg'), or ''",
    "hash": "the first 12 hex digits of the content's SHA-256",
}
_NAME_FIELDS = frozenset({"filename", "stem", "hash"})
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A validated path template; build one with `PathTemplate.parse`."""

    text: str
    components: tuple[str, ...]

    @classmethod
    def parse(cls, text: str = DEFAULT_TEMPLATE) -> PathTemplate:
        """Check `text` and return the template, or raise ConfigError saying what is wrong.

        Rules: `/`-separated relative components, at most `MAX_DEPTH` of them, no empty,
        `.` or `..` component, no backslash; only the fields in `FIELDS`, without format
        specs or conversions; the last component names the file and so must use
        `{filename}`, `{stem}` or `{hash}`; literal text must already be a safe name.
        """
        where = f"path template {text!r}"
        if not text or text.strip() != text:
            raise ConfigError(f"{where}: must be non-empty without surrounding spaces")
        if "\\" in text:
            raise ConfigError(f"{where}: use '/' between folders, not '\\'")
        if text.startswith("/"):
            raise ConfigError(f"{where}: must be relative to the library root")
        components = tuple(text.split("/"))
        if len(components) > MAX_DEPTH:
            raise ConfigError(f"{where}: at most {MAX_DEPTH} levels")
        for component in components:
            if component in {"", ".", ".."}:
                raise ConfigError(f"{where}: empty, '.' or '..' folder")
            fields = _fields(component, where)
            literal = "".join(lit for lit, _ in _parsed(component, where))
            if literal and sanitize_filename(literal) != literal and not fields:
                raise ConfigError(f"{where}: {component!r} is not a safe folder name")
            if any(ch in literal for ch in '<>:"|?*') or any(ord(ch) < 32 for ch in literal):
                raise ConfigError(f"{where}: {component!r} has characters Windows refuses")
        if not _fields(components[-1], where) & _NAME_FIELDS:
            raise ConfigError(
                f"{where}: the last part must contain {{filename}}, {{stem}} or {{hash}}, "
                "or every file of a folder would share one name"
            )
        return cls(text=text, components=components)

    def render(
        self,
        *,
        user_sub: str,
        when: datetime,
        filename: str,
        sha256: str,
        user_name: str | None = None,
    ) -> PurePosixPath:
        """The library-relative path for one file.

        `{user}` is `user_name`, else (entries from before names) `user_sub`. An aware
        `when` is filed by its UTC date (the phone sends UTC); a naive one (EXIF wall-clock
        time) by its own fields.
        """
        if not is_user_sub(user_sub):
            raise UnsafePathError(f"not a valid user id for a folder name: {user_sub!r}")
        if user_name is not None and not is_member_folder(user_name):
            raise UnsafePathError(f"not a valid member name for a folder: {user_name!r}")
        if when.tzinfo is not None:
            # Within hours of year 1 or 9999 there is no UTC date; the local one is as good.
            with contextlib.suppress(OverflowError):
                when = when.astimezone(UTC)
        name = sanitize_filename(filename)
        stem, ext = split_extension(name)
        values = {
            "user": user_name or user_sub,
            "sub": user_sub,
            "year": f"{when.year:04d}",
            "month": f"{when.month:02d}",
            "day": f"{when.day:02d}",
            "filename": name,
            "stem": stem,
            "ext": ext,
            "hash": sha256[:12],
        }
        # Each rendered component is sanitised again: `{stem}{ext}` of a reserved stem, or a
        # long filename inside a longer literal, must still be a safe name.
        parts = [sanitize_filename(c.format_map(values)) for c in self.components]
        return PurePosixPath(*parts)

    def __str__(self) -> str:
        return self.text


def _parsed(component: str, where: str) -> list[tuple[str, str | None]]:
    try:
        items = list(string.Formatter().parse(component))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    result: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in items:
        if field is not None:
            if field not in FIELDS:
                known = ", ".join("{" + f + "}" for f in FIELDS)
                raise ConfigError(f"{where}: unknown field {{{field}}} (known: {known})")
            if spec or conversion:
                raise ConfigError(f"{where}: {{{field}}} takes no format spec or conversion")
        result.append((literal, field))
    return result


def _fields(component: str, where: str) -> set[str]:
    return {f for _, f in _parsed(component, where) if f is not None}
