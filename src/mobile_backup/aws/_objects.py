"""The media bucket's gateway: the only code that calls S3 for it.

The phone's side (presigned single PUTs, multipart uploads whose parts and whole file S3
checks against declared checksums), the PC's side (streaming and ranged GETs, the `state`
tag, deletes) and the one question S3 makes hard: is an object gone? S3 says 404 only to
a caller allowed to list the bucket and 403 to anyone else, so a 403 is settled by listing
the key itself (`ListObjectsV2` with the key as prefix, which the templates grant on the
`media/` prefix only).

Every failure leaves here as one of the boundary's errors (`_boundary.py`): callers tell
"not found" (`AwsNotFoundError`) and S3's refusals (`AwsRefusedError` with its `aws_code`)
from a service that did not answer (`AwsServiceError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from mobile_backup.aws._boundary import (
    AccessDeniedError,
    AwsFailure,
    AwsNotFoundError,
    aws_call,
    boto_errors,
    translate_error,
)
from mobile_backup.core import ObjectState, state_tagging

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, slots=True)
class MultipartUploadInfo:
    """One multipart upload in progress under a key."""

    upload_id: str
    initiated: datetime | None
    checksum_algorithm: str | None


@dataclass(frozen=True, slots=True)
class HeldPart:
    """A part S3 holds for a multipart upload."""

    number: int
    size: int
    etag: str
    checksum: str | None
    """The part's checksum in the upload's algorithm, as S3 recorded it (None if it has none)."""


@dataclass(frozen=True, slots=True)
class ObjectStream:
    """An object's bytes as S3 streams them (the whole object, or one range)."""

    body: Any
    """Has `read(n)` and `close()`; a failure mid-read is translated by `read_chunk`."""
    total_size: int | None
    """The whole object's size (from Content-Range for a ranged GET)."""


