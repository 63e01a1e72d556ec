"""Serve the Lambda resolver over real HTTP: a thin ASGI adapter and a uvicorn runner.

Each HTTP request becomes the API Gateway HTTP API (payload v2.0) event Lambda would
receive, goes through the very same resolver, and the resolver's answer becomes the HTTP
response. Resolution is blocking code (boto3), so it runs on a small thread pool and the
event loop never waits on it. Powertools keeps routing state per resolver instance, so each
concurrent request borrows its own instance from a pool rather than sharing one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl

from mobile_backup.api.exceptions import PayloadTooLargeError, error_body, status_for
from mobile_backup.core import ServiceError
from mobile_backup.local._lambda_context import LocalLambdaContext

if TYPE_CHECKING:
    from types import TracebackType

    import uvicorn
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from mobile_backup.core import Settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# API Gateway refuses bigger payloads; the local server mirrors it.
MAX_BODY_BYTES = 10 * 1024 * 1024
STARTUP_TIMEOUT_SECONDS = 15.0


def build_event(scope: Scope, body: bytes) -> dict[str, Any]:
    """The API Gateway HTTP API (v2.0) event for an ASGI HTTP request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            # API Gateway moves cookies out of the headers into their own list.
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        # Repeated headers arrive comma-joined, as API Gateway delivers them.
        headers[name] = f"{headers[name]},{value}" if name in headers else value

    raw_query = scope.get("query_string", b"").decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value

    method = str(scope["method"]).upper()
    path = str(scope["path"])
    raw_path = scope.get("raw_path")
    client = scope.get("client") or ("127.0.0.1", 0)
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path.decode("latin-1") if raw_path else path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": headers.get("host", "localhost").split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "sourceIp": client[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _response_parts(result: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, ASGI headers and body bytes of a resolver's (Lambda proxy) response."""
    body_text = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body_text)
    else:
        body = body_text.encode("utf-8")
    headers: list[tuple[bytes, bytes]] = []
    for name, value in (result.get("headers") or {}).items():
        if name.lower() == "content-length":
            continue
        values = value if isinstance(value, list) else [value]
        headers.extend((name.lower().encode("latin-1"), str(v).encode("latin-1")) for v in values)
    for cookie in result.get("cookies") or []:
        headers.append((b"set-cookie", str(cookie).encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    return int(result.get("statusCode", 200)), headers, body


def _error_parts(exc: BaseException) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(error_body(exc)).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return status_for(exc), headers, body


class ApiAsgiApp:
    """An ASGI application that answers HTTP requests with the Lambda resolver.

    `app_factory` builds one resolver (e.g. `lambda: create_app(settings=...)`); it is
    called once up front, so bad settings fail here, and again whenever more requests run
    concurrently than there are idle instances, up to `pool_size`.
    """

    def __init__(
        self, app_factory: Callable[[], APIGatewayHttpResolver], *, pool_size: int = 8
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._factory = app_factory
        self._idle: queue.SimpleQueue[APIGatewayHttpResolver] = queue.SimpleQueue()
        self._idle.put(app_factory())
        self._pool_size = pool_size
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings, *, pool_size: int = 8) -> Self:
        """Serve `create_app(settings=...)`; the pool's instances share one set of clients.

        boto3 clients and the JWKS client are thread-safe and costly to build, so they are
        made once; only the (cheap, stateful) resolvers are per worker.
        """
        from mobile_backup.api import create_app, ledger_for, verifier_for
        from mobile_backup.aws import s3_client

        ledger, s3, verifier = (
            ledger_for(settings),
            s3_client(settings, component="api"),
            verifier_for(settings),
        )
        return cls(
            lambda: create_app(settings=settings, ledger=ledger, s3=s3, verifier=verifier),
            pool_size=pool_size,
        )

    @property
    def pool_size(self) -> int:
        return self._pool_size

    def close(self) -> None:
        """Stop the worker threads (after the requests in flight); a later request restarts them."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _workers(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._pool_size, thread_name_prefix="api"
                )
            return self._executor

    def resolve(self, event: dict[str, Any]) -> dict[str, Any]:
        """Resolve one event on the calling thread with an instance nobody else is using."""
        try:
            resolver = self._idle.get_nowait()
        except queue.Empty:
            # At most pool_size threads call this at once, so at most pool_size instances.
            resolver = self._factory()
        try:
            context = LocalLambdaContext(
                event["requestContext"]["requestId"], function_name="mobile-backup-api-local"
            )
            return resolver.resolve(event, context)  # type: ignore[arg-type]
        finally:
            self._idle.put(resolver)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")
        try:
            body = await _read_body(receive)
        except PayloadTooLargeError as exc:
            await _send(send, *_error_parts(exc))
            return
        event = build_event(scope, body)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._workers(), self.resolve, event)
            parts = _response_parts(result)
        except Exception as exc:
            # The resolver turns every error into a response; reaching here is a bug.
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            parts = _error_parts(exc)
        await _send(send, *parts)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Blocking join of idle workers; requests in flight have already drained.
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiServer:
    """uvicorn serving an ASGI app on a background thread (for local use and tests).

    `port=0` picks a free port; `url` reports the one actually bound.
    """

    def __init__(self, app: AsgiApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321` (no trailing slash)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Start serving and return once the socket accepts connections."""
        if self.running:
            return
        # Imported here: uvicorn is in the `local` extra and never needed in Lambda.
        import uvicorn

        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self._requested_port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run()
            except SystemExit:
                # uvicorn exits when it cannot bind; it has logged why, start() reports it.
                logger.debug("the API server thread exited during startup")

        thread = threading.Thread(target=run, name="api-server", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise ServiceError(
                    f"the API server could not start on {self._host}:{self._requested_port} "
                    "(is the port in use?)"
                )
            if time.monotonic() > deadline:
                server.should_exit = True
                raise ServiceError("the API server did not start in time")
            thread.join(0.01)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        logger.info("API serving on %s", self.url)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving; waits for requests in flight."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"ApiServer({where})"


def serve_api(app: AsgiApp, *, host: str = "127.0.0.1", port: int = 0) -> ApiServer:
    """Start serving `app` on a background thread; call `.stop()` when done."""
    server = ApiServer(app, host=host, port=port)
    server.start()
    return server


__all__ = ["ApiAsgiApp", "ApiServer", "build_event", "serve_api"]
