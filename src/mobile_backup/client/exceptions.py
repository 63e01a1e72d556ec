"""Client-side errors.

MobileBackupError
├── AuthError
│   ├── LoginError            wrong username/password, user unknown, flow not allowed
│   │   ├── NewPasswordRequiredError  a new member signs in with a temporary password
│   │   └── MfaRequiredError  a code from the authenticator app ends the sign-in
│   │       └── MfaSetupRequiredError  the deployment requires one, not set up yet
│   └── NotLoggedInError      no stored session, or it can no longer be refreshed
├── InvalidInputError
│   └── NoFilesError          the paths given hold no file to back up
├── IntegrityError
│   └── FileChangedError      a file changed between hashing and sending (send it next run)
├── JournalError              the local upload journal cannot be opened or written
└── ServiceError
    ├── ApiError              the HTTP API answered with an error (has `status`, `code`)
    ├── TransportError        the API or S3 could not be reached
    └── UploadError           S3 refused the bytes of one file
        └── UrlRejectedError  S3 refused the URL itself (expired, skewed clock): sign again
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mobile_backup.core import (
    AuthError,
    IntegrityError,
    InvalidInputError,
    MobileBackupError,
    ServiceError,
)

if TYPE_CHECKING:
    from mobile_backup.client._mfa import MfaChallenge


class LoginError(AuthError):
    code = "login_failed"


class NewPasswordRequiredError(LoginError):
    """The member signed in with the temporary password they were given: they must choose
    their own (sign in again with `new_password`)."""

    code = "new_password_required"


class MfaRequiredError(LoginError):
    """The password was right; the sign-in ends with a code from the member's authenticator
    app. `challenge` carries what answering it needs (`Authenticator.answer_mfa`)."""

    code = "mfa_code_required"

    def __init__(self, message: str, challenge: MfaChallenge) -> None:
        super().__init__(message)
        self.challenge = challenge


class MfaSetupRequiredError(MfaRequiredError):
    """The deployment requires a second factor this member has not set up yet: add
    `challenge.secret` to an authenticator app, then answer with its first code."""

    code = "mfa_setup_required"


class NotLoggedInError(AuthError):
    code = "not_logged_in"


class NoFilesError(InvalidInputError):
    code = "no_files"


class FileChangedError(IntegrityError):
    """The file is not the one that was hashed any more (it is being edited or written)."""

    code = "file_changed"


class JournalError(MobileBackupError):
    """The local upload journal (SQLite) cannot be opened or written."""

    code = "journal_error"


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


class UrlRejectedError(UploadError):
    """S3 refused the URL itself (403): it expired, or the clocks disagree. Sign it again."""

    code = "url_rejected"
