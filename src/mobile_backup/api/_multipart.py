"""Multipart uploads: start (or resume), presign parts, complete after checking, abort.

Every operation takes the verified `Principal`; the key is always `media/{sub}/{sha256}` with
the user part from the token. An upload id from a request is never trusted on its own: it
must name an upload S3 lists under that very key, so one user cannot sign, complete or abort
another user's upload even when they learn its id. The server keeps no state of its own: the
ledger holds the declared file (with its full-object CRC and which CRC it is) and S3 holds
the upload and its parts.

Part URLs sign `Content-Length` and the part's CRC (CRC32 from this version's clients,
CRC64NVME from older ones), so S3 stores exactly the bytes the client hashed for that part,
or nothing; completion declares the whole file's CRC (`FULL_OBJECT`), so S3 refuses parts
that do not make the declared file. An upload in S3 is resumed only with the algorithm it was
started with: a client that now sends CRC32 starts afresh rather than mixing the two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mobile_backup.api._auth import Principal
from mobile_backup.api._members import MemberFolders
from mobile_backup.api.exceptions import (
    FileMismatchError,
    IncompleteUploadError,
    PartMismatchError,
    UploadNotFoundError,
)
from mobile_backup.aws import AwsNotFoundError, AwsRefusedError, Bucket, HeldPart
from mobile_backup.core import (
    FileRecord,
    FileStatus,
    InvalidInputError,
    object_key,
    part_count,
    part_length,
)
from mobile_backup.core.wire import (
    ChecksumAlgorithm,
    CompletedPart,
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartPartsRequest,
    MultipartResult,
    MultipartStart,
    MultipartUpload,
    PartChecksum,
    PresignedPart,
    fits_algorithm,
    part_checksum_header,
)
from mobile_backup.ledger import Ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "IncompleteUploadError",
    "MultipartService",
    "PartMismatchError",
    "UploadNotFoundError",
]

logger = logging.getLogger(__name__)

_ALREADY_BACKED_UP = frozenset({FileStatus.UPLOADED, FileStatus.DOWNLOADED})
_MISSING_SHOWN = 10
_REFUSED_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class MultipartService:
    """The multipart half of the upload API, stateless between requests."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        s3: S3Client,
        bucket: str,
        clock: Callable[[], datetime],
        expiry_seconds: int,
        members: MemberFolders | None = None,
    ) -> None:
        self._members = members
        self._ledger = ledger
        self._objects = Bucket(s3, bucket)
        self._clock = clock
        self._expiry = expiry_seconds

    # Operations ------------------------------------------------------------------------
    def start(self, principal: Principal, request: MultipartStart) -> MultipartUpload:
        """Reserve the file; answer `duplicate`, or an upload (resumed if one exists)."""
        now = self._clock()
        algorithm = request.checksum_algorithm
        record = self._ledger.reserve(
            principal.sub,
            request.meta(),
            now=now,
            full_checksum=(algorithm, request.file_checksum),
            owner_name=self._members.folder(principal) if self._members else None,
        )
        if record.status in _ALREADY_BACKED_UP:
            return MultipartUpload(sha256=request.sha256, status="duplicate")
        key = object_key(principal.sub, request.sha256)
        part_size = request.effective_part_size
        # A client that died between our answer and noting the upload id asks again: give it
        # the upload it already started rather than a second one with every part to resend.
        reused = self._resumable(key, request.size, part_size, algorithm)
        if reused is not None:
            upload_id, completed = reused
            logger.info("resuming multipart upload of %s (%d parts held)", key, len(completed))
        else:
            upload_id = self._objects.start_multipart(
                key, content_type=request.content_type, algorithm=algorithm
            )
            completed = []
        return MultipartUpload(
            sha256=request.sha256,
            status="upload",
            upload_id=upload_id,
            part_size=part_size,
            part_count=part_count(request.size, part_size),
            parts=self._presign(key, upload_id, request.size, part_size, request.parts, record),
            completed=completed,
        )

    def sign_parts(self, principal: Principal, request: MultipartPartsRequest) -> MultipartUpload:
        """Presign parts of the caller's upload, e.g. again after their URLs expired."""
        record = self._declared(principal, request.sha256)
        if record.status in _ALREADY_BACKED_UP:
            return MultipartUpload(sha256=request.sha256, status="duplicate")
        key = object_key(principal.sub, request.sha256)
        count = part_count(record.size, request.part_size)
        if any(p.number > count for p in request.parts):
            raise InvalidInputError(
                f"part numbers must be 1 to {count} for this file and part size",
                code="invalid_part_number",
            )
        self._require_upload(key, request.upload_id)
        completed = None
        if request.include_completed:
            completed = [
                CompletedPart(number=p.number, size=p.size, etag=p.etag)
                for p in self._held(key, request.upload_id, record)
            ]
        return MultipartUpload(
            sha256=request.sha256,
            status="upload",
            upload_id=request.upload_id,
            part_size=request.part_size,
            part_count=count,
            parts=self._presign(
                key, request.upload_id, record.size, request.part_size, request.parts, record
            ),
            completed=completed,
        )

    def complete(self, principal: Principal, request: MultipartCompleteRequest) -> MultipartResult:
        """Check S3 holds exactly the declared parts, then assemble the object."""
        record = self._declared(principal, request.sha256)
        done = MultipartResult(sha256=request.sha256, status="uploaded")
        if record.status in _ALREADY_BACKED_UP:
            return done
        key = object_key(principal.sub, request.sha256)
        if not self._upload_exists(key, request.upload_id):
            # Completed by an earlier call whose answer was lost: the object is there.
            if self._objects.size_of(key) == record.size:
                return done
            raise UploadNotFoundError(f"no upload {request.upload_id!r} for this file")
        algorithm = _algorithm_of(record)
        count = part_count(record.size, request.part_size)
        if len(request.checksums) != count:
            raise InvalidInputError(
                f"the file has {count} part(s) of {request.part_size} bytes; "
                f"{len(request.checksums)} checksum(s) were sent",
                code="invalid_part_count",
            )
        if not all(fits_algorithm(c, algorithm) for c in request.checksums):
            raise InvalidInputError(
                f"this upload's parts carry {algorithm} checksums", code="invalid_checksum"
            )
        parts = self._checked_parts(key, request, record, count)
        try:
            self._objects.complete_multipart(
                key,
                request.upload_id,
                [(p.number, p.etag, request.checksums[p.number - 1]) for p in parts],
                algorithm=algorithm,
                whole=str(record.full_checksum),
            )
        except AwsNotFoundError:
            if self._objects.size_of(key) == record.size:
                return done  # a concurrent complete won the race
            raise
        except AwsRefusedError as exc:
            if exc.aws_code == "BadDigest":
                raise FileMismatchError(
                    f"the parts do not make the file that was declared (its {algorithm} "
                    "differs); nothing was stored: hash the file again and start over"
                ) from exc
            if exc.aws_code in _REFUSED_PARTS:
                raise PartMismatchError(
                    f"S3 refused to assemble the parts ({exc.aws_code})"
                ) from exc
            raise
        logger.info("completed multipart upload of %s (%d parts)", key, count)
        return done

    def abort(self, principal: Principal, request: MultipartAbortRequest) -> MultipartResult:
        """Abort the caller's upload and free its parts (the ledger entry stays pending)."""
        key = object_key(principal.sub, request.sha256)
        self._require_upload(key, request.upload_id)
        self._objects.abort_multipart(key, request.upload_id)
        return MultipartResult(sha256=request.sha256, status="aborted")

    # S3 and ledger helpers ---------------------------------------------------------------
    def _declared(self, principal: Principal, sha256: str) -> FileRecord:
        record = self._ledger.get(principal.sub, sha256)
        if record is None:
            raise UploadNotFoundError(f"no upload was started for {sha256}")
        return record

    def _upload_exists(self, key: str, upload_id: str) -> bool:
        # Listing by the caller's own key is what binds an upload id to a user: S3 itself
        # ties ids to keys, but not every S3 implementation checks that on each call.
        return any(u.upload_id == upload_id for u in self._objects.multipart_uploads(key))

    def _require_upload(self, key: str, upload_id: str) -> None:
        if not self._upload_exists(key, upload_id):
            raise UploadNotFoundError(f"no upload {upload_id!r} for this file")

    def _held(self, key: str, upload_id: str, record: FileRecord) -> list[HeldPart]:
        try:
            return self._objects.held_parts(key, upload_id, algorithm=_algorithm_of(record))
        except AwsNotFoundError as exc:
            raise UploadNotFoundError(f"no upload {upload_id!r} for this file") from exc

    def _resumable(
        self, key: str, size: int, part_size: int, algorithm: ChecksumAlgorithm
    ) -> tuple[str, list[CompletedPart]] | None:
        """The newest upload under `key` of this algorithm whose parts all fit this file and
        part size."""
        for upload in self._objects.multipart_uploads(key):
            if (upload.checksum_algorithm or "CRC64NVME") != algorithm:
                continue  # started with another CRC (an older client): not completable here
            try:
                parts = self._objects.held_parts(key, upload.upload_id, algorithm=algorithm)
            except AwsNotFoundError:
                continue
            count = part_count(size, part_size)
            if all(
                p.number <= count and p.size == part_length(size, part_size, p.number)
                for p in parts
            ):
                return upload.upload_id, [
                    CompletedPart(number=p.number, size=p.size, etag=p.etag) for p in parts
                ]
            return None  # the newest one was started with another plan: start afresh
        return None

    def _checked_parts(
        self, key: str, request: MultipartCompleteRequest, record: FileRecord, count: int
    ) -> list[HeldPart]:
        parts = self._held(key, request.upload_id, record)
        have = {p.number for p in parts}
        missing = [n for n in range(1, count + 1) if n not in have]
        if missing:
            shown = ", ".join(str(n) for n in missing[:_MISSING_SHOWN])
            more = (
                f" and {len(missing) - _MISSING_SHOWN} more"
                if len(missing) > _MISSING_SHOWN
                else ""
            )
            raise IncompleteUploadError(f"S3 does not hold part(s) {shown}{more} yet")
        extra = sorted(have - set(range(1, count + 1)))
        if extra:
            raise PartMismatchError(f"S3 holds part(s) beyond the file's {count}: {extra[:10]}")
        total = 0
        for part in parts:
            want = part_length(record.size, request.part_size, part.number)
            if part.size != want:
                raise PartMismatchError(
                    f"part {part.number} is {part.size} bytes; it must be {want}"
                )
            if part.checksum and part.checksum != request.checksums[part.number - 1]:
                raise PartMismatchError(f"part {part.number} does not have the declared checksum")
            total += part.size
        if total != record.size:  # cannot happen when every part has its exact length
            raise PartMismatchError(f"the parts hold {total} bytes; the file has {record.size}")
        return parts

    def _presign(
        self,
        key: str,
        upload_id: str,
        size: int,
        part_size: int,
        parts: list[PartChecksum],
        record: FileRecord,
    ) -> list[PresignedPart]:
        algorithm = _algorithm_of(record)
        if not all(fits_algorithm(p.checksum, algorithm) for p in parts):
            raise InvalidInputError(
                f"this upload's parts carry {algorithm} checksums", code="invalid_checksum"
            )
        expires_at = self._clock() + timedelta(seconds=self._expiry)
        header = part_checksum_header(algorithm)
        out = []
        for part in parts:
            length = part_length(size, part_size, part.number)
            url = self._objects.presign_part(
                key,
                upload_id,
                part.number,
                length=length,
                algorithm=algorithm,
                checksum=part.checksum,
                expires_s=self._expiry,
            )
            out.append(
                PresignedPart(
                    number=part.number,
                    url=url,
                    headers={"Content-Length": str(length), header: part.checksum},
                    expires_at=expires_at,
                )
            )
        return out


def _algorithm_of(record: FileRecord) -> ChecksumAlgorithm:
    """The CRC an entry's multipart upload carries (what older clients sent when unknown)."""
    if record.checksum_algorithm == "CRC32":
        return "CRC32"
    if record.checksum_algorithm not in (None, "CRC64NVME"):
        raise InvalidInputError(
            "this upload was started with a checksum this version does not know; start it again",
            code="file_checksum_missing",
        )
    if record.full_checksum is None:
        raise InvalidInputError(
            "this upload was started without the file's checksum; start it again",
            code="file_checksum_missing",
        )
    return "CRC64NVME"
