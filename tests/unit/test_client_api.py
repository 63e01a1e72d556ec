"""ApiClient error translation, through httpx's transport seam."""

from __future__ import annotations

import httpx
import pytest

from mobile_backup.client import ApiClient, ApiError, TransportError


def _client(handler: httpx.MockTransport, tokens: list[bool]) -> ApiClient:
    def token(*, force_refresh: bool = False) -> str:
        tokens.append(force_refresh)
        return "fresh" if force_refresh else "stale"

    return ApiClient(base_url="http://api.test", token=token, http=httpx.Client(transport=handler))


def test_a_401_refreshes_the_token_once() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer stale":
            return httpx.Response(401, json={"code": "token_expired", "message": "expired"})
        return httpx.Response(200, json={"files": [], "next_cursor": None})

    refreshes: list[bool] = []
    page = _client(httpx.MockTransport(handle), refreshes).list_files()
    assert page.files == []
    assert seen == ["Bearer stale", "Bearer fresh"]
    assert refreshes == [False, True]


def test_errors_carry_the_api_code() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"code": "invalid_request", "message": "size too large"})

    with pytest.raises(ApiError) as info:
        _client(httpx.MockTransport(handle), []).list_files()
    assert info.value.code == "invalid_request"
    assert info.value.status == 422
    assert not info.value.transient
    assert "size too large" in str(info.value)


def test_non_json_error_is_still_readable() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(ApiError) as info:
        _client(httpx.MockTransport(handle), []).list_files()
    assert info.value.transient
    assert "HTTP 502" in str(info.value)


def test_unreachable_api_is_a_transport_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransportError, match="cannot reach the API"):
        _client(httpx.MockTransport(handle), []).list_files()
