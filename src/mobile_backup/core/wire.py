"""The HTTP API's wire contract: its request and response bodies (also its OpenAPI schema).

One definition for both ends: the API (on Lambda) validates requests and builds responses
with these models, and the upload client builds its requests and validates the responses
with the same ones, so the two cannot disagree about a field, a limit or a status. Pydantic
only (no Powertools): the phone imports it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mobile_backup.core import (
    FileRecord,
    FileStatus,
    FreeVerdict,
)
from mobile_backup.core._models import LazyModel
from mobile_backup.core._wire_uploads import (
    CHECKSUM_HEADER,
    CONTENT_TYPE_PATTERN,
    DEFAULT_PAGE_SIZE,
    GIB,
    MAX_FILES_PER_REQUEST,
    MAX_PAGE_SIZE,
    MAX_SINGLE_PUT_SIZE,
    SHA256_B64_PATTERN,
    PresignedUpload,
    Sha256B64,
    Sha256Hex,
    UploadFile,
    UploadRequest,
    UploadResponse,
    UploadResult,
)

if TYPE_CHECKING:  # at run time, imported when first asked for (`__getattr__` below)
    from mobile_backup.core._wire_multipart import (
        CRC_B64_PATTERN,
        CRC_B64_PATTERNS,
        MAX_PARTS_PER_REQUEST,
        MAX_UPLOAD_ID_LENGTH,
        MULTIPART_CHECKSUM,
        ChecksumAlgorithm,
        CompletedPart,
        CrcB64,
        MultipartAbortRequest,
        MultipartCompleteRequest,
        MultipartPartsRequest,
        MultipartResult,
        MultipartStart,
        MultipartUpload,
        PartChecksum,
        PartSize,
        PresignedPart,
        UploadId,
        fits_algorithm,
        part_checksum_header,
    )

__all__ = [
    "CHANGE_MARGIN",
    "CHECKSUM_HEADER",
    "CONTENT_TYPE_PATTERN",
    "CRC_B64_PATTERN",
    "CRC_B64_PATTERNS",
    "DEFAULT_PAGE_SIZE",
    "GIB",
    "MAX_FILES_PER_REQUEST",
    "MAX_PAGE_SIZE",
    "MAX_PARTS_PER_REQUEST",
    "MAX_SINGLE_PUT_SIZE",
    "MAX_THUMB_BYTES",
    "MAX_UPLOAD_ID_LENGTH",
    "MULTIPART_CHECKSUM",
    "SHA256_B64_PATTERN",
    "CheckResponse",
    "ChecksumAlgorithm",
    "CompletedPart",
    "CrcB64",
    "ErrorBody",
    "FileView",
    "FilesPage",
    "FilesSummary",
    "Health",
    "LookupRequest",
    "LookupResponse",
    "LookupResult",
    "MultipartAbortRequest",
    "MultipartCompleteRequest",
    "MultipartPartsRequest",
    "MultipartResult",
    "MultipartStart",
    "MultipartUpload",
    "PartChecksum",
    "PartSize",
    "PcView",
    "PresignedPart",
    "PresignedUpload",
    "ReceiptView",
    "Sha256B64",
    "Sha256Hex",
    "StatusesPage",
    "ThumbFile",
    "ThumbUploadRequest",
    "ThumbUploads",
    "ThumbUrlRequest",
    "ThumbUrls",
    "UploadFile",
    "UploadId",
    "UploadRequest",
    "UploadResponse",
    "UploadResult",
    "ValidationDetail",
    "fits_algorithm",
    "openapi_responses",
    "part_checksum_header",
]


class ReceiptView(LazyModel):
    """The PC agent's proof that the file is on disk, verified."""

    host: str
    path: str
    sha256: str
    at: datetime
    captured_at: datetime | None = None
    """The capture time the PC filed the file by."""
    capture_source: str | None = None
    """Where that time came from: exif, video, live_photo, filename, file_time or upload."""
    pc: str | None = None
    """The PC that wrote it."""


