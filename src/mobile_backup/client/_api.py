"""A typed client for the Mobile Backup HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from mobile_backup.client.exceptions import ApiError, TransportError
from mobile_backup.core import FileRecord

MAX_BATCH = 100
# `FileRecord.user_sub` of records listed by the API: always the signed-in caller.
CALLER = "me"


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the client declares about one file before sending it."""

    sha256: str
    size: int
    filename: str
    content_type: str
    taken_at: datetime | None = None
    device: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sha256": self.sha256,
            "size": self.size,
            "filename": self.filename,
            "content_type": self.content_type,
        }
        if self.taken_at is not None:
            data["taken_at"] = self.taken_at.isoformat()
        if self.device:
            data["device"] = self.device
        return data


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """The API's answer for one file: `duplicate`, or where and how to PUT it."""

    sha256: str
    status: str
    url: str | None = None
    headers: dict[str, str] | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PartUrl:
    """Where and how to PUT one part of a multipart upload."""

    number: int
    url: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HeldPart:
    """A part S3 already holds."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class MultipartTicket:
    """The API's answer about a multipart upload: `duplicate`, or the upload and part URLs.

    `completed` lists the parts S3 already holds when the API was asked (or resumed one).
    """

    sha256: str
    status: str
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    parts: tuple[PartUrl, ...] = ()
    completed: tuple[HeldPart, ...] | None = None


@dataclass(frozen=True, slots=True)
class Lookup:
    """The ledger's word on one content: backed up in the cloud, and verified on a PC."""

    backed_up: bool
    on_pc: bool


@dataclass(frozen=True, slots=True)
class FilePage:
    files: list[FileRecord]
    next_cursor: str | None


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
            except httpx.HTTPError as exc:
                raise TransportError(f"cannot reach the API at {self._base}: {exc}") from exc
            if resp.status_code == 401 and attempt == 0:
                continue
            if resp.is_success:
                return resp.json()
            raise _api_error(resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def request_uploads(self, files: Sequence[UploadRequest]) -> list[UploadTicket]:
        """Presign a batch of at most 100 files."""
        if not files:
            return []
        if len(files) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} files per batch")
        data = self._request("POST", "/v1/uploads", json={"files": [f.to_json() for f in files]})
        tickets = []
        for item in data["results"]:
            upload = item.get("upload") or {}
            tickets.append(
                UploadTicket(
                    sha256=item["sha256"],
                    status=item["status"],
                    url=upload.get("url"),
                    headers=upload.get("headers"),
                    expires_at=(
                        datetime.fromisoformat(upload["expires_at"])
                        if upload.get("expires_at")
                        else None
                    ),
                )
            )
        return tickets

    def start_multipart(
        self,
        file: UploadRequest,
        *,
        crc64nvme: str,
        part_size: int | None = None,
        parts: Sequence[tuple[int, str]] = (),
    ) -> MultipartTicket:
        """Start (or resume) a multipart upload of the file whose whole CRC64NVME (base64) is
        `crc64nvme`; presign `parts` ((number, base64 CRC64NVME of the part))."""
        body = file.to_json()
        body["crc64nvme"] = crc64nvme
        if part_size is not None:
            body["part_size"] = part_size
        body["parts"] = _parts_json(parts)
        return _ticket(self._request("POST", "/v1/uploads/multipart", json=body))

    def sign_parts(
        self,
        *,
        sha256: str,
        upload_id: str,
        part_size: int,
        parts: Sequence[tuple[int, str]] = (),
        include_completed: bool = False,
    ) -> MultipartTicket:
        """Presign (again) parts of an upload; optionally list the parts S3 holds."""
        body = {
            "sha256": sha256,
            "upload_id": upload_id,
            "part_size": part_size,
            "parts": _parts_json(parts),
            "include_completed": include_completed,
        }
        return _ticket(self._request("POST", "/v1/uploads/multipart/parts", json=body))

    def complete_multipart(
        self, *, sha256: str, upload_id: str, part_size: int, checksums: Sequence[str]
    ) -> str:
        """Assemble the file from its parts; returns the status (`uploaded`)."""
        body = {
            "sha256": sha256,
            "upload_id": upload_id,
            "part_size": part_size,
            "checksums": list(checksums),
        }
        data = self._request("POST", "/v1/uploads/multipart/complete", json=body)
        return str(data["status"])

    def abort_multipart(self, *, sha256: str, upload_id: str) -> None:
        """Give up an upload and free the parts S3 holds for it."""
        body = {"sha256": sha256, "upload_id": upload_id}
        self._request("POST", "/v1/uploads/multipart/abort", json=body)

    def lookup(self, sha256s: Sequence[str]) -> dict[str, Lookup]:
        """What the ledger says of these contents (at most 100), reserving nothing."""
        if not sha256s:
            return {}
        if len(sha256s) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} digests per lookup")
        data = self._request("POST", "/v1/files/lookup", json={"sha256": list(sha256s)})
        return {
            item["sha256"]: Lookup(backed_up=bool(item["backed_up"]), on_pc=bool(item["on_pc"]))
            for item in data["results"]
        }

    def list_files(self, *, limit: int = 100, cursor: str | None = None) -> FilePage:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._request("GET", "/v1/files", params=params)
        # The API lists only the caller's own files and never echoes the user id; the
        # record's user field is filled with a marker that means "the signed-in user".
        records = [FileRecord.model_validate({**f, "user_sub": CALLER}) for f in data["files"]]
        return FilePage(files=records, next_cursor=data.get("next_cursor"))

    def iter_files(self, *, page_size: int = 500) -> list[FileRecord]:
        """Every file of the caller, following cursors."""
        out: list[FileRecord] = []
        cursor: str | None = None
        while True:
            page = self.list_files(limit=page_size, cursor=cursor)
            out.extend(page.files)
            if not page.next_cursor:
                return out
            cursor = page.next_cursor


def _parts_json(parts: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"number": n, "checksum_crc64nvme": c} for n, c in parts]


def _ticket(data: dict[str, Any]) -> MultipartTicket:
    completed = data.get("completed")
    return MultipartTicket(
        sha256=data["sha256"],
        status=data["status"],
        upload_id=data.get("upload_id"),
        part_size=data.get("part_size"),
        part_count=data.get("part_count"),
        parts=tuple(
            PartUrl(
                number=int(p["number"]),
                url=p["url"],
                headers=dict(p["headers"]),
                expires_at=datetime.fromisoformat(p["expires_at"]),
            )
            for p in data.get("parts") or ()
        ),
        completed=(
            None
            if completed is None
            else tuple(
                HeldPart(number=int(p["number"]), size=int(p["size"]), etag=str(p["etag"]))
                for p in completed
            )
        ),
    )


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
