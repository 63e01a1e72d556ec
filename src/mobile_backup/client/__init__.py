"""The upload engine used by the CLI and the mobile app.

`Uploader` backs files up (hash, dedupe, presigned PUTs, resumable multipart uploads,
retries) and reports to `UploadSubscriber`s; a `Journal` lets a later run resume; a
`Watcher` keeps backing up folders as new photos and videos appear.
"""

from __future__ import annotations

from mobile_backup.client._api import (
    ApiClient,
)
from mobile_backup.client._auth import Authenticator, ResetSent
from mobile_backup.client._cloud_thumbs import CloudThumbs, keep_thumbnails
from mobile_backup.client._freeing import (
    FREE,
    KEEP,
    FreedFile,
    FreeItem,
    free_planned,
    plan_free_up,
)
from mobile_backup.client._invite import (
    APP_SCHEME,
    InvalidInviteError,
    Invite,
    join_profile,
    read_invite,
)
from mobile_backup.client._journal import Journal, journal_path
from mobile_backup.client._media import capture_of, content_type, discover
from mobile_backup.client._mfa import MfaChallenge, otpauth_uri
from mobile_backup.client._parts import (
    FileStamp,
    choose_part_size,
)
from mobile_backup.client._results import (
    CANCELLED,
    DUPLICATE,
    FAILED,
    UPLOADED,
    WOULD_UPLOAD,
    FileResult,
    UploadSubscriber,
    UploadSummary,
)
from mobile_backup.client._scan import (
    Scan,
    Skipped,
    classify,
    group_skipped,
    scan_folder,
)
from mobile_backup.client._session import UploadSession, account_id, account_key
from mobile_backup.client._tokens import Tokens, TokenStore
from mobile_backup.client._upload import Uploader
from mobile_backup.client._watch import Watcher
from mobile_backup.client.exceptions import (
    ApiError,
    FileChangedError,
    JournalError,
    LoginError,
    MfaRequiredError,
    MfaSetupRequiredError,
    NewPasswordRequiredError,
    NoFilesError,
    NotLoggedInError,
    TransportError,
    UploadError,
)
from mobile_backup.core import RetryPolicy

__all__ = [
    "APP_SCHEME",
    "CANCELLED",
    "DUPLICATE",
    "FAILED",
    "FREE",
    "KEEP",
    "UPLOADED",
    "WOULD_UPLOAD",
    "ApiClient",
    "ApiError",
    "Authenticator",
    "CloudThumbs",
    "FileChangedError",
    "FileResult",
    "FileStamp",
    "FreeItem",
    "FreedFile",
    "InvalidInviteError",
    "Invite",
    "Journal",
    "JournalError",
    "LoginError",
    "MfaChallenge",
    "MfaRequiredError",
    "MfaSetupRequiredError",
    "NewPasswordRequiredError",
    "NoFilesError",
    "NotLoggedInError",
    "ResetSent",
    "RetryPolicy",
    "Scan",
    "Skipped",
    "TokenStore",
    "Tokens",
    "TransportError",
    "UploadError",
    "UploadSession",
    "UploadSubscriber",
    "UploadSummary",
    "Uploader",
    "Watcher",
    "account_id",
    "account_key",
    "capture_of",
    "choose_part_size",
    "classify",
    "content_type",
    "discover",
    "free_planned",
    "group_skipped",
    "join_profile",
    "journal_path",
    "keep_thumbnails",
    "otpauth_uri",
    "plan_free_up",
    "read_invite",
    "scan_folder",
]
