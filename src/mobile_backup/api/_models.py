"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mobile_backup.core import FileRecord, FileStatus

GIB = 1024**3
# S3 accepts at most 5 GiB in one PUT; bigger files need a multipart upload.
MAX_SINGLE_PUT_SIZE = 5 * GIB
MAX_FILES_PER_REQUEST = 100
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

SHA256_PATTERN = r"^[0-9a-f]{64}$"
# type/subtype only: parameters are not needed for media, and the value is signed into the URL.
_MIME_PART = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
CONTENT_TYPE_PATTERN = rf"^{_MIME_PART}/{_MIME_PART}$"

# The checksum header S3 verifies; its value is the base64 of the SHA-256 digest.
CHECKSUM_HEADER = "x-amz-checksum-sha256"


def _single_put_size(size: int) -> int:
    if size > MAX_SINGLE_PUT_SIZE:
        raise ValueError(
            f"the file is {size} bytes; a single upload is limited to 5 GiB "
            f"({MAX_SINGLE_PUT_SIZE} bytes) and multipart uploads are not supported yet"
        )
    return size


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("the filename must not contain NUL characters")
    return value


def _as_utc(value: datetime | None) -> datetime | None:
    # Phones sometimes send local wall-clock time without an offset; UTC is the documented reading.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Sha256Hex = Annotated[
    str,
    Field(
        pattern=SHA256_PATTERN,
        description="lower-case hex SHA-256 of the file's bytes",
        examples=["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ),
]


class UploadFile(BaseModel):
    """One file the client wants to back up."""

    model_config = ConfigDict(extra="forbid")

    sha256: Sha256Hex
    size: Annotated[
        int,
        Field(
            strict=True,
            ge=0,
            description="bytes; at most 5 GiB (larger needs multipart)",
            # Documented here, enforced by _single_put_size with a clearer message.
            json_schema_extra={"maximum": MAX_SINGLE_PUT_SIZE},
        ),
        AfterValidator(_single_put_size),
    ]
    filename: Annotated[
        str,
        Field(min_length=1, max_length=255, description="the name on the phone (data, not a path)"),
        AfterValidator(_no_nul),
    ]
    content_type: Annotated[
        str,
        Field(
            max_length=255,
            pattern=CONTENT_TYPE_PATTERN,
            description="MIME type/subtype",
            examples=["image/jpeg"],
        ),
        AfterValidator(str.lower),
    ]
    taken_at: Annotated[
        datetime | None,
        Field(description="capture time; without an offset it is read as UTC"),
        AfterValidator(_as_utc),
    ] = None
    device: Annotated[str | None, Field(max_length=100, description="the sending device")] = None


class UploadRequest(BaseModel):
    """`POST /v1/uploads`: 1 to 100 files.

    The same `sha256` may appear more than once (the same photo in two albums); every entry
    gets an answer but the upload URL is issued once. Entries with the same digest must agree
    on `size`.
    """

    model_config = ConfigDict(extra="forbid")

    files: Annotated[list[UploadFile], Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)]

    @model_validator(mode="after")
    def _same_digest_same_size(self) -> UploadRequest:
        sizes: dict[str, tuple[int, int]] = {}
        for index, item in enumerate(self.files):
            first = sizes.setdefault(item.sha256, (index, item.size))
            if first[1] != item.size:
                raise ValueError(
                    f"files[{index}] has the same sha256 as files[{first[0]}] "
                    f"but a different size ({item.size} != {first[1]})"
                )
        return self


class PresignedUpload(BaseModel):
    """How to send the bytes: one HTTP request, exactly as described."""

    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        description="send exactly these headers: they are part of the signature"
    )
    expires_at: datetime


class UploadResult(BaseModel):
    """The answer for one requested file, in request order."""

    sha256: str
    status: Literal["duplicate", "upload"] = Field(
        description="`duplicate`: already backed up, nothing to send; `upload`: PUT the bytes"
    )
    upload: PresignedUpload | None = None


class UploadResponse(BaseModel):
    results: list[UploadResult]


class ReceiptView(BaseModel):
    """The PC agent's proof that the file is on disk, verified."""

    host: str
    path: str
    sha256: str
    at: datetime


class FileView(BaseModel):
    """One of the caller's files as the ledger knows it."""

    sha256: str
    filename: str
    size: int
    content_type: str
    taken_at: datetime | None = None
    status: FileStatus
    created_at: datetime
    uploaded_at: datetime | None = None
    downloaded_at: datetime | None = None
    failed_reason: str | None = None
    receipt: ReceiptView | None = None

    @classmethod
    def from_record(cls, record: FileRecord) -> FileView:
        receipt = record.receipt
        return cls(
            sha256=record.sha256,
            filename=record.filename,
            size=record.size,
            content_type=record.content_type,
            taken_at=record.taken_at,
            status=record.status,
            created_at=record.created_at,
            uploaded_at=record.uploaded_at,
            downloaded_at=record.downloaded_at,
            failed_reason=record.failed_reason,
            receipt=ReceiptView.model_validate(receipt.model_dump()) if receipt else None,
        )


class FilesPage(BaseModel):
    """`GET /v1/files`: one page; pass `next_cursor` back as `cursor` for the next."""

    files: list[FileView]
    next_cursor: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ValidationDetail(BaseModel):
    loc: list[str | int]
    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: a stable machine-readable `code` and a human `message`."""

    code: str = Field(examples=["token_invalid"])
    message: str
    details: list[ValidationDetail] | None = None


def openapi_responses(ok: type[BaseModel], *errors: int) -> dict[int, Any]:
    """OpenAPI `responses` for a route: its 200 body and the error statuses it can return.

    Listing them replaces Powertools' default 422 entry, whose body is not ours.
    """
    descriptions = {
        400: "Malformed request (not JSON, bad cursor)",
        401: "Missing, expired or invalid access token",
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
