"""Where a file goes in the library, and why a phone's filename can never steer it elsewhere.

Filenames come from phones: they are data, not paths. `sanitize_filename` turns any string
into one safe path component on Windows as well as POSIX (the library may be copied to, or
be, an NTFS/exFAT disk), `relative_path` files it under `{user}/{YYYY}/{MM}/`, and
`ensure_inside` is the last check before anything touches the disk.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from mobile_backup.agent.exceptions import UnsafePathError
from mobile_backup.core import is_user_sub

MAX_FILENAME_BYTES = 200
"""Cap in UTF-8 bytes; leaves room under the usual 255 for a ` (n)` collision suffix."""
MAX_EXTENSION_CHARS = 16
UNNAMED = "unnamed"
RESERVED_PREFIX = "_"

_SEPARATORS = re.compile(r"[/\\]")
# Printable characters Windows refuses in names; replaced so `12:30:00.jpg` stays readable.
_FORBIDDEN = frozenset('<>:"/\\|?*')
# Invisible characters that reorder text (used to disguise `gpj.exe` as `exe.jpg`).
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Control chars, lone surrogates (unencodable), line and paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_DEVICE_DIGITS = "123456789\u00b9\u00b2\u00b3"  # Windows reserves COM¹..³ and LPT¹..³ too
RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{d}" for d in _DEVICE_DIGITS}
    | {f"LPT{d}" for d in _DEVICE_DIGITS}
)


def is_reserved_name(name: str) -> bool:
    """True if Windows treats `name` as a device (`nul`, `COM1.txt`, `con .tar.gz`, ...)."""
    return name.split(".", 1)[0].rstrip(" ").upper() in RESERVED_NAMES


def split_extension(name: str) -> tuple[str, str]:
    """(stem, extension with its dot), or (name, "") when the tail is not an extension."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    ext = name[dot + 1 :]
    if not 1 <= len(ext) <= MAX_EXTENSION_CHARS or not ext.isalnum():
        return name, ""
    return name[:dot], name[dot:]


def sanitize_filename(name: str) -> str:
    """One path component, safe on Windows and POSIX, that keeps as much of `name` as it can.

    Drops any directory part (either separator), control and bidi-override characters;
    replaces `<>:"/\\|?*` with `_`; strips leading and trailing dots and spaces (Windows drops
    trailing ones; leading dots would hide the file; a name that is only an extension keeps
    it: `" .jpg"` → `unnamed.jpg`); prefixes Windows device names
    (`con.txt` → `_con.txt`); caps the UTF-8 length at `MAX_FILENAME_BYTES`, keeping the
    extension. Never returns an empty name, `.` or `..`.
    """
    name = unicodedata.normalize("NFC", name)
    name = _SEPARATORS.split(name)[-1]
    name = _strip_ends("".join(_clean_char(ch) for ch in name))
    if not name:
        return UNNAMED
    stem, ext = split_extension(name)
    # One byte is kept back for the reserved-name prefix, so no branch can exceed the cap.
    budget = MAX_FILENAME_BYTES - len(RESERVED_PREFIX) - len(ext.encode("utf-8"))
    stem = _truncate_utf8(stem, budget)
    if not ext:
        stem = stem.rstrip(" .")
    result = stem + ext
    if is_reserved_name(result):
        result = RESERVED_PREFIX + result
    return result


def relative_path(*, user_sub: str, when: datetime, filename: str) -> PurePosixPath:
    """`{user_sub}/{YYYY}/{MM}/{sanitized filename}`, by the UTC month of `when`.

    A naive `when` is taken as UTC. Raises UnsafePathError for a user id that is not a
    valid key component (it could otherwise name a directory outside the user's folder).
    """
    if not is_user_sub(user_sub):
        raise UnsafePathError(f"not a valid user id for a folder name: {user_sub!r}")
    if when.tzinfo is not None:
        # Within hours of year 1 or 9999 there is no UTC date; the local one is as good.
        with contextlib.suppress(OverflowError):
            when = when.astimezone(UTC)
    return PurePosixPath(
        user_sub, f"{when.year:04d}", f"{when.month:02d}", sanitize_filename(filename)
    )


def ensure_inside(root: Path, path: Path | PurePosixPath, *, root_resolved: bool = False) -> Path:
    """The resolved `root / path`, or UnsafePathError if it is the root or lies outside it.

    Symlinks are followed, so a link inside the library that points elsewhere is refused.
    `root_resolved` says `root` is already resolved (saves a look at each of its folders).
    """
    base = root if root_resolved else root.resolve()
    target = (base / path).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(f"{path} resolves outside the library root {base}")
    return target


def _strip_ends(name: str) -> str:
    """Without leading and trailing dots and spaces, keeping an extension that is all there
    is after them: `" .jpg"` and `".jpg"` become `unnamed.jpg`, not `jpg`."""
    name = name.rstrip(" .")
    core = name.lstrip(" .")
    if core == name:
        return name
    head = name[: len(name) - len(core)]
    if "." in head and core and split_extension(f"x.{core}")[1] == f".{core}":
        return f"{UNNAMED}.{core}"
    return core


def _clean_char(ch: str) -> str:
    if ch in _FORBIDDEN:
        return "_"
    if ch in _BIDI_CONTROLS or unicodedata.category(ch) in _DROPPED_CATEGORIES:
        return ""
    return ch


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # Cutting bytes may split a character; "ignore" drops the partial one.
    return encoded[:max_bytes].decode("utf-8", "ignore")
