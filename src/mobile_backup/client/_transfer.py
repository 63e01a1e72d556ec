"""One PUT of a byte range to a presigned URL, and how long such a URL stays usable."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx

from mobile_backup.client._parts import RangeBody
from mobile_backup.client.exceptions import TransportError, UploadError, UrlRejectedError

# Re-sign a URL this long before it expires (at most a quarter of its lifetime).
EXPIRY_MARGIN_SECONDS = 30.0
# When a URL does not say how long it lives (not SigV4 query auth), assume this.
UNKNOWN_LIFETIME_SECONDS = 300.0


def fresh_until(url: str, *, received: float | None = None) -> float:
    """The `time.monotonic()` instant after which `url` should be signed again.

    Counted from when the URL was received with the lifetime the URL itself declares
    (`X-Amz-Expires`), so a skewed clock on the phone does not matter.
    """
    received = time.monotonic() if received is None else received
    values = parse_qs(urlsplit(url).query).get("X-Amz-Expires") or []
    try:
        lifetime = float(values[0])
    except (IndexError, ValueError):
        lifetime = UNKNOWN_LIFETIME_SECONDS
    return received + lifetime - min(EXPIRY_MARGIN_SECONDS, lifetime / 4)


def s3_reason(resp: httpx.Response) -> str:
    """S3's error code from an XML error body (or the HTTP reason)."""
    text = resp.text
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else resp.reason_phrase


def put_range(
    http: httpx.Client, *, url: str, headers: dict[str, str], body: RangeBody
) -> httpx.Response:
    """PUT `body` with exactly `headers` (they are signed); raise on anything but 2xx.

    TransportError and 5xx/429 UploadErrors are transient; a 403 is UrlRejectedError.
    """
    try:
        resp = http.put(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TransportError(f"upload interrupted: {exc}") from exc
    if resp.is_success:
        return resp
    reason = s3_reason(resp)
    if resp.status_code == 403:
        raise UrlRejectedError(f"storage refused the upload URL: HTTP 403 {reason}", status=403)
    raise UploadError(
        f"storage refused the bytes: HTTP {resp.status_code} {reason}",
        status=resp.status_code,
        transient=resp.status_code >= 500 or resp.status_code in (408, 429),
    )
