"""Multipart uploads: start (or resume), presign parts, complete after checking, abort.

Every operation takes the verified `Principal`; the key is always `media/{sub}/{sha256}` with
the user part from the token. An upload id from a request is never trusted on its own: it
must name an upload S3 lists under that very key, so one user cannot sign, complete or abort
another user's upload even when they learn its id. The server keeps no state of its own: the
ledger holds the declared file and S3 holds the upload and its parts.

Part URLs sign `Content-Length` and `x-amz-checksum-sha256`, so S3 stores exactly the bytes
the client hashed for that part, or nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mobile_backup.api._auth import Principal
from mobile_backup.api._members import MemberFolders
from mobile_backup.api.exceptions import (
    FileMismatchError,
    IncompleteUploadError,
    PartMismatchError,
    UploadNotFoundError,
)
from mobile_backup.core import (
    FileRecord,
    FileStatus,
    InvalidInputError,
    Ledger,
    ServiceError,
    boto_errors,
    error_code,
    object_key,
    object_missing,
    part_count,
    part_length,
)
from mobile_backup.core.wire import (
    PART_CHECKSUM_HEADER,
    CompletedPart,
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartPartsRequest,
    MultipartResult,
    MultipartStart,
    MultipartUpload,
    PartChecksum,
    PresignedPart,
)

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
        self._s3 = s3
        self._bucket = bucket
        self._clock = clock
        self._expiry = expiry_seconds

    # Operations ------------------------------------------------------------------------
    def start(self, principal: Principal, request: MultipartStart) -> MultipartUpload:
        """Reserve the file; answer `duplicate`, or an upload (resumed if one exists)."""
        now = self._clock()
        record = self._ledger.reserve(
            principal.sub,
            request.meta(),
            now=now,
            crc64nvme=request.crc64nvme,
            owner_name=self._members.folder(principal) if self._members else None,
        )
        if record.status in _ALREADY_BACKED_UP:
            return MultipartUpload(sha256=request.sha256, status="duplicate")
        key = object_key(principal.sub, request.sha256)
        part_size = request.effective_part_size
        # A client that died between our answer and noting the upload id asks again: give it
        # the upload it already started rather than a second one with every part to resend.
        reused = self._resumable(key, request.size, part_size)
        if reused is not None:
            upload_id, completed = reused
            logger.info("resuming multipart upload of %s (%d parts held)", key, len(completed))
        else:
            upload_id, completed = self._create(key, request.content_type), []
        return MultipartUpload(
            sha256=request.sha256,
            status="upload",
            upload_id=upload_id,
            part_size=part_size,
            part_count=part_count(request.size, part_size),
            parts=self._presign(key, upload_id, request.size, part_size, request.parts, now),
            completed=completed,
        )

    def sign_parts(self, principal: Principal, request: MultipartPartsRequest) -> MultipartUpload:
        """Presign parts of the caller's upload, e.g. again after their URLs expired."""
        now = self._clock()
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
                CompletedPart(number=p["PartNumber"], size=p["Size"], etag=p["ETag"])
                for p in self._list_parts(key, request.upload_id)
            ]
        return MultipartUpload(
            sha256=request.sha256,
            status="upload",
            upload_id=request.upload_id,
            part_size=request.part_size,
            part_count=count,
            parts=self._presign(
                key, request.upload_id, record.size, request.part_size, request.parts, now
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
            if self._object_size(key) == record.size:
                return done
            raise UploadNotFoundError(f"no upload {request.upload_id!r} for this file")
        count = part_count(record.size, request.part_size)
        if len(request.checksums) != count:
            raise InvalidInputError(
                f"the file has {count} part(s) of {request.part_size} bytes; "
                f"{len(request.checksums)} checksum(s) were sent",
                code="invalid_part_count",
            )
        if record.crc64nvme is None:
            raise InvalidInputError(
                "this upload was started without the file's checksum; start it again",
                code="file_checksum_missing",
            )
        parts = self._checked_parts(key, request, record.size, count)
        try:
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=request.upload_id,
                # S3 assembles the object only if it is exactly the file declared at start.
                ChecksumCRC64NVME=record.crc64nvme,
                ChecksumType="FULL_OBJECT",
                MultipartUpload={
                    "Parts": [
                        {
                            "PartNumber": p["PartNumber"],
                            "ETag": p["ETag"],
                            "ChecksumCRC64NVME": request.checksums[p["PartNumber"] - 1],
                        }
                        for p in parts
                    ]
                },
            )
        except boto_errors() as exc:
            code = error_code(exc)
            if code == "NoSuchUpload" and self._object_size(key) == record.size:
                return done  # a concurrent complete won the race
            if code == "BadDigest":
                raise FileMismatchError(
                    "the parts do not make the file that was declared (its CRC64NVME differs); "
                    "nothing was stored: hash the file again and start over"
                ) from exc
            if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
                raise PartMismatchError(f"S3 refused to assemble the parts ({code})") from exc
            raise _service_error("complete the upload", exc) from exc
        logger.info("completed multipart upload of %s (%d parts)", key, count)
        return done

    def abort(self, principal: Principal, request: MultipartAbortRequest) -> MultipartResult:
        """Abort the caller's upload and free its parts (the ledger entry stays pending)."""
        key = object_key(principal.sub, request.sha256)
        self._require_upload(key, request.upload_id)
        try:
            self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=request.upload_id
            )
        except boto_errors() as exc:
            if error_code(exc) != "NoSuchUpload":  # aborted concurrently: the same outcome
                raise _service_error("abort the upload", exc) from exc
        return MultipartResult(sha256=request.sha256, status="aborted")

    # S3 and ledger helpers ---------------------------------------------------------------
    def _declared(self, principal: Principal, sha256: str) -> FileRecord:
        record = self._ledger.get(principal.sub, sha256)
        if record is None:
            raise UploadNotFoundError(f"no upload was started for {sha256}")
        return record

    def _create(self, key: str, content_type: str) -> str:
        try:
            resp = self._s3.create_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                ContentType=content_type,
                ChecksumAlgorithm="CRC64NVME",
                ChecksumType="FULL_OBJECT",
            )
        except boto_errors() as exc:
            raise _service_error("start the upload", exc) from exc
        return resp["UploadId"]

    def _uploads(self, key: str) -> Iterator[dict[str, Any]]:
        """The multipart uploads S3 lists under exactly `key`, newest first per page."""
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": key}
        while True:
            try:
                resp: Any = self._s3.list_multipart_uploads(**kwargs)
            except boto_errors() as exc:
                raise _service_error("list uploads", exc) from exc
            uploads = [u for u in resp.get("Uploads", []) if u.get("Key") == key]
            uploads.sort(key=lambda u: u.get("Initiated") or 0, reverse=True)
            yield from uploads
            if not resp.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = resp.get("NextKeyMarker")
            kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker")

    def _upload_exists(self, key: str, upload_id: str) -> bool:
        # Listing by the caller's own key is what binds an upload id to a user: S3 itself
        # ties ids to keys, but not every S3 implementation checks that on each call.
        return any(u.get("UploadId") == upload_id for u in self._uploads(key))

    def _require_upload(self, key: str, upload_id: str) -> None:
        if not self._upload_exists(key, upload_id):
            raise UploadNotFoundError(f"no upload {upload_id!r} for this file")

    def _list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": key, "UploadId": upload_id}
        while True:
            try:
                resp: Any = self._s3.list_parts(**kwargs)
            except boto_errors() as exc:
                if error_code(exc) == "NoSuchUpload":
                    raise UploadNotFoundError(f"no upload {upload_id!r} for this file") from exc
                raise _service_error("list the parts", exc) from exc
            parts.extend(resp.get("Parts", []))
            if not resp.get("IsTruncated"):
                return sorted(parts, key=lambda p: int(p["PartNumber"]))
            kwargs["PartNumberMarker"] = resp.get("NextPartNumberMarker")

    def _resumable(
        self, key: str, size: int, part_size: int
    ) -> tuple[str, list[CompletedPart]] | None:
        """The newest upload under `key` whose parts all fit this file and part size."""
        for upload in self._uploads(key):
            upload_id = str(upload["UploadId"])
            if upload.get("ChecksumAlgorithm", "CRC64NVME") != "CRC64NVME":
                continue  # started by an older client with per-part SHA-256: not completable

            try:
                parts = self._list_parts(key, upload_id)
            except UploadNotFoundError:
                continue
            count = part_count(size, part_size)
            if all(
                int(p["PartNumber"]) <= count
                and int(p["Size"]) == part_length(size, part_size, int(p["PartNumber"]))
                for p in parts
            ):
                return upload_id, [
                    CompletedPart(number=p["PartNumber"], size=p["Size"], etag=p["ETag"])
                    for p in parts
                ]
            return None  # the newest one was started with another plan: start afresh
        return None

    def _checked_parts(
        self, key: str, request: MultipartCompleteRequest, size: int, count: int
    ) -> list[dict[str, Any]]:
        parts = self._list_parts(key, request.upload_id)
        have = {int(p["PartNumber"]) for p in parts}
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
            number, got = int(part["PartNumber"]), int(part["Size"])
            want = part_length(size, request.part_size, number)
            if got != want:
                raise PartMismatchError(f"part {number} is {got} bytes; it must be {want}")
            held = part.get("ChecksumCRC64NVME")
            if held and held != request.checksums[number - 1]:
                raise PartMismatchError(f"part {number} does not have the declared checksum")
            total += got
        if total != size:  # cannot happen when every part has its exact length; belt and braces
            raise PartMismatchError(f"the parts hold {total} bytes; the file has {size}")
        return parts

    def _object_size(self, key: str) -> int | None:
        try:
            resp = self._s3.head_object(Bucket=self._bucket, Key=key)
        except boto_errors() as exc:
            if object_missing(self._s3, self._bucket, key, exc):
                return None
            raise _service_error("look up the object", exc) from exc
        return int(resp["ContentLength"])

    def _presign(
        self,
        key: str,
        upload_id: str,
        size: int,
        part_size: int,
        parts: list[PartChecksum],
        now: datetime,
    ) -> list[PresignedPart]:
        expires_at = now + timedelta(seconds=self._expiry)
        out = []
        for part in parts:
            length = part_length(size, part_size, part.number)
            try:
                url = self._s3.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self._bucket,
                        "Key": key,
                        "UploadId": upload_id,
                        "PartNumber": part.number,
                        "ContentLength": length,
                        "ChecksumCRC64NVME": part.checksum_crc64nvme,
                    },
                    ExpiresIn=self._expiry,
                    HttpMethod="PUT",
                )
            except boto_errors() as exc:
                raise _service_error("presign a part", exc) from exc
            out.append(
                PresignedPart(
                    number=part.number,
                    url=url,
                    headers={
                        "Content-Length": str(length),
                        PART_CHECKSUM_HEADER: part.checksum_crc64nvme,
                    },
                    expires_at=expires_at,
                )
            )
        return out


def _service_error(action: str, exc: Exception) -> ServiceError:
    return ServiceError(f"could not {action}: {exc}")
