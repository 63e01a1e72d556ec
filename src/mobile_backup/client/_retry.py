"""Which failures of the upload client are worth retrying (with core's `RetryPolicy`)."""

from __future__ import annotations

from mobile_backup.client.exceptions import ApiError, TransportError, UploadError


def is_transient(exc: BaseException) -> bool:
    """Connection resets, timeouts, 5xx and 429 are transient; anything else is not."""
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ApiError | UploadError):
        return bool(exc.transient)
    return False
