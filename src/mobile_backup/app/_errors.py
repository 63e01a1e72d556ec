"""Turning any failure into one sentence a person can act on.

The screen never shows a raw exception: every error that reaches a view goes through
`user_message`, and every per-file reason from the upload engine through `reason_message`.
Unexpected errors are logged with their traceback and shown as a generic sentence.
"""

from __future__ import annotations

import logging
import re

from mobile_backup.client import (
    ApiError,
    LoginError,
    NoFilesError,
    NotLoggedInError,
    TransportError,
    UploadError,
)
from mobile_backup.core import ConfigError, MobileBackupError

log = logging.getLogger(__name__)

MAX_LENGTH = 160
SESSION_ENDED = "Your session has ended. Please sign in again."
OFFLINE = "Can't reach your backup service. Check your connection and try again."
UNEXPECTED = "Something went wrong. The details were written to the app's log."
# The API's messages end with "(code, HTTP status)": useful in a log, noise on a phone.
_API_SUFFIX = re.compile(r"\s*\([a-z_]+, HTTP \d{3}\)\s*$")
_URL = re.compile(r"https?://\S+")


def sentence(text: str) -> str:
    """Trimmed, capitalised, one line, ending with a full stop, at most MAX_LENGTH."""
    text = " ".join(text.split())
    text = _URL.sub("the server", text)
    if not text:
        return UNEXPECTED
    text = text[0].upper() + text[1:]
    if len(text) > MAX_LENGTH:
        text = text[: MAX_LENGTH - 1].rstrip() + "…"
    elif text[-1] not in ".!?…":
        text += "."
    return text


def user_message(exc: BaseException) -> str:
    """What to show for `exc`."""
    if isinstance(exc, LoginError):
        return sentence(str(exc))
    if isinstance(exc, NotLoggedInError):
        return SESSION_ENDED
    if isinstance(exc, TransportError):
        return OFFLINE
    if isinstance(exc, ApiError):
        if exc.status in (401, 403):
            return SESSION_ENDED
        if exc.transient:
            return "The backup service is busy right now. Try again in a minute."
        return sentence(_API_SUFFIX.sub("", str(exc)))
    if isinstance(exc, UploadError):
        if exc.transient:
            return "The storage service is busy right now. Try again in a minute."
        return sentence(str(exc))
    if isinstance(exc, ConfigError):
        return sentence(f"This app is not set up for that deployment: {exc}")
    if isinstance(exc, NoFilesError | MobileBackupError):
        return sentence(str(exc))
    if isinstance(exc, OSError):
        return sentence(f"Can't read the file: {exc.strerror or exc}")
    log.error("unexpected error shown to the user as a generic message", exc_info=exc)
    return UNEXPECTED


def reason_message(reason: str | None) -> str:
    """A per-file failure reason from the upload engine, as shown in the queue."""
    if not reason:
        return "The upload failed for an unknown reason."
    lowered = reason.lower()
    if "cannot reach" in lowered or "interrupted" in lowered:
        return "The connection dropped. Retry when you are back online."
    if "not signed in" in lowered or "session" in lowered:
        return SESSION_ENDED
    return sentence(_API_SUFFIX.sub("", reason))
