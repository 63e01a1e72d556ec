"""A typed client for the Mobile Backup HTTP API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from mobile_backup.client.exceptions import ApiError, TransportError
from mobile_backup.core import FileMeta, InvalidInputError, MobileBackupError, hex_to_b64
from mobile_backup.core.wire import (
    MAX_FILES_PER_REQUEST,
    MULTIPART_CHECKSUM,
    CheckResponse,
    ChecksumAlgorithm,
    CompletedPart,
    FilesPage,
    FilesSummary,
    FileView,
    LookupRequest,
    LookupResponse,
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartPartsRequest,
    MultipartResult,
    MultipartStart,
    MultipartUpload,
    PresignedPart,
    PresignedUpload,
    StatusesPage,
    ThumbUploadRequest,
    ThumbUploads,
    ThumbUrlRequest,
    ThumbUrls,
    UploadRequest,
    UploadResponse,
    UploadResult,
)

M = TypeVar("M", bound=BaseModel)

MAX_BATCH = MAX_FILES_PER_REQUEST
# The API's answers, in the one wire contract (`core.wire`); the engine uses them as they are.
UploadTicket = UploadResult
MultipartTicket = MultipartUpload
PartUrl = PresignedPart
HeldPart = CompletedPart


@dataclass(frozen=True, slots=True)
class Lookup:
    """The ledger's word on one content: backed up in the cloud, and verified on a PC."""

    backed_up: bool
    on_pc: bool
    deletable: bool = False
    """Safe to delete from the phone (`core.may_free`)."""
    reason: str = ""


