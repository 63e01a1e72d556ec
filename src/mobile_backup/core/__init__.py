"""Shared foundations: settings, errors, models, the key scheme, checksums, the ledger."""

from __future__ import annotations

from mobile_backup.core._aws import cognito_client, dynamodb_client, s3_client, sqs_client
from mobile_backup.core._batches import SQS_BATCH, chunked, delete_messages
from mobile_backup.core._boundary import (
    NOT_FOUND_CODES,
    aws_call,
    boto_errors,
    error_code,
    object_missing,
)
from mobile_backup.core._capture import Capture, CaptureSource, plausible
from mobile_backup.core._checksums import b64_to_hex, hex_to_b64, sha256_file, sha256_stream
from mobile_backup.core._crash import crash_point, crash_points
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
from mobile_backup.core._ledger import AWAITING_INDEX, Ledger, UnreservedUploadError
from mobile_backup.core._members import is_member_folder, member_folder_name
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
from mobile_backup.core._pcs import (
    HEARTBEAT_EVERY,
    MAIN_PC,
    PcInUseError,
    PcRecord,
    PcRegistry,
    check_pc_name,
    library_id,
)
from mobile_backup.core._redact import RedactingFilter, redact, redact_handlers
from mobile_backup.core._settings import (
    EMULATOR_KEY,
    RECORD_CALLS_ENV,
    Settings,
    config_file_path,
    load_settings,
    read_profiles,
    write_profile,
)
from mobile_backup.core._snapstart import INIT_TYPE_ENV, reseed_after_restore, snapshot_init

__all__ = [
    "AWAITING_INDEX",
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "EMULATOR_KEY",
    "HEARTBEAT_EVERY",
    "INIT_TYPE_ENV",
    "MAIN_PC",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "NOT_BACKED_UP",
    "NOT_FOUND_CODES",
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
    "Ledger",
    "MobileBackupError",
    "NotFoundError",
    "ObjectKey",
    "ObjectState",
    "PartPlan",
    "PcInUseError",
    "PcRecord",
    "PcRegistry",
    "Receipt",
    "RedactingFilter",
    "ServiceError",
    "Settings",
    "UnreservedUploadError",
    "aws_call",
    "b64_to_hex",
    "boto_errors",
    "check_pc_name",
    "choose_part_size",
    "chunked",
    "cognito_client",
    "config_file_path",
    "crash_point",
    "crash_points",
    "decode_event_key",
    "delete_messages",
    "dynamodb_client",
    "error_code",
    "hex_to_b64",
    "is_member_folder",
    "is_user_sub",
    "library_id",
    "load_settings",
    "may_free",
    "member_folder_name",
    "object_key",
    "object_missing",
    "parse_object_key",
    "part_count",
    "part_length",
    "part_range",
    "password_problem",
    "password_rules",
    "plausible",
    "read_profiles",
    "redact",
    "redact_handlers",
    "reseed_after_restore",
    "s3_client",
    "sha256_file",
    "sha256_stream",
    "snapshot_init",
    "sqs_client",
    "state_tagging",
    "temporary_password",
    "utcnow",
    "write_profile",
]
