"""The wire contract's single-PUT uploads: limits, the file a client declares, the answer.

Part of `core.wire` (which re-exports every name): split by concept, one module each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from mobile_backup.core import (
    CaptureSource,
    FileMeta,
)
from mobile_backup.core._models import LazyModel

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

# base64 of a 32-byte SHA-256 digest, as S3 takes it in `x-amz-checksum-sha256`.
SHA256_B64_PATTERN = r"^[A-Za-z0-9+/]{43}=$"
Sha256B64 = Annotated[
    str,
    Field(
        pattern=SHA256_B64_PATTERN,
        description="base64 of the part's SHA-256 digest",
        examples=["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
    ),
]


class UploadFile(LazyModel):
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


class UploadRequest(LazyModel):
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


class PresignedUpload(LazyModel):
    """How to send the bytes: one HTTP request, exactly as described."""

    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        description="send exactly these headers: they are part of the signature"
    )
    expires_at: datetime


class UploadResult(LazyModel):
    """The answer for one requested file, in request order."""

    sha256: str
    status: Literal["duplicate", "upload"] = Field(
        description="`duplicate`: already backed up, nothing to send; `upload`: PUT the bytes"
    )
    upload: PresignedUpload | None = None


class UploadResponse(LazyModel):
    results: list[UploadResult]