class FileView(LazyModel):
    """One of the caller's files as the ledger knows it."""

    sha256: str
    filename: str
    size: int
    content_type: str
    taken_at: datetime | None = None
    taken_at_source: str | None = None
    owner_name: str | None = None
    """The member's folder name in the PC library."""
    status: FileStatus
    created_at: datetime
    uploaded_at: datetime | None = None
    downloaded_at: datetime | None = None
    failed_reason: str | None = None
    receipt: ReceiptView | None = None
    """The latest receipt, whichever PC wrote it."""
    receipts: dict[str, ReceiptView] = Field(default_factory=dict)
    """Each PC's receipt, by PC name (`main` is the first PC)."""
    deletable: bool = False
    """Safe to delete from the phone: a PC holds it and its audit re-verified it since."""
    free_reason: str = ""
    """Why it is, or is not, safe to delete (`core.may_free`)."""

    @classmethod
    def from_record(cls, record: FileRecord, verdict: FreeVerdict | None = None) -> FileView:
        receipt = record.receipt
        return cls(
            sha256=record.sha256,
            filename=record.filename,
            size=record.size,
            content_type=record.content_type,
            taken_at=record.taken_at,
            taken_at_source=record.taken_at_source,
            owner_name=record.owner_name,
            status=record.status,
            created_at=record.created_at,
            uploaded_at=record.uploaded_at,
            downloaded_at=record.downloaded_at,
            failed_reason=record.failed_reason,
            receipt=ReceiptView.model_validate(receipt.model_dump()) if receipt else None,
            receipts={
                pc: ReceiptView.model_validate(r.model_dump()) for pc, r in record.receipts.items()
            },
            deletable=verdict.deletable if verdict else False,
            free_reason=verdict.reason if verdict else "",
        )


CHANGE_MARGIN = timedelta(hours=1)
"""How far before the last read's `as_of` the next `changed_since` starts: the entries'
change times are the writers' clocks (a PC a few minutes slow writes its receipts "in the
past"), not the API's."""


class FilesPage(LazyModel):
    """`GET /v1/files`: one page; pass `next_cursor` back as `cursor` for the next."""

    files: list[FileView]
    next_cursor: str | None = None
    as_of: datetime | None = None
    """With `changed_since`: when the API began this read (its clock), the `changed_since`
    of the next one, less a margin for the clocks of the PCs that write receipts."""


class StatusesPage(LazyModel):
    """`GET /v1/files/statuses`: one page of the caller's entries, content -> status only
    (a dry run's answers for a folder of years, a page instead of 11 lookups); pass
    `next_cursor` back as `cursor` for the next."""

    statuses: dict[str, FileStatus]
    next_cursor: str | None = None
    as_of: datetime | None = None
    """When the API began this read (its clock): the page holds at least from then on."""


class FilesSummary(LazyModel):
    """`GET /v1/files/summary`: how many of the caller's files are in each status, and the
    most recent few (by their entry's latest change: sent, in the cloud, on a PC), without
    listing the rest."""

    total: int
    counts: dict[FileStatus, int]
    recent: list[FileView]


class LookupRequest(LazyModel):
    """`POST /v1/files/lookup`: which of these contents are backed up (reads only)."""

    model_config = ConfigDict(extra="forbid")

    sha256: list[Sha256Hex] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class LookupResult(LazyModel):
    """What the ledger says of one content, in request order."""

    sha256: str
    backed_up: bool = Field(description="the cloud holds it (uploaded, or on the PC already)")
    on_pc: bool = Field(description="a PC has it, verified (the ledger holds its receipt)")
    deletable: bool = Field(
        default=False,
        description="safe to delete from the phone: a PC has it and re-verified it since",
    )
    reason: str = Field(default="", description="why it is, or is not, safe to delete")


class LookupResponse(LazyModel):
    results: list[LookupResult]
    as_of: datetime | None = None
    """When the API began this read (its clock): the answers hold at least from then on."""


