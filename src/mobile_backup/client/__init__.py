"""The upload engine used by the CLI and the mobile app."""

from __future__ import annotations

from mobile_backup.client._api import ApiClient, FilePage, UploadRequest, UploadTicket
from mobile_backup.client._auth import Authenticator
from mobile_backup.client._media import capture_time, content_type, discover, is_media
from mobile_backup.client._tokens import Tokens, TokenStore
from mobile_backup.client._upload import (
    DUPLICATE,
    FAILED,
    UPLOADED,
    FileResult,
    Uploader,
    UploadSubscriber,
    UploadSummary,
)
from mobile_backup.client.exceptions import (
    ApiError,
    LoginError,
    NoFilesError,
    NotLoggedInError,
    TransportError,
    UploadError,
)

__all__ = [
    "DUPLICATE",
    "FAILED",
    "UPLOADED",
    "ApiClient",
    "ApiError",
    "Authenticator",
    "FilePage",
    "FileResult",
    "LoginError",
    "NoFilesError",
    "NotLoggedInError",
    "TokenStore",
    "Tokens",
    "TransportError",
    "UploadError",
    "UploadRequest",
    "UploadSubscriber",
    "UploadSummary",
    "UploadTicket",
    "Uploader",
    "capture_time",
    "content_type",
    "discover",
    "is_media",
]
