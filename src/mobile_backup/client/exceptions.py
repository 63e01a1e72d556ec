"""Client-side errors.

MobileBackupError
├── AuthError
│   ├── LoginError            wrong username/password, user unknown, flow not allowed
│   └── NotLoggedInError      no stored session, or it can no longer be refreshed
├── InvalidInputError
│   └── NoFilesError          the paths given hold no file to back up
└── ServiceError
    ├── ApiError              the HTTP API answered with an error (has `status`, `code`)
    ├── TransportError        the API or S3 could not be reached
    └── UploadError           S3 refused the bytes of one file
"""

from __future__ import annotations

from mobile_backup.core import AuthError, InvalidInputError, ServiceError


class LoginError(AuthError):
    code = "login_failed"


class NotLoggedInError(AuthError):
    code = "not_logged_in"


class NoFilesError(InvalidInputError):
    code = "no_files"


class ApiError(ServiceError):
    """An error answered by the HTTP API (JSON body with a stable code)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code)
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.status == 429


class TransportError(ServiceError):
    code = "transport_error"


class UploadError(ServiceError):
    code = "upload_failed"

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
