"""A household member's folder name: how the family knows them, safe on every file system.

The name comes from the member's Cognito attributes (preferred username, else the e-mail's
local part), is cleaned here, and is then claimed once in the ledger (`Ledger.claim_folder`),
case-insensitively, with `-2`, `-3`, ... for a second member of the same name. Once claimed it
never changes, so a library's folders stay where they are.
"""

from __future__ import annotations

import re
import unicodedata

MAX_FOLDER_LENGTH = 40
FALLBACK_FOLDER = "member"
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_RUNS = re.compile(r"[_ ]{2,}")


def member_folder_name(raw: str) -> str:
    """`Anna.Smith@example.com` → `Anna.Smith`; `Zoë  B` → `Zoë B`; `../x` → `x`.

    Letters and digits of any script, space, `.`, `_` and `-`; anything else becomes `_`;
    no leading or trailing dot, space or separator; at most 40 characters; a Windows device
    name gets a `_`. Empty results become "member".
    """
    text = unicodedata.normalize("NFC", raw).split("@", 1)[0]
    cleaned = "".join(ch if ch.isalnum() or ch in " ._-" else "_" for ch in text)
    cleaned = _RUNS.sub(lambda m: m.group(0)[0], cleaned)
    cleaned = cleaned[:MAX_FOLDER_LENGTH].strip(" ._-")
    if not cleaned:
        return FALLBACK_FOLDER
    if cleaned.split(".", 1)[0].lower() in _RESERVED:
        cleaned += "_"
    return cleaned


def is_member_folder(value: str) -> bool:
    """True for a name `member_folder_name` could have produced, suffix included."""
    base = value
    if len(value) > MAX_FOLDER_LENGTH:  # a long name with its collision suffix
        base = re.sub(r"-[0-9]{1,2}$", "", value)
    return bool(value) and len(base) <= MAX_FOLDER_LENGTH and member_folder_name(base) == base


def folder_candidates(name: str) -> list[str]:
    """`name`, `name-2`, ... `name-99`: what a member may be given, in order."""
    return [name] + [f"{name}-{n}" for n in range(2, 100)]
