"""The exception tree shared by every component.

    MobileBackupError                 root; every error we raise on purpose
    ├── ConfigError                   settings missing or invalid (bad profile, bad value)
    ├── InvalidInputError             a request or argument the user can fix
    ├── InvalidKeyError               an S3 key outside the `media/{sub}/{sha256}` scheme
    ├── AuthError                     sign-in failed, token missing, expired or invalid
    ├── NotFoundError                 the thing asked for does not exist (for this user)
    ├── IntegrityError                bytes do not match their declared SHA-256 or size
    ├── ServiceError                  a cloud call failed (translated from botocore/httpx)
    └── CancelledError                the work was stopped on purpose (Ctrl+C, a stopping
                                      agent); it is released or resumable, never failed

Each component subclasses these in its own `exceptions` module. Every error has a stable
machine-readable `code`; the API maps errors to HTTP statuses in one place and the CLI prints
`str(error)` as one line.
"""

from __future__ import annotations


class MobileBackupError(Exception):
    """Root of every error raised on purpose by Mobile Backup."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(MobileBackupError):
    code = "config_error"


class InvalidInputError(MobileBackupError):
    code = "invalid_input"


class InvalidKeyError(InvalidInputError):
    code = "invalid_key"


class AuthError(MobileBackupError):
    code = "unauthorized"


class NotFoundError(MobileBackupError):
    code = "not_found"


class IntegrityError(MobileBackupError):
    code = "integrity_error"


class ServiceError(MobileBackupError):
    code = "service_error"


class CancelledError(MobileBackupError):
    """Stopped on purpose before it finished: released for later or resumable, not failed."""

    code = "cancelled"
