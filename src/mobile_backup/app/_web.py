"""Serving the app to a browser, offline: the Flutter web client comes from flet-web's wheel.

`WebAppServer` runs uvicorn on a background thread (like the API server of the local
stack), so `mobile-backup app --web` and the end-to-end test start it the same way. Picked
files reach the server through Flet's signed upload URLs, into the controller's upload dir.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from mobile_backup.app._controller import AppController
from mobile_backup.core import ConfigError, install_hint

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 20.0
# The largest single file a browser may send to the app (a long 4K video).
MAX_UPLOAD_BYTES = 20 * 1024**3


def web_asgi_app(controller: AppController, *, secret_key: str) -> Any:
    """The FastAPI app serving the Flet web client, its websocket and the upload endpoint."""
    try:
        import flet_web.fastapi as flet_fastapi
    except ImportError as exc:  # pragma: no cover - the app extra installs it
        raise ConfigError(
            f"web mode needs flet-web: {install_hint('flet-web==1.0.*', 'uvicorn>=0.30')}"
        ) from exc
    from mobile_backup.app._shell import TITLE, make_main

    controller.upload_dir.mkdir(parents=True, exist_ok=True)
    return flet_fastapi.app(
        make_main(controller),
        app_name=TITLE,
        app_short_name=TITLE,
        app_description="Back up your photos and videos to your own PC.",
        no_cdn=True,  # everything from the wheel: works without internet access
        upload_dir=str(controller.upload_dir),
        max_upload_size=MAX_UPLOAD_BYTES,
        secret_key=secret_key,
    )


class WebAppServer:
    """The app in web mode on `host:port` (`port=0` picks a free one)."""

    def __init__(
        self, controller: AppController, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._controller = controller
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/"

    def start(self, *, timeout: float = STARTUP_TIMEOUT_SECONDS) -> WebAppServer:
        import uvicorn

        app = web_asgi_app(self._controller, secret_key=secrets.token_urlsafe(32))
        config = uvicorn.Config(
            app,
            host=self._host,
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="websockets-sansio",
        )
        server = uvicorn.Server(config)
        self._server = server

        def run() -> None:
            try:
                server.run()
            except SystemExit:  # cannot bind: uvicorn logged why; start() reports it
                log.debug("the web server thread exited during startup")

        self._thread = threading.Thread(target=run, name="app-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"cannot serve the app on {self._host}:{self._port}")
            time.sleep(0.02)
        if self._port == 0:
            self._port = server.servers[0].sockets[0].getsockname()[1]
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> WebAppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
