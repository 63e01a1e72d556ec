"""Helpers for the upload-engine tests: a counting, fault-injecting loopback HTTP proxy, an
API server whose S3 client points wherever a test needs, and signed-in users.

The proxy forwards requests byte for byte (the `Host` header included, so SigV4 signatures
made for the proxy's address stay valid upstream) and records every request it saw and how
it ended. A `fault` policy can answer 503, reset the connection before forwarding, forward
and then reset instead of answering (the server acted; the client never learns), or answer
with only the first half of the body and then close (a download whose connection breaks).
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from mobile_backup.api import create_app
from mobile_backup.api._app import ledger_for, verifier_for
from mobile_backup.client import ApiClient, Authenticator, TokenStore
from mobile_backup.core import EMULATOR_KEY, Settings
from mobile_backup.local import ApiAsgiApp, ApiServer, create_user

PASSWORD = "Correct-Horse-9-Battery"
MIB = 1024**2

RESET, RESET_AFTER, UNAVAILABLE, CUT_BODY = "reset", "reset-after", "503", "cut-body"


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it, and what became of it."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None: reset, or the client vanished mid-body
    action: str | None = None
    range: str | None = None  # the request's Range header

    @property
    def part_number(self) -> int | None:
        n = self.query.get("partNumber")
        return int(n) if n else None

    @property
    def is_part_put(self) -> bool:
        return self.method == "PUT" and self.part_number is not None

    @property
    def is_put(self) -> bool:
        return self.method == "PUT"


Fault = Callable[[Seen], str | None]


def every(n: int, actions: tuple[str, ...] = (UNAVAILABLE, RESET, RESET_AFTER)) -> Fault:
    """A deterministic fault policy: every `n`-th request fails, cycling through `actions`."""
    counter = itertools.count(1)
    cycle = itertools.cycle(actions)
    lock = threading.Lock()

    def fault(_seen: Seen) -> str | None:
        with lock:
            return next(cycle) if next(counter) % n == 0 else None

    return fault


class Proxy:
    """A threaded HTTP/1.1 forwarder to `upstream` on a free loopback port."""

    def __init__(
        self,
        upstream: str,
        *,
        fault: Fault | None = None,
        delay: Callable[[Seen], float] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.fault = fault
        self.delay = delay
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests(self, pred: Callable[[Seen], bool] = lambda _s: True) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if pred(s)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reset(self) -> None:
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                with suppress(OSError):
                    self.connection.close()

            def finish(self) -> None:
                with suppress(OSError, ValueError):
                    super().finish()

            def _forward(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                asked = self.headers.get("Range")
                probe = Seen(self.command, split.path, query, None, range=asked)
                action = proxy.fault(probe) if proxy.fault else None
                length = int(self.headers.get("Content-Length") or 0)
                if action in (RESET, UNAVAILABLE):
                    self.rfile.read(length)
                    if action == RESET:
                        proxy.record(Seen(self.command, split.path, query, None, action))
                        self._reset()
                        return
                    body = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    proxy.record(Seen(self.command, split.path, query, 503, action))
                    return
                if proxy.delay is not None:
                    time.sleep(proxy.delay(probe))
                conn = http.client.HTTPConnection(*proxy._upstream, timeout=120)
                try:
                    conn.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        conn.putheader(name, value)
                    conn.endheaders()
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(MIB, left))
                        if not chunk:  # the client died mid-body: upstream gets nothing whole
                            proxy.record(Seen(self.command, split.path, query, None, "aborted"))
                            self.close_connection = True
                            return
                        conn.send(chunk)
                        left -= len(chunk)
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
                if action == RESET_AFTER:
                    proxy.record(Seen(self.command, split.path, query, None, action))
                    self._reset()
                    return
                # Recorded before relaying: upstream acted even if the client is gone now.
                proxy.record(Seen(self.command, split.path, query, resp.status, action, asked))
                self.send_response_only(resp.status, resp.reason)
                for name, value in resp.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if action == CUT_BODY:  # half the promised body, then the connection ends
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _forward

        return Handler


def s3_for(endpoint: str, *, access_key: str = EMULATOR_KEY, secret_key: str = EMULATOR_KEY) -> Any:
    """A boto3 S3 client (path style, SigV4) for `endpoint`, e.g. a proxy in front of S3."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@contextmanager
def api_server(settings: Settings, *, s3: Any | None = None) -> Iterator[ApiServer]:
    """The real API over HTTP; `s3` (if given) is the S3 client it presigns with."""
    if s3 is None:
        app = ApiAsgiApp.for_settings(settings, pool_size=4)
    else:
        ledger, verifier = ledger_for(settings), verifier_for(settings)
        app = ApiAsgiApp(
            lambda: create_app(settings=settings, ledger=ledger, s3=s3, verifier=verifier),
            pool_size=4,
        )
    server = ApiServer(app)
    with server:
        yield server


@dataclass
class Account:
    email: str
    sub: str
    auth: Authenticator

    def api(self, base_url: str, **kwargs: Any) -> ApiClient:
        return ApiClient(base_url=base_url, token=self.auth.access_token, **kwargs)


def sign_up(resources: Any, settings: Settings, state: Path) -> Account:
    """A new pool user, signed in, with the session stored under `state`."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    sub = create_user(resources, email=email, password=PASSWORD)
    auth = Authenticator(settings=settings, store=TokenStore(state / f"{sub}.json"))
    auth.login(email, PASSWORD)
    return Account(email=email, sub=sub, auth=auth)


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path`; return their SHA-256."""
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
