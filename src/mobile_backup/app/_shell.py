"""The app's frame on one page: sign-in or the four tabs, redrawn as the state changes.

Background threads (the upload runner, the folder watcher) never touch controls: they
change the controller, and one ticker per page redraws the visible screen when the
controller's version moves, at most a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._screen_backup import BackupScreen
from mobile_backup.app._screen_history import HistoryScreen
from mobile_backup.app._screen_queue import QueueScreen
from mobile_backup.app._screen_settings import SettingsScreen
from mobile_backup.app._screen_signin import SignInScreen
from mobile_backup.app._status import Signal
from mobile_backup.app._widgets import (
    GALLERY_WIDTH,
    MAX_WIDTH,
    OK,
    PAD,
    TICK_FONT,
    TICK_FONT_WEB_URL,
    WARN,
    icon_button,
)
from mobile_backup.client import APP_SCHEME

log = logging.getLogger(__name__)

TITLE = "Mobile Backup"
TICK_SECONDS = 0.25
HISTORY_POLL_SECONDS = 2.0
# Every screen's status (the top bar's icon, the counts) is checked against the backend
# this often, whichever tab is open.
STATUS_POLL_SECONDS = 15.0
SIGNALS: dict[Signal, tuple[ft.IconData, str]] = {
    Signal.CHECKING: (ft.Icons.CLOUD_OUTLINED, ft.Colors.OUTLINE),
    Signal.OFFLINE: (ft.Icons.CLOUD_OFF, ft.Colors.ERROR),
    Signal.ERROR: (ft.Icons.SYNC_PROBLEM, ft.Colors.ERROR),
    Signal.ATTENTION: (ft.Icons.ERROR_OUTLINE, WARN),
    Signal.BUSY: (ft.Icons.CLOUD_SYNC, ft.Colors.PRIMARY),
    Signal.OK: (ft.Icons.CLOUD_DONE, OK),
}
BACKUP, QUEUE, HISTORY, SETTINGS = range(4)


class Screen(Protocol):
    @property
    def control(self) -> ft.Control: ...

    def refresh(self) -> None: ...


DESTINATIONS = (
    (ft.Icons.ADD_PHOTO_ALTERNATE_OUTLINED, ft.Icons.ADD_PHOTO_ALTERNATE, "Back up"),
    (ft.Icons.CLOUD_UPLOAD_OUTLINED, ft.Icons.CLOUD_UPLOAD, "Queue"),
    (ft.Icons.HISTORY, ft.Icons.HISTORY, "History"),
    (ft.Icons.SETTINGS_OUTLINED, ft.Icons.SETTINGS, "Settings"),
)
RAIL_FROM = 600  # Material's medium width class: a rail instead of a bottom bar


class AppShell:
    """Everything one page (a window, a browser tab, a phone screen) shows."""

    def __init__(self, page: ft.Page, controller: AppController) -> None:
        self.page = page
        self._c = controller
        self._drawn = -1
        self._closed = False
        self._screens: list[Screen] = []
        self._signin: SignInScreen | None = None
        self._tab = BACKUP
        self.body = ft.Container(expand=True, padding=PAD, alignment=ft.Alignment.TOP_CENTER)
        self.picker = ft.FilePicker()
        self.signal = icon_button(
            ft.Icons.CLOUD_OUTLINED, "Checking the connection…", self._signal_tapped
        )
        self._signal_drawn: tuple[Signal, str] | None = None
        # A phone's bottom bar; from a tablet's width up, Material's navigation rail.
        self.nav = ft.NavigationBar(
            destinations=[
                ft.NavigationBarDestination(icon=icon, selected_icon=selected, label=label)
                for icon, selected, label in DESTINATIONS
            ],
            on_change=self._nav_changed,
        )
        self.rail = ft.NavigationRail(
            destinations=[
                ft.NavigationRailDestination(icon=icon, selected_icon=selected, label=label)
                for icon, selected, label in DESTINATIONS
            ],
            label_type=ft.NavigationRailLabelType.ALL,
            group_alignment=-0.9,
            on_change=self._nav_changed,
        )
        self._wide: bool | None = None

    async def start(self) -> None:
        page = self.page
        page.title = TITLE
        page.theme = ft.Theme(color_scheme_seed=ft.Colors.INDIGO)
        page.theme_mode = ft.ThemeMode.LIGHT
        page.padding = 0
        if page.web:
            page.fonts = {TICK_FONT: TICK_FONT_WEB_URL}
        page.services.append(self.picker)
        page.on_disconnect = self._close
        page.on_close = self._close
        page.on_resize = self._resized
        await self._watch_network()
        invite = _invite_in(page.route)
        if invite is not None:  # opened from an invite link: join first, whoever is here
            self.show_sign_in(invite=invite)
        elif self._c.username is None:
            self.show_sign_in(self._c.session_message)
        else:
            self.show_main()
        page.run_task(self._tick)

    async def _watch_network(self) -> None:
        platform = self.page.platform
        if self.page.web or platform is None or not platform.is_mobile():
            return  # desktops and browsers do not report Wi-Fi vs mobile data reliably
        conn = ft.Connectivity(on_change=lambda e: self._connection(e.connectivity))
        self.page.services.append(conn)
        try:
            self._connection(await conn.get_connectivity())
            self._c.wifi_supported = True
        except Exception as exc:
            log.info("connectivity is not available on this device: %s", exc)

    def _connection(self, kinds: list[ft.ConnectivityType]) -> None:
        values = {k.value for k in kinds}
        best = next((k for k in ("wifi", "ethernet", "mobile") if k in values), None)
        self._c.set_connection(best or (kinds[0].value if kinds else None))

    # Screens -------------------------------------------------------------------------
    def show_sign_in(self, message: str | None = None, *, invite: str | None = None) -> None:
        self._screens = []
        self._tab = BACKUP  # whoever signs in next starts on Back up, not on the last tab
        self._signin = SignInScreen(
            self._c,
            on_signed_in=self.show_main,
            on_joined=self._joined,
            message=message,
            invite=invite,
        )
        self.page.appbar = None
        self.page.navigation_bar = None
        self.body.content = self._signin.control
        self.page.controls = [ft.SafeArea(self.body, expand=True)]
        self.page.update()

    def _joined(self) -> None:
        """A new household on this device: its sign-in, the invite's e-mail filled in."""
        if self._c.username is None:
            self.show_sign_in()
        else:
            self.show_main()

    def show_main(self) -> None:
        self._signin = None
        self._screens = [
            BackupScreen(self._c, self.page, self.picker, on_queued=lambda: self.go(QUEUE)),
            QueueScreen(self._c, go_pick=lambda: self.go(BACKUP)),
            HistoryScreen(self._c, self.page, width=self._width),
            SettingsScreen(
                self._c, self.page, on_sign_out=self.show_sign_in, on_switched=self._joined
            ),
        ]
        self.page.appbar = ft.AppBar(
            title=ft.Text(TITLE, weight=ft.FontWeight.W_600),
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOW,
            actions=[self.signal, ft.Container(width=PAD - 8)],
        )  # fmt: skip
        self._show_signal()
        self._wide = None
        self._lay_out()
        self.go(self._tab)
        self.page.run_thread(self._c.history.refresh)

    def _width(self) -> float:
        return min(float(self.page.width or MAX_WIDTH), self._max_width())

    def _max_width(self) -> int:
        return GALLERY_WIDTH if self._tab == HISTORY else MAX_WIDTH

    def _lay_out(self) -> None:
        """The bottom bar on a narrow screen, the rail beside the content on a wide one."""
        wide = float(self.page.width or 0) >= RAIL_FROM
        if wide == self._wide:
            return
        self._wide = wide
        if wide:
            self.page.navigation_bar = None
            row = ft.Row(
                [self.rail, ft.VerticalDivider(width=1), self.body], expand=True, spacing=0
            )
            self.page.controls = [ft.SafeArea(row, expand=True)]
        else:
            self.page.navigation_bar = self.nav
            self.page.controls = [ft.SafeArea(self.body, expand=True)]

    def _resized(self, _e: object) -> None:
        if self._screens:
            self._lay_out()
            self._screens[self._tab].refresh()
            self.page.update()

    def _show_signal(self) -> None:
        """The top bar's icon: reachability, errors and work, never a constant."""
        seen = self._c.history.glance()
        if (seen.signal, seen.signal_text) == self._signal_drawn:
            return  # unchanged: nothing to send to the page
        self._signal_drawn = (seen.signal, seen.signal_text)
        icon, color = SIGNALS[seen.signal]
        self.signal.icon = ft.Icon(icon, color=color, semantics_label=seen.signal_text)
        self.signal.tooltip = seen.signal_text

    def _signal_tapped(self) -> None:
        self.go(QUEUE if self._c.queue.snapshot().items else HISTORY)
        self.page.run_thread(self._c.history.refresh)

    def go(self, tab: int) -> None:
        self._tab = tab
        self.nav.selected_index = self.rail.selected_index = tab
        screen = self._screens[tab]
        screen.refresh()
        self._show_signal()
        self.body.content = ft.Container(
            width=self._max_width(), content=screen.control, expand=True
        )
        self._drawn = self._c.version
        self.page.update()

    def _nav_changed(self, e: ft.Event[ft.NavigationBar] | ft.Event[ft.NavigationRail]) -> None:
        self.go(int(e.control.selected_index or 0))
        if self._tab == HISTORY:
            self.page.run_thread(self._c.history.refresh)

    # The ticker ----------------------------------------------------------------------
    def _close(self) -> None:
        self._closed = True

    async def _tick(self) -> None:
        last_poll = last_status = 0.0
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(TICK_SECONDS)
            try:
                if self._screens and self._c.username is None:
                    self.show_sign_in(self._c.session_message)
                    continue
                now = loop.time()
                if (
                    self._screens
                    and self._tab == HISTORY
                    and now - last_poll > HISTORY_POLL_SECONDS
                    and self._c.history.needs_polling()
                ):
                    last_poll = now
                    self.page.run_thread(self._c.history.refresh)
                elif self._screens and now - last_status > STATUS_POLL_SECONDS:
                    last_status = now
                    self.page.run_thread(lambda: self._c.history.refresh(wait=False))
                version = self._c.version
                if self._screens and version != self._drawn:
                    self._drawn = version
                    self._screens[self._tab].refresh()
                    self._show_signal()
                    self.page.update()
            except Exception:
                # A page whose session is gone can no longer be updated: stop its ticker.
                log.debug("stopping the ticker of a closed page", exc_info=True)
                return


def _invite_in(route: str | None) -> str | None:
    """The invite of a route such as `/join?i=TOKEN` (the web app's link) or `/?i=TOKEN`
    (where the phone's deep link `mobilebackup://join?i=TOKEN` lands: its host is not part
    of the route), else None."""
    if not route:
        return None
    parts = urlsplit(route)
    if parts.path.rstrip("/") not in ("", "/join"):
        return None
    token = parse_qs(parts.query).get("i")
    return f"{APP_SCHEME}://join?i={token[0]}" if token else None


def make_main(controller: AppController) -> Callable[[ft.Page], Awaitable[None]]:
    """The Flet entry point for `controller`: one AppShell per page."""

    async def main(page: ft.Page) -> None:
        shell = AppShell(page, controller)
        with contextlib.suppress(asyncio.CancelledError):
            await shell.start()

    return main
