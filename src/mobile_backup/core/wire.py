"""The HTTP API's wire contract: its request and response bodies (also its OpenAPI schema).

One definition for both ends: the API (on Lambda) validates requests and builds responses
with these models, and the upload client builds its requests and validates the responses
with the same ones, so the two cannot disagree about a field, a limit or a status. Pydantic
only (no Powertools): the phone imports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mobile_backup.core import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    CaptureSource,
    FileMeta,
    FileRecord,
    FileStatus,
    FreeVerdict,
    choose_part_size,
    part_count,
)
from mobile_backup.core._parts import MAX_OBJECT_SIZE

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
            f"({MAX_SINGLE_PUT_SIZE} bytes): use a multipart upload (POST /v1/uploads/multipart)"
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
    taken_at_source: Annotated[
        CaptureSource | None,
        Field(description="where taken_at came from; without one it counts as the file's own"),
    ] = None

    def meta(self) -> FileMeta:
        """The declared facts, as the ledger records them."""
        return FileMeta(
            sha256=self.sha256,
            size=self.size,
            filename=self.filename,
            content_type=self.content_type,
            taken_at=self.taken_at,
            device=self.device,
            taken_at_source=str(self.taken_at_source) if self.taken_at_source else None,
        )


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


# Multipart uploads ------------------------------------------------------------------------
# Part URLs signed per request: enough to keep a fast link busy, small enough for a Lambda
# response (each URL is under 1 KB) and short-lived enough that few expire unused.
MAX_PARTS_PER_REQUEST = 100
MAX_UPLOAD_ID_LENGTH = 1024
# base64 of a 32-byte SHA-256 digest, as S3 takes it in `x-amz-checksum-sha256`.
SHA256_B64_PATTERN = r"^[A-Za-z0-9+/]{43}=$"
# base64 of an 8-byte CRC64NVME, as S3 takes it in `x-amz-checksum-crc64nvme`.
CRC64_B64_PATTERN = r"^[A-Za-z0-9+/]{11}=$"
# Multipart uploads carry CRC64NVME: S3 checks each part against its own and, at
# completion, the whole object against the file's (a "full object" checksum, which S3 can
# only combine for CRCs). Single PUTs carry the whole file's SHA-256.
PART_CHECKSUM_HEADER = "x-amz-checksum-crc64nvme"

Crc64B64 = Annotated[
    str,
    Field(
        pattern=CRC64_B64_PATTERN,
        description="base64 of the big-endian CRC64NVME",
        examples=["AAAAAAAAAAA="],
    ),
]

Sha256B64 = Annotated[
    str,
    Field(
        pattern=SHA256_B64_PATTERN,
        description="base64 of the part's SHA-256 digest",
        examples=["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
    ),
]
PartSize = Annotated[
    int,
    Field(
        strict=True,
        ge=MIN_PART_SIZE,
        le=MAX_PART_SIZE,
        description="bytes in every part but the last (5 MiB to 5 GiB)",
    ),
]
UploadId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_UPLOAD_ID_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="the multipart upload's id, as `POST /v1/uploads/multipart` returned it",
    ),
]


class PartChecksum(BaseModel):
    """A part the client is about to send: its number and the CRC64NVME S3 must verify."""

    model_config = ConfigDict(extra="forbid")

    number: Annotated[int, Field(strict=True, ge=1, le=MAX_PARTS)]
    checksum_crc64nvme: Crc64B64


def _check_part_numbers(parts: list[PartChecksum], count: int) -> None:
    seen: set[int] = set()
    for part in parts:
        if part.number > count:
            raise ValueError(f"part {part.number} does not exist: the file has {count} part(s)")
        if part.number in seen:
            raise ValueError(f"part {part.number} is listed twice")
        seen.add(part.number)


class MultipartStart(UploadFile):
    """`POST /v1/uploads/multipart`: begin (or resume) a multipart upload of one file.

    `part_size` is the client's proposal (it hashes each part with it while hashing the
    file); without one the API chooses. `parts` are the parts to presign right away.
    """

    size: Annotated[
        int,
        Field(strict=True, ge=1, le=MAX_OBJECT_SIZE, description="bytes; at most 5 TiB"),
    ]
    crc64nvme: Annotated[
        Crc64B64,
        Field(
            description="the whole file's CRC64NVME, computed with its SHA-256: S3 refuses to "
            "complete an object whose parts do not make exactly this file"
        ),
    ]
    part_size: PartSize | None = None
    parts: Annotated[list[PartChecksum], Field(max_length=MAX_PARTS_PER_REQUEST)] = []

    @property
    def effective_part_size(self) -> int:
        return self.part_size or choose_part_size(self.size)

    @model_validator(mode="after")
    def _fits_s3_limits(self) -> MultipartStart:
        count = part_count(self.size, self.effective_part_size)
        if count > MAX_PARTS:
            raise ValueError(
                f"{self.size} bytes in parts of {self.effective_part_size} make {count} parts; "
                f"S3 allows at most {MAX_PARTS} (use bigger parts)"
            )
        _check_part_numbers(self.parts, count)
        return self


class _UploadRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: Sha256Hex
    upload_id: UploadId


class MultipartPartsRequest(_UploadRef):
    """`POST /v1/uploads/multipart/parts`: presign (again) some parts of an upload.

    With `include_completed`, the answer also lists the parts S3 already holds, so a client
    that lost track (killed between a part's PUT and its note of it) sends none twice.
    """

    part_size: PartSize
    parts: Annotated[list[PartChecksum], Field(max_length=MAX_PARTS_PER_REQUEST)] = []
    include_completed: bool = False

    @model_validator(mode="after")
    def _distinct_parts(self) -> MultipartPartsRequest:
        _check_part_numbers(self.parts, MAX_PARTS)
        return self


class MultipartCompleteRequest(_UploadRef):
    """`POST /v1/uploads/multipart/complete`: assemble the object from its parts.

    `checksums` are every part's CRC64NVME (base64) in part order; the API checks that S3
    holds exactly those parts, of the sizes the declared total implies, then S3 checks the
    assembled object against the file's CRC64NVME declared when the upload started.
    """

    part_size: PartSize
    checksums: Annotated[list[Crc64B64], Field(min_length=1, max_length=MAX_PARTS)]


class MultipartAbortRequest(_UploadRef):
    """`POST /v1/uploads/multipart/abort`: give up an upload and free its parts."""


class PresignedPart(BaseModel):
    """How to send one part: one PUT, exactly as described."""

    number: int
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        description="send exactly these headers: they are part of the signature"
    )
    expires_at: datetime


class CompletedPart(BaseModel):
    """A part S3 already holds."""

    number: int
    size: int
    etag: str


class MultipartUpload(BaseModel):
    """The state of a multipart upload and the part URLs asked for.

    `status` is `duplicate` when the file is backed up already (nothing to send), else
    `upload`.
    """

    sha256: str
    status: Literal["duplicate", "upload"]
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    parts: list[PresignedPart] = []
    completed: list[CompletedPart] | None = Field(
        default=None, description="parts S3 already holds (when resuming or asked for)"
    )


class MultipartResult(BaseModel):
    """The outcome of completing or aborting an upload."""

    sha256: str
    status: Literal["uploaded", "aborted"]


class ReceiptView(BaseModel):
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


class FileView(BaseModel):
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


class FilesPage(BaseModel):
    """`GET /v1/files`: one page; pass `next_cursor` back as `cursor` for the next."""

    files: list[FileView]
    next_cursor: str | None = None


class LookupRequest(BaseModel):
    """`POST /v1/files/lookup`: which of these contents are backed up (reads only)."""

    model_config = ConfigDict(extra="forbid")

    sha256: list[Sha256Hex] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class LookupResult(BaseModel):
    """What the ledger says of one content, in request order."""

    sha256: str
    backed_up: bool = Field(description="the cloud holds it (uploaded, or on the PC already)")
    on_pc: bool = Field(description="a PC has it, verified (the ledger holds its receipt)")
    deletable: bool = Field(
        default=False,
        description="safe to delete from the phone: a PC has it and re-verified it since",
    )
    reason: str = Field(default="", description="why it is, or is not, safe to delete")


class LookupResponse(BaseModel):
    results: list[LookupResult]


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
