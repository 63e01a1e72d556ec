"""Starting the app: a desktop window, or a web server for a browser."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable

from mobile_backup.app._controller import AppController
from mobile_backup.app._web import WebAppServer
from mobile_backup.core import ConfigError, Settings, install_hint

log = logging.getLogger(__name__)


def run_desktop(settings: Settings) -> None:
    """Open the app in a desktop window and return when it is closed."""
    if importlib.util.find_spec("flet_desktop") is None:
        # Flet would otherwise try to pip-install its desktop client at run time.
        raise ConfigError(
            "the desktop window needs Flet's desktop client: "
            f"{install_hint('flet-desktop==1.0.*')} "
            "(or run `mobile-backup app --web` and open it in a browser)"
        )
    import flet as ft

    from mobile_backup.app._shell import make_main

    controller = AppController(settings=settings)
    controller.start()
    try:
        ft.run(make_main(controller), view=ft.AppView.FLET_APP)
    finally:
        controller.stop()


def run_embedded(settings: Settings) -> None:
    """The phone build's entry point (`flet build apk|ipa`): Flet's runtime hosts the page."""
    import flet as ft

    from mobile_backup.app._shell import make_main

    controller = AppController(settings=settings)
    controller.start()
    try:
        ft.run(make_main(controller))
    finally:
        controller.stop()


def run_web(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
    wait: Callable[[], None] | None = None,
) -> None:
    """Serve the app to browsers until `wait()` returns."""
    controller = AppController(settings=settings)
    with WebAppServer(controller, host=host, port=port) as server:
        if on_ready is not None:
            on_ready(server.url)
        if wait is not None:
            wait()
