"""Value objects shared across components: ledger records and queue messages."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mobile_backup.core._keys import object_key


def utcnow() -> datetime:
    return datetime.now(UTC)


class FileStatus(enum.StrEnum):
    """Where a file is in its journey. `pending → uploaded → downloaded`, or `failed`."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    DOWNLOADED = "downloaded"
    FAILED = "failed"


class Receipt(BaseModel):
    """The PC agent's proof that a file is on disk, verified."""

    model_config = ConfigDict(frozen=True)

    host: str
    path: str = Field(description="path relative to the library root, '/'-separated")
    sha256: str
    at: datetime


class FileRecord(BaseModel):
    """One ledger entry: one user's copy of one content."""

    model_config = ConfigDict(frozen=True)

    user_sub: str
    sha256: str
    filename: str
    size: int
    content_type: str
    taken_at: datetime | None = None
    device: str | None = None
    status: FileStatus
    created_at: datetime
    uploaded_at: datetime | None = None
    announced_at: datetime | None = None
    downloaded_at: datetime | None = None
    failed_reason: str | None = None
    receipt: Receipt | None = None
    crc64nvme: str | None = None
    """The file's full-object CRC64NVME, declared when a multipart upload started."""


class DownloadMessage(BaseModel):
    """The body of a message on the downloads queue (ingest → agent)."""

    model_config = ConfigDict(frozen=True)

    v: int = 1
    bucket: str
    key: str
    user_sub: str
    sha256: str
    size: int
    filename: str
    content_type: str
    taken_at: datetime | None = None
    uploaded_at: datetime

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
