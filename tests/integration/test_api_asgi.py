"""The ASGI adapter and ApiServer over real HTTP on loopback (no emulator needed)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie

from mobile_backup.api._app import ApiResolver
from mobile_backup.local import ApiAsgiApp, ApiServer, serve_api
from mobile_backup.local._asgi import MAX_BODY_BYTES

pytestmark = pytest.mark.integration


def echo_app() -> APIGatewayHttpResolver:
    """A resolver that answers with the event it was given."""
    app = ApiResolver()

    @app.route("/echo/<name>", ["GET", "POST"])
    def echo(name: str) -> dict[str, Any]:
        return {"name": name, "event": app.current_event.raw_event}

    @app.get("/binary")
    def binary() -> Response[bytes]:
        return Response(
            200,
            "application/octet-stream",
            bytes(range(256)),
            headers={"X-Multi": ["a", "b"]},
            cookies=[Cookie(name="session", value="s1"), Cookie(name="theme", value="dark")],
        )

    return app


@pytest.fixture
def echo() -> Iterator[httpx.Client]:
    with ApiServer(ApiAsgiApp(echo_app)) as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_a_request_becomes_an_http_api_v2_event(echo: httpx.Client) -> None:
    before = int(time.time() * 1000)
    response = echo.post(
        "/echo/x%20y?tag=a&tag=b&empty=&q=caf%C3%A9",
        content=b'{"hello": "world"}',
        headers=[
            ("Content-Type", "application/json"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
            ("Cookie", "a=1; b=2"),
            ("Authorization", "Bearer abc"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    event = body["event"]
    # Powertools routes on rawPath, so path parameters stay percent-encoded, as in Lambda.
    assert body["name"] == "x%20y"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/echo/x%20y"
    assert event["rawQueryString"] == "tag=a&tag=b&empty=&q=caf%C3%A9"
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": "", "q": "café"}
    assert event["headers"]["x-repeated"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["authorization"] == "Bearer abc"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    http = event["requestContext"]["http"]
    assert http["method"] == "POST"
    assert http["path"] == "/echo/x y"
    assert http["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["requestId"]
    assert before <= event["requestContext"]["timeEpoch"] <= int(time.time() * 1000)
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False


def test_a_bodyless_request_has_no_body_or_query(echo: httpx.Client) -> None:
    event = echo.get("/echo/plain").json()["event"]
    assert "body" not in event
    assert "queryStringParameters" not in event
    assert event["rawQueryString"] == ""


def test_a_binary_body_arrives_base64_encoded(echo: httpx.Client) -> None:
    payload = bytes(range(256))
    event = echo.post("/echo/bin", content=payload).json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_a_base64_response_goes_out_as_bytes_with_headers_and_cookies(echo: httpx.Client) -> None:
    response = echo.get("/binary")
    assert response.status_code == 200
    assert response.content == bytes(range(256))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == "256"
    assert response.headers["x-multi"] == "a, b"
    assert response.headers.get_list("set-cookie") == ["session=s1; Secure", "theme=dark; Secure"]


def test_a_body_over_the_api_gateway_limit_is_413(echo: httpx.Client) -> None:
    response = echo.post("/echo/big", content=b"x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_an_error_escaping_the_resolver_is_still_a_json_500() -> None:
    def fragile() -> APIGatewayHttpResolver:
        app = APIGatewayHttpResolver()  # no catch-all handler: Powertools re-raises

        @app.get("/boom")
        def boom() -> dict[str, Any]:
            raise RuntimeError("internal detail")

        return app

    with ApiServer(ApiAsgiApp(fragile)) as server:
        response = httpx.get(f"{server.url}/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "internal detail" not in response.text


def barrier_app(parties: int, created: list[int]) -> Callable[[], APIGatewayHttpResolver]:
    """A factory whose route holds each request until `parties` are in flight together."""
    barrier = threading.Barrier(parties, timeout=10)

    def factory() -> APIGatewayHttpResolver:
        created.append(1)
        app = ApiResolver()

        @app.get("/who")
        def who() -> dict[str, Any]:
            barrier.wait()
            return {"n": app.current_event.query_string_parameters["n"]}

        return app

    return factory


def test_concurrent_requests_each_see_their_own_event() -> None:
    # Powertools keeps the current event on a class shared by all resolvers; the pool alone
    # would answer every one of these with the last request's `n`.
    created: list[int] = []
    parties = 4
    app = ApiAsgiApp(barrier_app(parties, created), pool_size=parties)
    assert len(created) == 1  # built up front, so bad settings fail at start
    with ApiServer(app) as server, ThreadPoolExecutor(parties) as pool:

        def ask(n: int) -> tuple[int, str]:
            return n, httpx.get(f"{server.url}/who", params={"n": n}, timeout=20).json()["n"]

        answers = list(pool.map(ask, range(parties)))
    assert answers == [(n, str(n)) for n in range(parties)]
    assert len(created) == parties


def test_the_pool_never_grows_past_its_size() -> None:
    created: list[int] = []
    app = ApiAsgiApp(barrier_app(2, created), pool_size=2)
    with ApiServer(app) as server, ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda n: httpx.get(f"{server.url}/who", params={"n": n}, timeout=20).status_code,
                range(8),
            )
        )
    assert codes == [200] * 8
    assert len(created) == 2


def test_the_server_binds_a_free_port_and_releases_it() -> None:
    server = serve_api(ApiAsgiApp(echo_app))
    try:
        assert server.running
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.url}/echo/up").status_code == 200
        server.start()  # idempotent while running
        port = server.port
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(RuntimeError):
        _ = server.url
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_stopped_server_can_start_again() -> None:
    server = ApiServer(ApiAsgiApp(echo_app))
    for _ in range(2):
        with server:
            assert httpx.get(f"{server.url}/echo/again").status_code == 200


def test_a_taken_port_fails_to_start_with_a_clear_error() -> None:
    from mobile_backup.core import ServiceError

    with ApiServer(ApiAsgiApp(echo_app)) as first:
        second = ApiServer(ApiAsgiApp(echo_app), port=first.port)
        with pytest.raises(ServiceError, match="could not start"):
            second.start()
        assert not second.running


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        ApiAsgiApp(echo_app, pool_size=0)