class ApiClient:
    """Calls the HTTP API with the caller's token; a 401 triggers one token refresh."""

    def __init__(
        self,
        *,
        base_url: str,
        token: Callable[..., str],
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self._base}{path}"
        for attempt in range(2):
            token = self._token(force_refresh=attempt > 0)
            try:
                resp = self._http.request(
                    method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
                )
            except httpx.ConnectError as exc:  # nothing answers there: say the likely cause
                raise TransportError(
                    f"cannot reach the API at {self._base} ({_plain(exc)}): {_hint(self._base)}"
                ) from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"cannot reach the API at {self._base}: {exc}") from exc
            if resp.status_code == 401 and attempt == 0:
                continue
            if resp.is_success:
                return resp.json()
            raise _api_error(resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, path: str, body: BaseModel | None, answer: type[M]) -> M:
        """One request in the wire contract: the body as the API's own model serialises it,
        the answer validated by the API's own response model."""
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body.model_dump(mode="json", exclude_none=True)
        data = self._request(method, path, **kwargs)
        try:
            return answer.model_validate(data)
        except ValidationError as exc:
            raise ApiError(
                f"the API answered {path} in an unexpected shape: {exc.errors()[0]['msg']}",
                status=200,
                code="unexpected_response",
            ) from exc

    def request_uploads(self, files: Sequence[FileMeta]) -> list[UploadResult]:
        """Presign a batch of at most 100 files."""
        if not files:
            return []
        if len(files) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} files per batch")
        body = _valid(UploadRequest, {"files": [f.fields() for f in files]})
        return self._call("POST", "/v1/uploads", body, UploadResponse).results

    def start_multipart(
        self,
        file: FileMeta,
        *,
        full_checksum: str,
        algorithm: ChecksumAlgorithm = MULTIPART_CHECKSUM,
        part_size: int | None = None,
        parts: Sequence[tuple[int, str]] = (),
    ) -> MultipartUpload:
        """Start (or resume) a multipart upload of the file whose whole CRC (base64, in
        `algorithm`) is `full_checksum`; presign `parts` ((number, base64 CRC of the part))."""
        body = _valid(
            MultipartStart,
            {
                **file.fields(),
                "checksum_algorithm": algorithm,
                "full_checksum": full_checksum,
                "part_size": part_size,
                "parts": _parts(parts),
            },
        )
        return self._call("POST", "/v1/uploads/multipart", body, MultipartUpload)

    def sign_parts(
        self,
        *,
        sha256: str,
        upload_id: str,
        part_size: int,
        parts: Sequence[tuple[int, str]] = (),
        include_completed: bool = False,
    ) -> MultipartUpload:
        """Presign (again) parts of an upload; optionally list the parts S3 holds."""
        body = _valid(
            MultipartPartsRequest,
            {
                "sha256": sha256,
                "upload_id": upload_id,
                "part_size": part_size,
                "parts": _parts(parts),
                "include_completed": include_completed,
            },
        )
        return self._call("POST", "/v1/uploads/multipart/parts", body, MultipartUpload)

    def complete_multipart(
        self, *, sha256: str, upload_id: str, part_size: int, checksums: Sequence[str]
    ) -> str:
        """Assemble the file from its parts; returns the status (`uploaded`)."""
        body = _valid(
            MultipartCompleteRequest,
            {
                "sha256": sha256,
                "upload_id": upload_id,
                "part_size": part_size,
                "checksums": list(checksums),
            },
        )
        return self._call("POST", "/v1/uploads/multipart/complete", body, MultipartResult).status

    def abort_multipart(self, *, sha256: str, upload_id: str) -> None:
        """Give up an upload and free the parts S3 holds for it."""
        body = _valid(MultipartAbortRequest, {"sha256": sha256, "upload_id": upload_id})
        self._call("POST", "/v1/uploads/multipart/abort", body, MultipartResult)

    def lookup(self, sha256s: Sequence[str]) -> dict[str, Lookup]:
        """What the ledger says of these contents (at most 100), reserving nothing."""
        return self.lookup_as_of(sha256s)[0]

    def lookup_as_of(
        self, sha256s: Sequence[str], *, verdicts: bool = True
    ) -> tuple[dict[str, Lookup], datetime | None]:
        """`lookup`, with when the API began the read (None from an API that does not say).
        Without `verdicts`, only `backed_up` and `on_pc` are answered (a dry run: the API
        reads each entry's status alone; an API older than that answers them all)."""
        if not sha256s:
            return {}, None
        if len(sha256s) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} digests per lookup")
        body = _valid(LookupRequest, {"sha256": list(sha256s)})
        path = "/v1/files/lookup" if verdicts else "/v1/files/lookup?verdicts=false"
        answer = self._call("POST", path, body, LookupResponse)
        found = {
            r.sha256: Lookup(
                backed_up=r.backed_up, on_pc=r.on_pc, deletable=r.deletable, reason=r.reason
            )
            for r in answer.results
        }
        return found, answer.as_of

    def member(self) -> str | None:
        """The signed-in member's id (the token's `sub`), to tell whose answers the journal
        keeps; read, not verified (the API verifies the token on every call)."""
        try:
            payload = self._token().split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError, UnicodeDecodeError, MobileBackupError):
            return None  # (signed out: the run's own calls say so)
        sub = claims.get("sub") if isinstance(claims, dict) else None
        return sub if isinstance(sub, str) else None

    def list_files(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        by_taken: bool = False,
        month: str | None = None,
        changed_since: datetime | None = None,
    ) -> FilesPage:
        """One page of the caller's files, as the API shows them (`FileView`): in content-id
        order, or newest capture time first (`by_taken`, from `month` YYYY-MM on), or only
        those whose entry changed after `changed_since` (oldest change first; the page's
        `as_of` says when the API read them)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if by_taken:
            params["order"] = "taken"
        if month:
            params["month"] = month
        if changed_since is not None:
            params["changed_since"] = changed_since.isoformat()
        path = "/v1/files?" + urlencode(params)
        return self._call("GET", path, None, FilesPage)

    def statuses(self, *, prefix: str = "", cursor: str | None = None) -> StatusesPage:
        """One page of the caller's contents whose SHA-256 starts with `prefix` (hex) and
        the status of each (about 1,100 a page), with when the API began the read."""
        params = {"prefix": prefix} if prefix else {}
        if cursor:
            params["cursor"] = cursor
        path = "/v1/files/statuses" + (f"?{urlencode(params)}" if params else "")
        return self._call("GET", path, None, StatusesPage)

    def summary(self, *, recent: int = 20) -> FilesSummary:
        """How many of the caller's files are in each status, and the `recent` newest."""
        return self._call("GET", f"/v1/files/summary?recent={int(recent)}", None, FilesSummary)

    def thumb_uploads(self, thumbs: Sequence[tuple[str, bytes]]) -> dict[str, PresignedUpload]:
        """Where to put thumbnails (content id, JPEG bytes) of files the member backed up;
        a file the ledger does not have for the member is left out."""
        if not thumbs:
            return {}
        body = _valid(
            ThumbUploadRequest,
            {
                "thumbs": [
                    {
                        "sha256": sha,
                        "size": len(data),
                        "checksum": hex_to_b64(hashlib.sha256(data).hexdigest()),
                    }
                    for sha, data in thumbs
                ]
            },
        )
        return self._call("POST", "/v1/thumbs", body, ThumbUploads).uploads

    def thumb_urls(self, sha256s: Sequence[str]) -> dict[str, str]:
        """Short-lived links to the member's own thumbnails of these files (at most 100)."""
        if not sha256s:
            return {}
        body = _valid(ThumbUrlRequest, {"sha256": list(sha256s)})
        return self._call("POST", "/v1/thumbs/urls", body, ThumbUrls).urls

    def request_check(self) -> CheckResponse:
        """Ask the household's PCs to check their copies now ("Check now")."""
        return self._call("POST", "/v1/pcs/check", None, CheckResponse)

    def iter_files(self, *, page_size: int = 500) -> list[FileView]:
        """Every file of the caller, following cursors."""
        out: list[FileView] = []
        cursor: str | None = None
        while True:
            page = self.list_files(limit=page_size, cursor=cursor)
            out.extend(page.files)
            if not page.next_cursor:
                return out
            cursor = page.next_cursor


def _parts(parts: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"number": n, "checksum": c} for n, c in parts]


def _valid(model: type[M], data: dict[str, Any]) -> M:
    """A request body the API would accept, or an InvalidInputError saying why not (the
    same rules as the API's: it is the same model)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        raise InvalidInputError(f"{where}: {first.get('msg')}", code="invalid_request") from exc


def _api_error(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
        code = str(body.get("code") or "http_error")
        message = str(body.get("message") or resp.reason_phrase)
    except ValueError:
        code, message = "http_error", f"HTTP {resp.status_code} {resp.reason_phrase}"
    return ApiError(
        f"{message} ({code}, HTTP {resp.status_code})", status=resp.status_code, code=code
    )


def _plain(exc: Exception) -> str:
    """`[Errno 111] Connection refused` → `connection refused`."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _hint(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "is the local stack running? Start it with `mobile-backup local up`"
    return (
        "check this device's internet connection; if it works, check that the deployment "
        "still exists (`mobile-backup deploy` re-creates it)"
    )
