"""The S3 key scheme: `media/{user_sub}/{sha256_hex}`.

The user part always comes from a verified token, never from a request, and the content
part is the file's SHA-256, so a key names exactly one user's copy of exactly one content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from mobile_backup.core._errors import InvalidKeyError

MEDIA_PREFIX = "media/"
_SUB_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: str) -> bool:
    """True for a lower-case hex SHA-256 digest."""
    return _SHA256_RE.fullmatch(value) is not None


def is_user_sub(value: str) -> bool:
    """True for a value usable as the user part of a key (Cognito subs are UUIDs)."""
    return _SUB_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A parsed media key."""

    user_sub: str
    sha256: str

    def __str__(self) -> str:
        return f"{MEDIA_PREFIX}{self.user_sub}/{self.sha256}"


def object_key(user_sub: str, sha256: str) -> str:
    """The S3 key for `user_sub`'s copy of the content `sha256`."""
    if not is_user_sub(user_sub):
        raise InvalidKeyError(f"not a valid user id: {user_sub!r}")
    if not is_sha256_hex(sha256):
        raise InvalidKeyError(f"not a lower-case hex SHA-256: {sha256!r}")
    return f"{MEDIA_PREFIX}{user_sub}/{sha256}"


THUMBS_PREFIX = "thumbs/"
"""Each member's thumbnails (`thumbs/{sub}/{sha256}.jpg`): kept after the photo's own copy
expires, never announced to a PC (the ingest hears of `media/` only)."""


def thumb_key(user_sub: str, sha256: str) -> str:
    """The S3 key of `user_sub`'s thumbnail of the content `sha256`."""
    return THUMBS_PREFIX + object_key(user_sub, sha256).removeprefix(MEDIA_PREFIX) + ".jpg"


def parse_object_key(key: str) -> ObjectKey:
    """Parse a decoded key; raise InvalidKeyError for anything outside the scheme."""
    if not key.startswith(MEDIA_PREFIX):
        raise InvalidKeyError(f"key outside {MEDIA_PREFIX!r}: {key!r}")
    parts = key[len(MEDIA_PREFIX) :].split("/")
    if len(parts) != 2 or not is_user_sub(parts[0]) or not is_sha256_hex(parts[1]):
        raise InvalidKeyError(f"key does not match media/{{user}}/{{sha256}}: {key!r}")
    return ObjectKey(user_sub=parts[0], sha256=parts[1])


def decode_event_key(raw: str) -> str:
    """Decode a key as S3 event notifications carry it (URL-encoded, spaces as `+`)."""
    return unquote_plus(raw)
