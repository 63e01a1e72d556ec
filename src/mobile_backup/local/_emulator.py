"""The embedded AWS emulator (moto's server) on a loopback port."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

__all__ = ["EmulatorServer"]

logger = logging.getLogger(__name__)


class EmulatorServer:
    """moto's threaded server on 127.0.0.1: S3 (with notifications to SQS), SQS, DynamoDB
    and Cognito, all in memory.

    `port=0` picks a free port; `endpoint_url` is known once started. Usable as a context
    manager. It listens on loopback only: it has no authentication. moto keeps its state in
    module globals, so every server started in one process shares it; stacks are kept apart
    by their names.
    """

    host = "127.0.0.1"

    def __init__(self, *, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self._port: int | None = None

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
        # Imported here: moto pulls in every AWS service model, which only the local stack
        # and the tests need.
        from moto.server import ThreadedMotoServer

        from mobile_backup.local._emulator_fixes import apply_emulator_fixes

        apply_emulator_fixes()  # where moto is laxer than AWS in ways our invariants rely on

        # werkzeug logs every request at INFO through its own handler; a developer running
        # the local stack wants our logs, not the emulator's access log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        logger.info("AWS emulator listening on %s", self.endpoint_url)

    def stop(self) -> None:
        """Stop serving and join the thread; state is discarded. Safe to call twice."""
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