class Bucket:
    """One S3 bucket (the media bucket) through one S3 client."""

    def __init__(self, s3: S3Client, name: str) -> None:
        self.s3 = s3
        self.name = name

    # Uploads, presigned for the phone --------------------------------------------------
    def presign_put(
        self, key: str, *, length: int, content_type: str, sha256_b64: str, expires_s: int
    ) -> str:
        """A PUT URL that signs the length, the type and the SHA-256: S3 refuses other bytes."""
        with aws_call("presign the upload"):
            return str(
                self.s3.generate_presigned_url(
                    "put_object",
                    Params={
                        "Bucket": self.name,
                        "Key": key,
                        "ContentLength": length,
                        "ContentType": content_type,
                        "ChecksumSHA256": sha256_b64,
                    },
                    ExpiresIn=expires_s,
                    HttpMethod="PUT",
                )
            )

    def presign_get(self, key: str, *, expires_s: int) -> str:
        """A GET URL for one object, good for `expires_s` seconds."""
        with aws_call("presign a download"):
            return str(
                self.s3.generate_presigned_url(
                    "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_s
                )
            )

    def presign_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        *,
        length: int,
        algorithm: str,
        checksum: str,
        expires_s: int,
    ) -> str:
        """A part's PUT URL signing its length and checksum (`algorithm`: CRC32, ...)."""
        with aws_call("presign a part"):
            return str(
                self.s3.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self.name,
                        "Key": key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                        "ContentLength": length,
                        f"Checksum{algorithm}": checksum,
                    },
                    ExpiresIn=expires_s,
                    HttpMethod="PUT",
                )
            )

    def start_multipart(self, key: str, *, content_type: str, algorithm: str) -> str:
        """A new multipart upload whose whole object S3 will check (`FULL_OBJECT`)."""
        with aws_call("start the upload"):
            resp = self.s3.create_multipart_upload(
                Bucket=self.name,
                Key=key,
                ContentType=content_type,
                ChecksumAlgorithm=algorithm,  # type: ignore[arg-type]
                ChecksumType="FULL_OBJECT",
            )
        return resp["UploadId"]

    def multipart_uploads(self, key: str) -> Iterator[MultipartUploadInfo]:
        """The uploads in progress under exactly `key`, newest first per page."""
        kwargs: dict[str, Any] = {"Bucket": self.name, "Prefix": key}
        while True:
            with aws_call("list uploads"):
                resp: Any = self.s3.list_multipart_uploads(**kwargs)
            uploads = [u for u in resp.get("Uploads", []) if u.get("Key") == key]
            uploads.sort(key=lambda u: u.get("Initiated") or 0, reverse=True)
            for u in uploads:
                yield MultipartUploadInfo(
                    upload_id=str(u["UploadId"]),
                    initiated=u.get("Initiated"),
                    checksum_algorithm=u.get("ChecksumAlgorithm"),
                )
            if not resp.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = resp.get("NextKeyMarker")
            kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker")

    def held_parts(self, key: str, upload_id: str, *, algorithm: str) -> list[HeldPart]:
        """The parts S3 holds, by number. AwsNotFoundError: no such upload."""
        parts: list[HeldPart] = []
        kwargs: dict[str, Any] = {"Bucket": self.name, "Key": key, "UploadId": upload_id}
        while True:
            with aws_call("list the parts"):
                resp: Any = self.s3.list_parts(**kwargs)
            parts.extend(
                HeldPart(
                    number=int(p["PartNumber"]),
                    size=int(p["Size"]),
                    etag=str(p["ETag"]),
                    checksum=p.get(f"Checksum{algorithm}"),
                )
                for p in resp.get("Parts", [])
            )
            if not resp.get("IsTruncated"):
                return sorted(parts, key=lambda p: p.number)
            kwargs["PartNumberMarker"] = resp.get("NextPartNumberMarker")

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str, str]],
        *,
        algorithm: str,
        whole: str,
    ) -> None:
        """Assemble the parts (number, etag, checksum) into the object whose whole checksum
        is `whole`. AwsRefusedError (`aws_code` BadDigest, InvalidPart, ...): S3 refused;
        AwsNotFoundError: no such upload (completed or aborted meanwhile)."""
        with aws_call("complete the upload"):
            self.s3.complete_multipart_upload(
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                ChecksumType="FULL_OBJECT",
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": n, "ETag": etag, f"Checksum{algorithm}": checksum}  # type: ignore[misc]
                        for n, etag, checksum in parts
                    ]
                },
                **{f"Checksum{algorithm}": whole},  # type: ignore[arg-type]
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort an upload and free its parts (one already gone is the same outcome)."""
        try:
            with aws_call("abort the upload"):
                self.s3.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except AwsNotFoundError:
            return

    # The PC's side ----------------------------------------------------------------------
    def size_of(self, key: str) -> int | None:
        """The object's size, or None if it is not there."""
        try:
            resp = self.s3.head_object(Bucket=self.name, Key=key)
        except boto_errors() as exc:
            if self._missing(key, exc):
                return None
            raise translate_error(exc, "look up the object") from exc
        return int(resp["ContentLength"])

    def stream(
        self, key: str, *, first: int | None = None, last: int | None = None
    ) -> ObjectStream:
        """The object's bytes (or bytes `first`..`last`). AwsNotFoundError: it is not there;
        AwsRefusedError with `aws_code` InvalidRange: it is shorter than the range."""
        total: int | None
        try:
            if first is None:
                resp: Any = self.s3.get_object(Bucket=self.name, Key=key)
                total = int(resp.get("ContentLength", 0))
            else:
                resp = self.s3.get_object(Bucket=self.name, Key=key, Range=f"bytes={first}-{last}")
                total = _total_size(str(resp.get("ContentRange", "")))
        except boto_errors() as exc:
            if self._missing(key, exc):
                raise AwsNotFoundError(f"{key} is not in the bucket", aws_code="NoSuchKey") from exc
            raise translate_error(exc, f"get {key}") from exc
        return ObjectStream(body=resp["Body"], total_size=total)

    @staticmethod
    def read_chunk(body: Any, size: int) -> bytes:
        """`body.read(size)`, a broken connection as AwsServiceError (or the OSError)."""
        with aws_call("read the object"):
            return cast("bytes", body.read(size))  # no copy: 1 MiB chunks, every byte

    def tag(self, key: str, state: ObjectState) -> None:
        """Set the object's `state` tag (the lifecycle rule for that state expires it)."""
        with aws_call(f"tag {key} as {state}"):
            self.s3.put_object_tagging(Bucket=self.name, Key=key, Tagging=state_tagging(state))

    def delete(self, key: str) -> None:
        with aws_call(f"delete {key}"):
            self.s3.delete_object(Bucket=self.name, Key=key)

    def _missing(self, key: str, exc: BaseException) -> bool:
        """Whether `exc` (from a GET or HEAD of `key`) means the object does not exist."""
        error = translate_error(exc, "read the object")  # type: ignore[arg-type]
        if isinstance(error, AwsNotFoundError):
            return True
        if not isinstance(error, AccessDeniedError):
            return False
        try:
            with aws_call("list the key"):
                listed = self.s3.list_objects_v2(Bucket=self.name, Prefix=key, MaxKeys=1)
        except AwsFailure:
            return False  # cannot tell: not "missing", so nothing is given up on
        return not any(item.get("Key") == key for item in listed.get("Contents", []))


def _total_size(content_range: str) -> int | None:
    """The whole size from `bytes 0-99/1234`."""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None