class PcView(LazyModel):
    """One of the household's PCs, as a member sees it (no host names or paths)."""

    name: str
    running: bool = Field(description="Whether its agent said it was running a moment ago")
    seen_at: datetime | None = Field(
        default=None, description="When the PC's agent last said it was running"
    )
    audited_at: datetime | None = Field(
        default=None, description="When its last complete check of its copies started"
    )


class CheckResponse(LazyModel):
    """`POST /v1/pcs/check`: the household's PCs were asked to check their copies now.

    A running agent starts the check within a couple of minutes (at its next heartbeat);
    a PC that is off does it when it next runs.
    """

    requested_at: datetime
    pcs: list[PcView]


MAX_THUMB_BYTES = 64 * 1024
"""A thumbnail's largest size: the app's are a few KB (a 256 px JPEG)."""


class ThumbFile(LazyModel):
    """A thumbnail to keep in the cloud for a file the member backed up."""

    model_config = ConfigDict(extra="forbid")

    sha256: Sha256Hex = Field(description="the backed-up file's content id")
    size: int = Field(ge=1, le=MAX_THUMB_BYTES, description="the thumbnail's size in bytes")
    checksum: Sha256B64 = Field(description="the thumbnail's SHA-256, base64")


class ThumbUploadRequest(LazyModel):
    """`POST /v1/thumbs`: where to put thumbnails of files the member backed up."""

    model_config = ConfigDict(extra="forbid")

    thumbs: list[ThumbFile] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class ThumbUploads(LazyModel):
    """Presigned PUTs, by content id, for the thumbnails of files the ledger has for the
    member (any other is left out: the bucket is not a store for anything else)."""

    uploads: dict[str, PresignedUpload]


class ThumbUrlRequest(LazyModel):
    """`POST /v1/thumbs/urls`: where to read the member's thumbnails of these files."""

    model_config = ConfigDict(extra="forbid")

    sha256: list[Sha256Hex] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class ThumbUrls(LazyModel):
    """Short-lived presigned GETs, by content id, of the member's own thumbnails (files the
    ledger does not have for the member are left out; a thumbnail never sent is a 404)."""

    urls: dict[str, str]
    expires_at: datetime


class Health(LazyModel):
    status: Literal["ok"] = "ok"


class ValidationDetail(LazyModel):
    loc: list[str | int]
    type: str
    message: str


class ErrorBody(LazyModel):
    """Every error response: a stable machine-readable `code` and a human `message`."""

    code: str = Field(examples=["token_invalid"])
    message: str
    details: list[ValidationDetail] | None = None


def openapi_responses(ok: type[BaseModel], *errors: int) -> dict[int, Any]:
    """OpenAPI `responses` for a route: its 200 body and the error statuses it can return.

    Listing them replaces Powertools' default 422 entry, whose body is not ours.
    """
    descriptions = {
        400: "Malformed request (not JSON, bad cursor) or inconsistent upload",
        401: "Missing, expired or invalid access token",
        404: "No such upload for this caller",
        415: "Unsupported content type",
        422: "The request does not match the schema",
        503: "A cloud service failed; retry",
    }
    responses: dict[int, Any] = {
        200: {"description": "Success", "content": {"application/json": {"model": ok}}}
    }
    for status in errors:
        responses[status] = {
            "description": descriptions.get(status, "Error"),
            "content": {"application/json": {"model": ErrorBody}},
        }
    return responses


# The multipart part of the contract is imported when one of its names is first asked for:
# a cold Lambda answering a GET does not define those models (issue 34, B6). Names come
# from the module itself, so a new one is served without a list to keep here. Hidden from
# the type checker, which would otherwise take any name of this module as valid.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in __all__:
            from mobile_backup.core import _wire_multipart

            if hasattr(_wire_multipart, name):
                value = getattr(_wire_multipart, name)
                globals()[name] = value
                return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
