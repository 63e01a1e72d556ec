"""The embedded AWS emulator (moto's server) on a loopback port."""

from __future__ import annotations

import logging
import os
import threading
from types import TracebackType
from typing import Any, Self

from mobile_backup.local._child import LocalServerError, ServerProcess

__all__ = ["EmulatorServer"]

logger = logging.getLogger(__name__)

# `own_process`: the child announces its URL (or why it could not start), then serves until
# its stdin closes (see ServerProcess). Ctrl+C reaches every process of the terminal: the
# parent decides when the emulator stops, so the child ignores it.
_CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from mobile_backup.local._emulator import EmulatorServer
server = EmulatorServer(port=int(sys.argv[1]))
try:
    server.start()
except Exception as exc:
    from mobile_backup.local import LocalServerError
    why = exc if isinstance(exc, LocalServerError) else (
        f"the AWS emulator did not start: {type(exc).__name__}: {exc}")
    print("ERROR", str(why).replace("\\n", " "), flush=True)
    sys.exit(1)
print("READY", server.endpoint_url, flush=True)
sys.stdin.read()
server.stop()
"""


class EmulatorServer:
    """moto's server on 127.0.0.1: S3 (with notifications to SQS), SQS, DynamoDB and
    Cognito, all in memory, served over keep-alive HTTP/1.1 (see `_KeepAliveServer`).

    `port=0` picks a free port; `endpoint_url` is known once started. Usable as a context
    manager. It listens on loopback only: it has no authentication. moto keeps its state in
    module globals, so every server started in one process shares it; stacks are kept apart
    by their names.

    `own_process=True` runs it in a child interpreter instead, with a GIL of its own: every
    AWS call of the local stack is parsed, run and answered there, so the API, the ingest
    and the agent no longer queue behind the emulator for one core (B4's burst measures
    it). Its state is then that child's, and goes with it.
    """

    host = "127.0.0.1"

    def __init__(self, *, port: int = 0, own_process: bool = False) -> None:
        self._requested_port = port
        self._own_process = own_process
        self._server: Any = None
        self._port: int | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id with `own_process` while running, else None."""
        return self._server.pid if isinstance(self._server, ServerProcess) else None

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:{port}`; raises RuntimeError before `start()`."""
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Start serving in a daemon thread; returns once the socket is listening."""
        if self._server is not None:
            return
        if self._own_process:
            child = ServerProcess(_CHILD, str(self._requested_port), what="AWS emulator")
            url = child.start()
            self._server = child
            self._port = int(url.rsplit(":", 1)[1])
            logger.info("AWS emulator listening on %s (pid %s)", self.endpoint_url, child.pid)
            return
        from mobile_backup.local._emulator_fixes import apply_emulator_fixes

        apply_emulator_fixes()  # where moto is laxer than AWS in ways our invariants rely on
        # Authenticator-app codes are checked, as Cognito does (against moto's fixed secret).
        os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
        # waitress notes at INFO each client that hangs up before its answer is sent; a
        # developer running the local stack wants our logs, not the emulator's.
        logging.getLogger("waitress").setLevel(logging.WARNING)
        try:
            server = _KeepAliveServer(self.host, self._requested_port)  # binds the port now
        except OSError as exc:
            raise LocalServerError(
                f"the AWS emulator cannot listen on {self.host}:{self._requested_port}: "
                f"{exc.strerror or exc}"
            ) from exc
        server.start()
        self._server = server
        self._port = server.port
        logger.info("AWS emulator listening on %s", self.endpoint_url)

    def stop(self) -> None:
        """Stop serving and join the thread (or end the child); state is discarded. Safe to
        call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            logger.info("AWS emulator on port %s stopped", self._port)
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
        where = self.endpoint_url if self._port is not None else "stopped"
        return f"EmulatorServer({where})"


class _KeepAliveServer:
    """moto's WSGI application served by waitress on a thread of this process.

    moto's own server is werkzeug's development server, which closes the connection after
    every response (it disables HTTP/1.1 keep-alive on purpose) and then waits up to 10 ms
    for stray request bytes: every AWS call of the local stack paid a new TCP connection,
    on both sides, and a new server thread. Waitress keeps connections open as AWS does
    and answers from a pool of threads. B4's burst of 50 uploads (`--quick`), each a chain
    of about ten emulator calls, went from a p99 of 1.4-1.8 s to 0.6-0.8 s on the same machine.

    Each SQS long poll holds one of the threads for up to 20 s; the local stack holds well
    under 20 at once (an agent's receivers, the ingest poller's batches), so the pool is
    sized far above that. Headers with an underscore in their name are dropped, as
    werkzeug drops them (S3 user metadata with underscores is the one use; we send none).
    """

    _THREADS = 128
    # S3's own limit for one PUT: larger bodies would be refused by S3 too.
    _MAX_BODY = 5 * 1024**3
    # Bodies (an S3 object through moto) are kept in memory up to this size instead of a
    # temporary file. (Reading the socket in larger pieces than waitress's 8 KiB made a
    # 3 MB PUT cheaper but doubled B4's burst p99: its one I/O thread serves every
    # connection, and each large read costs it a fresh allocation.)
    _BUFFER = 32 * 1024**2

    def __init__(self, host: str, port: int) -> None:
        # Imported here: moto pulls in every AWS service model, and waitress comes with the
        # `local` extra; only the local stack and the tests need them.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from waitress.server import create_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=self._THREADS,
            connection_limit=4096,
            channel_timeout=15,  # an idle kept-alive connection closes after this long
            asyncore_use_poll=True,  # select() cannot watch descriptors above 1023
            max_request_body_size=self._MAX_BODY,
            inbuf_overflow=self._BUFFER,
            outbuf_overflow=self._BUFFER,
        )
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()
        # Held while the loop closes its sockets and while stop() pulls the trigger: once
        # the loop has closed the trigger's pipe, writing to it would hit a closed (or
        # reused) descriptor.
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="aws-emulator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection and the thread pool; returns when done."""
        self._stopping.set()
        with self._closing:
            if not self._closed:  # else the loop has already seen the flag and ended
                self._server.pull_trigger()  # wake the loop from its poll
        self._thread.join()

    def _serve(self) -> None:
        from waitress import wasyncore

        server = self._server
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=1.0, map=server._map, use_poll=True, count=1)
        finally:
            # In this thread: the loop's sockets are not closed under its feet.
            with self._closing:
                self._closed = True
                wasyncore.close_all(server._map, ignore_all=True)
            # Idle workers end now, busy ones (a long poll) after their request, as
            # daemon threads; moto's server did not wait for them either.
            server.task_dispatcher.set_thread_count(0)
