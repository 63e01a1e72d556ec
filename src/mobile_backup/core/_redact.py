"""Secrets never reach a log or a terminal: presigned URLs and bearer tokens are redacted.

A presigned URL is a bearer credential for as long as it lives (its signature, its access
key id, and for temporary credentials the session token), and an access token is one too.
`redact` blanks those values in any text; `RedactingFilter` applies it to every record a
logging handler emits (message, arguments and exception text), so `-v`, the agent's log
file and the Lambda's JSON logs are all covered by installing it on their handlers.
"""

from __future__ import annotations

import logging
import re

REDACTED = "REDACTED"
_SECRETS = re.compile(
    r"(?P<name>X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId"
    r"|x-amz-security-token)=(?P<value>[^&\s'\"<>]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<name>Bearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the values of presigned-URL credentials and bearer tokens blanked."""
    if "=" not in text and "earer" not in text:
        return text
    text = _SECRETS.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group('name')}{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts every record it passes (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Install `RedactingFilter` on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
