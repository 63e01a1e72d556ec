"""The wire contract's multipart uploads: start, parts, completion, abort, and their CRCs.

Part of `core.wire` (which re-exports every name).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, ConfigDict, Field, model_validator

from mobile_backup.core import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    choose_part_size,
    part_count,
)
from mobile_backup.core._models import LazyModel
from mobile_backup.core._parts import MAX_OBJECT_SIZE
from mobile_backup.core._wire_uploads import Sha256Hex, UploadFile

# Multipart uploads ------------------------------------------------------------------------
# Part URLs signed per request: enough to keep a fast link busy, small enough for a Lambda
# response (each URL is under 1 KB) and short-lived enough that few expire unused.
MAX_PARTS_PER_REQUEST = 100
MAX_UPLOAD_ID_LENGTH = 1024
# Multipart uploads carry a CRC: S3 checks each part against its own and, at completion,
# the whole object against the file's (a "full object" checksum, which S3 can only combine
# for CRCs). New clients send CRC32, which the standard library computes (`zlib.crc32`), so
# a phone needs no binary wheel for it; uploads started with CRC64NVME (older clients)
# keep it. Single PUTs carry the whole file's SHA-256.
ChecksumAlgorithm = Literal["CRC32", "CRC64NVME"]
MULTIPART_CHECKSUM: ChecksumAlgorithm = "CRC32"
"""The algorithm this version's client uses for multipart uploads."""
# base64 of the big-endian CRC: 4 bytes (CRC32) or 8 bytes (CRC64NVME).
CRC_B64_PATTERNS: dict[ChecksumAlgorithm, str] = {
    "CRC32": r"^[A-Za-z0-9+/]{6}==$",
    "CRC64NVME": r"^[A-Za-z0-9+/]{11}=$",
}
CRC_B64_PATTERN = "|".join(CRC_B64_PATTERNS.values())


def part_checksum_header(algorithm: ChecksumAlgorithm) -> str:
    """The header a part's PUT carries its checksum in (`x-amz-checksum-crc32`)."""
    return f"x-amz-checksum-{algorithm.lower()}"


def fits_algorithm(value: str, algorithm: ChecksumAlgorithm) -> bool:
    """Whether `value` is the base64 of a checksum of `algorithm`."""
    return re.fullmatch(CRC_B64_PATTERNS[algorithm], value) is not None


CrcB64 = Annotated[
    str,
    Field(
        pattern=CRC_B64_PATTERN,
        description="base64 of the big-endian CRC32 (4 bytes) or CRC64NVME (8 bytes)",
        examples=["AAAAAA==", "AAAAAAAAAAA="],
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


class PartChecksum(LazyModel):
    """A part the client is about to send: its number and the CRC S3 must verify (in the
    upload's algorithm; `checksum_crc64nvme` is what older clients call it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    number: Annotated[int, Field(strict=True, ge=1, le=MAX_PARTS)]
    checksum: Annotated[
        CrcB64, Field(validation_alias=AliasChoices("checksum", "checksum_crc64nvme"))
    ]


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
    checksum_algorithm: ChecksumAlgorithm = Field(
        default="CRC64NVME",
        description="the CRC of the parts and the whole file (older clients send CRC64NVME)",
    )
    full_checksum: Annotated[
        CrcB64 | None,
        Field(
            description="the whole file's CRC, computed with its SHA-256: S3 refuses to "
            "complete an object whose parts do not make exactly this file"
        ),
    ] = None
    crc64nvme: Annotated[
        CrcB64 | None, Field(description="`full_checksum` as older clients send it")
    ] = None
    part_size: PartSize | None = None
    parts: Annotated[list[PartChecksum], Field(max_length=MAX_PARTS_PER_REQUEST)] = []

    @property
    def effective_part_size(self) -> int:
        return self.part_size or choose_part_size(self.size)

    @property
    def file_checksum(self) -> str:
        """The whole file's CRC in `checksum_algorithm`."""
        return str(self.full_checksum or self.crc64nvme)

    @model_validator(mode="after")
    def _one_checksum_of_its_algorithm(self) -> MultipartStart:
        if (self.full_checksum is None) == (self.crc64nvme is None):
            raise ValueError("send the file's checksum once, as `full_checksum`")
        if self.crc64nvme is not None and self.checksum_algorithm != "CRC64NVME":
            raise ValueError("`crc64nvme` is a CRC64NVME; send `full_checksum` for CRC32")
        checksums = [self.file_checksum, *(p.checksum for p in self.parts)]
        if not all(fits_algorithm(c, self.checksum_algorithm) for c in checksums):
            raise ValueError(f"every checksum must be a base64 {self.checksum_algorithm}")
        return self

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


class _UploadRef(LazyModel):
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

    `checksums` are every part's CRC (base64, in the upload's algorithm) in part order; the
    API checks that S3 holds exactly those parts, of the sizes the declared total implies,
    then S3 checks the assembled object against the file's CRC declared when the upload
    started.
    """

    part_size: PartSize
    checksums: Annotated[list[CrcB64], Field(min_length=1, max_length=MAX_PARTS)]


class MultipartAbortRequest(_UploadRef):
    """`POST /v1/uploads/multipart/abort`: give up an upload and free its parts."""


class PresignedPart(LazyModel):
    """How to send one part: one PUT, exactly as described."""

    number: int
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        description="send exactly these headers: they are part of the signature"
    )
    expires_at: datetime


class CompletedPart(LazyModel):
    """A part S3 already holds."""

    number: int
    size: int
    etag: str


class MultipartUpload(LazyModel):
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


class MultipartResult(LazyModel):
    """The outcome of completing or aborting an upload."""

    sha256: str
    status: Literal["uploaded", "aborted"]
