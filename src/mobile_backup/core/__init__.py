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
from mobile_backup.core._capture import exif_capture_time
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
from mobile_backup.core._keys import (
    MEDIA_PREFIX,
    ObjectKey,
    decode_event_key,
    is_sha256_hex,
    is_user_sub,
    object_key,
    parse_object_key,
)
from mobile_backup.core._ledger import AWAITING_INDEX, Ledger
from mobile_backup.core._models import (
    DownloadMessage,
    FileRecord,
    FileStatus,
    Receipt,
    dump_record,
    utcnow,
)
from mobile_backup.core._parts import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
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
from mobile_backup.core._settings import (
    EMULATOR_KEY,
    Settings,
    config_file_path,
    load_settings,
    read_profiles,
    write_profile,
)

__all__ = [
    "AWAITING_INDEX",
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "EMULATOR_KEY",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MEDIA_PREFIX",
    "MIN_PART_SIZE",
    "NOT_FOUND_CODES",
    "PASSWORD_POLICY",
    "SQS_BATCH",
    "AuthError",
    "CancelledError",
    "ConfigError",
    "DownloadMessage",
    "FileRecord",
    "FileStatus",
    "IntegrityError",
    "InvalidInputError",
    "InvalidKeyError",
    "Ledger",
    "MobileBackupError",
    "NotFoundError",
    "ObjectKey",
    "PartPlan",
    "Receipt",
    "RedactingFilter",
    "ServiceError",
    "Settings",
    "aws_call",
    "b64_to_hex",
    "boto_errors",
    "choose_part_size",
    "chunked",
    "cognito_client",
    "config_file_path",
    "crash_point",
    "crash_points",
    "decode_event_key",
    "delete_messages",
    "dump_record",
    "dynamodb_client",
    "error_code",
    "exif_capture_time",
    "hex_to_b64",
    "is_sha256_hex",
    "is_user_sub",
    "load_settings",
    "object_key",
    "object_missing",
    "parse_object_key",
    "part_count",
    "part_length",
    "part_range",
    "password_problem",
    "password_rules",
    "read_profiles",
    "redact",
    "redact_handlers",
    "s3_client",
    "sha256_file",
    "sha256_stream",
    "sqs_client",
    "temporary_password",
    "utcnow",
    "write_profile",
]
