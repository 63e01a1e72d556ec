"""What the API does, without HTTP: plan uploads and list a user's files.

Every method takes the verified `Principal`; the user part of every key and ledger entry
comes from it and never from the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from mobile_backup.api._auth import Principal
from mobile_backup.api._models import (
    CHECKSUM_HEADER,
    FilesPage,
    FileView,
    PresignedUpload,
    UploadFile,
    UploadRequest,
    UploadResponse,
    UploadResult,
)
from mobile_backup.core import FileStatus, Ledger, ServiceError, hex_to_b64, object_key

logger = logging.getLogger(__name__)

_ALREADY_BACKED_UP = frozenset({FileStatus.UPLOADED, FileStatus.DOWNLOADED})


class Presigner(Protocol):
    """The one S3 client method the service needs (a boto3 S3 client satisfies it)."""

    def generate_presigned_url(
        self,
        ClientMethod: str,
        Params: Mapping[str, Any] = ...,
        ExpiresIn: int = ...,
        HttpMethod: str = ...,
    ) -> str: ...


class UploadService:
    """Turns an upload request into `duplicate` answers and presigned single-part PUTs.

    The PUT signs `Content-Length`, `Content-Type` and `x-amz-checksum-sha256`, so S3
    accepts exactly the declared bytes under `media/{sub}/{sha256}` and nothing else.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        presigner: Presigner,
        bucket: str,
        clock: Callable[[], datetime],
        expiry_seconds: int,
    ) -> None:
        self._ledger = ledger
        self._presigner = presigner
        self._bucket = bucket
        self._clock = clock
        self._expiry = expiry_seconds

    def plan(self, principal: Principal, request: UploadRequest) -> UploadResponse:
        """Reserve each file in the ledger and say, per entry and in order, what to do."""
        now = self._clock()
        answers: dict[str, UploadResult] = {}
        for item in request.files:
            # A repeated digest gets the first entry's answer: one reservation, one URL.
            if item.sha256 not in answers:
                answers[item.sha256] = self._plan_one(principal, item, now)
        return UploadResponse(results=[answers[item.sha256] for item in request.files])

    def list_files(
        self, principal: Principal, *, limit: int, cursor: str | None = None
    ) -> FilesPage:
        """One page of the caller's own files."""
        records, next_cursor = self._ledger.list_files(principal.sub, limit=limit, cursor=cursor)
        return FilesPage(files=[FileView.from_record(r) for r in records], next_cursor=next_cursor)

    def _plan_one(self, principal: Principal, item: UploadFile, now: datetime) -> UploadResult:
        record = self._ledger.reserve(
            principal.sub,
            sha256=item.sha256,
            filename=item.filename,
            size=item.size,
            content_type=item.content_type,
            taken_at=item.taken_at,
            device=item.device,
            now=now,
        )
        if record.status in _ALREADY_BACKED_UP:
            return UploadResult(sha256=item.sha256, status="duplicate")
        return UploadResult(
            sha256=item.sha256, status="upload", upload=self._presign(principal, item, now)
        )

    def _presign(self, principal: Principal, item: UploadFile, now: datetime) -> PresignedUpload:
        checksum = hex_to_b64(item.sha256)
        try:
            url = self._presigner.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": object_key(principal.sub, item.sha256),
                    "ContentLength": item.size,
                    "ContentType": item.content_type,
                    "ChecksumSHA256": checksum,
                },
                ExpiresIn=self._expiry,
                HttpMethod="PUT",
            )
        except Exception as exc:  # botocore raises a wide family here (credentials, params)
            raise ServiceError(f"could not presign the upload: {exc}") from exc
        return PresignedUpload(
            url=url,
            headers={
                "Content-Length": str(item.size),
                "Content-Type": item.content_type,
                CHECKSUM_HEADER: checksum,
            },
            expires_at=now + timedelta(seconds=self._expiry),
        )
