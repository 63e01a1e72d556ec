"""The upload routes: where to upload a file, and multipart uploads from start to end.

Apart from `_routes.py` so that a cold start whose first request is not an upload (a
gallery's GET) neither imports the multipart service nor defines the multipart models
(issue 34, B6); `create_app` registers them when a path under /v1/uploads is first asked.
"""

from __future__ import annotations

from mobile_backup.api._multipart import MultipartService
from mobile_backup.api._routes import Routes, current_principal
from mobile_backup.api._service import UploadService
from mobile_backup.core.wire import (
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartPartsRequest,
    MultipartResult,
    MultipartStart,
    MultipartUpload,
    UploadRequest,
    UploadResponse,
    openapi_responses,
)


def upload_routes(route: Routes, service: UploadService, multipart: MultipartService) -> None:
    app = route.app

    @route(
        "/v1/uploads",
        "POST",
        summary="Ask where to upload files (or learn they are backed up already)",
        responses=openapi_responses(UploadResponse, 400, 401, 415, 422, 503),
    )
    def create_uploads(body: UploadRequest) -> UploadResponse:
        return service.plan(current_principal(app), body)

    # Multipart routes name the upload in the body, not the path: S3 upload ids are opaque
    # (any printable characters), and the key they belong to is derived from the token and
    # the body's sha256 anyway. Static paths also keep the 405 answer exact.
    @route(
        "/v1/uploads/multipart",
        "POST",
        summary="Start (or resume) a multipart upload and presign its first parts",
        responses=openapi_responses(MultipartUpload, 400, 401, 415, 422, 503),
    )
    def start_multipart(body: MultipartStart) -> MultipartUpload:
        return multipart.start(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/parts",
        "POST",
        summary="Presign parts of a multipart upload (again), optionally listing those held",
        responses=openapi_responses(MultipartUpload, 400, 401, 404, 415, 422, 503),
    )
    def sign_parts(body: MultipartPartsRequest) -> MultipartUpload:
        return multipart.sign_parts(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/complete",
        "POST",
        summary="Check every part is held with its declared size, then assemble the file",
        responses=openapi_responses(MultipartResult, 400, 401, 404, 415, 422, 503),
    )
    def complete_multipart(body: MultipartCompleteRequest) -> MultipartResult:
        return multipart.complete(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/abort",
        "POST",
        summary="Abort a multipart upload and free its parts",
        responses=openapi_responses(MultipartResult, 400, 401, 404, 415, 422, 503),
    )
    def abort_multipart(body: MultipartAbortRequest) -> MultipartResult:
        return multipart.abort(current_principal(app), body)
