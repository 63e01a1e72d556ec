"""Value objects shared across components: ledger records and queue messages."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mobile_backup.core._capture import CaptureSource
from mobile_backup.core._keys import is_sha256_hex, is_user_sub, object_key
from mobile_backup.core._members import is_member_folder


def utcnow() -> datetime:
    return datetime.now(UTC)


class FileStatus(enum.StrEnum):
    """Where a file is in its journey. `pending → uploaded → downloaded`, or `failed`."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    DOWNLOADED = "downloaded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What is known of a file before its bytes are sent: the client declares it, the API
    checks it (`core.wire.UploadFile`) and the ledger records it."""

    sha256: str
    size: int
    filename: str
    content_type: str
    taken_at: datetime | None = None
    device: str | None = None
    taken_at_source: str | None = None
    """Where `taken_at` came from (`core.CaptureSource`); None from older clients."""

    def fields(self) -> dict[str, Any]:
        return asdict(self)


class LazyModel(BaseModel):
    """The base of our models: each builds its validator on first use, not at import (a
    cold Lambda imports every model and uses a few; issue 34, B6)."""

    model_config = ConfigDict(defer_build=True)


class Receipt(LazyModel):
    """The PC agent's proof that a file is on disk, verified."""

    model_config = ConfigDict(frozen=True)

    host: str
    path: str = Field(description="path relative to the library root, '/'-separated")
    sha256: str
    at: datetime
    captured_at: datetime | None = None
    """The capture time the file was filed by."""
    capture_source: str | None = None
    """Where that time came from (`core.CaptureSource`)."""
    pc: str | None = None
    """The PC (`core.PcRegistry` name) that wrote it; None before PCs had names: `main`."""


class FileRecord(LazyModel):
    """One ledger entry: one user's copy of one content."""

    model_config = ConfigDict(frozen=True)

    user_sub: str
    sha256: str
    filename: str
    size: int
    content_type: str
    taken_at: datetime | None = None
    taken_at_source: str | None = None
    device: str | None = None
    owner_name: str | None = None
    """The member's folder name (`Ledger.claim_folder`), recorded when the upload was planned."""
    status: FileStatus
    created_at: datetime
    uploaded_at: datetime | None = None
    announced_at: datetime | None = None
    downloaded_at: datetime | None = None
    failed_reason: str | None = None
    receipt: Receipt | None = None
    """The latest receipt, whichever PC wrote it."""
    receipts: dict[str, Receipt] = Field(default_factory=dict)
    """Each PC's own receipt, by PC name."""
    missing_on: dict[str, datetime] = Field(default_factory=dict)
    """PCs whose audit found their copy missing or altered, and when (until a new receipt)."""
    full_checksum: str | None = None
    """The file's full-object CRC, declared when a multipart upload started."""
    checksum_algorithm: str | None = None
    """Which CRC `full_checksum` is: CRC32, or CRC64NVME for uploads of older clients."""


def _sha256_hex(value: str) -> str:
    if not is_sha256_hex(value):
        raise ValueError("not a lower-case hex SHA-256")
    return value


def _user_sub(value: str) -> str:
    if not is_user_sub(value):
        raise ValueError("not a valid user id")
    return value


def _folder_name(value: str | None) -> str | None:
    if value is not None and not is_member_folder(value):
        raise ValueError("not a member folder name")
    return value


class DownloadMessage(LazyModel):
    """The body of a message on the downloads queue (ingest → agent).

    It validates itself, so the ingest cannot send and the agent cannot accept a message
    whose key is not exactly the one its user and hash imply (a stray message can never make
    the agent read another object), whose hash or user is not well formed, or whose size is
    negative. The agent still checks the bucket against its own.
    """

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    bucket: Annotated[str, Field(min_length=1)]
    key: str
    user_sub: Annotated[str, AfterValidator(_user_sub)]
    sha256: Annotated[str, AfterValidator(_sha256_hex)]
    size: Annotated[int, Field(ge=0)]
    filename: str
    content_type: str
    taken_at: datetime | None = None
    taken_at_source: CaptureSource | None = None
    owner_name: Annotated[str | None, AfterValidator(_folder_name)] = None
    """The member's folder name; None for entries older than names (filed by `user_sub`)."""
    uploaded_at: datetime

    @model_validator(mode="after")
    def _key_is_the_users_content(self) -> DownloadMessage:
        expected = object_key(self.user_sub, self.sha256)
        if self.key != expected:
            raise ValueError(f"key {self.key!r} is not {expected!r}")
        return self

    @classmethod
    def for_record(cls, record: FileRecord, *, bucket: str) -> DownloadMessage:
        """What to fetch for a ledger entry (ingest announces it; reconcile rebuilds it)."""
        return cls(
            bucket=bucket,
            key=object_key(record.user_sub, record.sha256),
            user_sub=record.user_sub,
            sha256=record.sha256,
            size=record.size,
            filename=record.filename,
            content_type=record.content_type,
            taken_at=record.taken_at,
            taken_at_source=record.taken_at_source,
            owner_name=record.owner_name,
            # mark_uploaded always sets uploaded_at; the fallback guards a hand-edited item.
            uploaded_at=record.uploaded_at or record.created_at,
        )

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, body: str | bytes) -> DownloadMessage:
        return cls.model_validate_json(body)


def dump_record(record: FileRecord) -> dict[str, Any]:
    """A JSON-ready dict of a record (datetimes as ISO strings)."""
    return record.model_dump(mode="json")
