"""Shared foundations every component needs: settings, errors, models and the wire contract,
the key scheme, parts and checksums. Nothing here calls AWS (that is `aws` and `ledger`)."""

from __future__ import annotations

from mobile_backup.core._batches import SQS_BATCH, chunked
from mobile_backup.core._capture import Capture, CaptureSource, plausible
from mobile_backup.core._checksums import b64_to_hex, hex_to_b64, sha256_file, sha256_stream
from mobile_backup.core._errors import (
    AuthError,
    CancelledError,
    ConfigError,
    IntegrityError,
    InvalidInputError,
    InvalidKeyError,
    MobileBackupError,
    NotFoundError,
    ServiceError,
)
from mobile_backup.core._freeing import (
    NOT_BACKED_UP,
    VERIFIED_WITHIN,
    FreeVerdict,
    may_free,
)
from mobile_backup.core._keys import (
    ObjectKey,
    decode_event_key,
    is_user_sub,
    object_key,
    parse_object_key,
)
from mobile_backup.core._members import folder_candidates, is_member_folder, member_folder_name
from mobile_backup.core._models import (
    DownloadMessage,
    FileMeta,
    FileRecord,
    FileStatus,
    Receipt,
    utcnow,
)
from mobile_backup.core._object_state import STATE_TAG, ObjectState, state_tagging
from mobile_backup.core._parts import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    PartPlan,
    choose_part_size,
    part_count,
    part_length,
    part_range,
)
from mobile_backup.core._passwords import (
    PASSWORD_POLICY,
    password_problem,
    password_rules,
    temporary_password,
)
from mobile_backup.core._redact import RedactingFilter, redact, redact_handlers
from mobile_backup.core._retry import RetryPolicy
from mobile_backup.core._settings import (
    EMULATOR_KEY,
    RECORD_CALLS_ENV,
    Settings,
    config_file_path,
    crash_spec,
    default_state_dir,
    load_settings,
    read_profiles,
    record_calls_path,
    write_profile,
)
from mobile_backup.core._snapstart import INIT_TYPE_ENV, reseed_after_restore, snapshot_init

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "EMULATOR_KEY",
    "INIT_TYPE_ENV",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "NOT_BACKED_UP",
    "PASSWORD_POLICY",
    "RECORD_CALLS_ENV",
    "SQS_BATCH",
    "STATE_TAG",
    "VERIFIED_WITHIN",
    "AuthError",
    "CancelledError",
    "Capture",
    "CaptureSource",
    "ConfigError",
    "DownloadMessage",
    "FileMeta",
    "FileRecord",
    "FileStatus",
    "FreeVerdict",
    "IntegrityError",
    "InvalidInputError",
    "InvalidKeyError",
    "MobileBackupError",
    "NotFoundError",
    "ObjectKey",
    "ObjectState",
    "PartPlan",
    "Receipt",
    "RedactingFilter",
    "RetryPolicy",
    "ServiceError",
    "Settings",
    "b64_to_hex",
    "choose_part_size",
    "chunked",
    "config_file_path",
    "crash_spec",
    "decode_event_key",
    "default_state_dir",
    "folder_candidates",
    "hex_to_b64",
    "is_member_folder",
    "is_user_sub",
    "load_settings",
    "may_free",
    "member_folder_name",
    "object_key",
    "parse_object_key",
    "part_count",
    "part_length",
    "part_range",
    "password_problem",
    "password_rules",
    "plausible",
    "read_profiles",
    "record_calls_path",
    "redact",
    "redact_handlers",
    "reseed_after_restore",
    "sha256_file",
    "sha256_stream",
    "snapshot_init",
    "state_tagging",
    "temporary_password",
    "utcnow",
    "write_profile",
]
