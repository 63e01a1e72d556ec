"""Settings: account, free up space, Wi-Fi only, the background, and (folded) tuning."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._deployments import known_deployments
from mobile_backup.app._prefs import MAX_PARALLEL, MIN_PARALLEL
from mobile_backup.app._screen_free import FreeUpCard
from mobile_backup.app._widgets import GAP, card, muted
from mobile_backup.core import load_settings

BACKGROUND_NOTE = (
    "Backups run while the app is open. Android and iOS pause apps in the background, so "
    "keep the app open for a large backup; whatever is left resumes the next time you open "
    "it."
)
WIFI_UNSUPPORTED = (
    "This device does not tell the app whether it is on Wi-Fi, so this setting works on "
    "phones only."
)


class SettingsScreen:
    def __init__(
        self,
        controller: AppController,
        page: ft.Page,
        *,
        on_sign_out: Callable[[], None],
        on_switched: Callable[[], None] | None = None,
    ) -> None:
        self._c = controller
        self._on_switched = on_switched or on_sign_out
        self.free_up = FreeUpCard(controller, page)
        self._on_sign_out = on_sign_out
        self.account = ft.Text("", weight=ft.FontWeight.W_500)
        self.parallel_label = ft.Text("")
        self.parallel = ft.Slider(
            min=MIN_PARALLEL,
            max=MAX_PARALLEL,
            divisions=MAX_PARALLEL - MIN_PARALLEL,
            value=controller.prefs.parallel,
            label="{value}",
            on_change_end=self._parallel_changed,
        )
        self.wifi = ft.Switch(
            label="Back up on Wi-Fi only", value=controller.prefs.wifi_only, on_change=self._wifi
        )
        self.wifi_note = muted("")
        others = [name for name in known_deployments() if name != controller.settings.profile]
        self.households = card(
            "Other households on this device",
            None,
            [
                ft.Row(
                    [
                        ft.Text(name, expand=True),
                        ft.OutlinedButton("Switch", on_click=lambda _e, n=name: self._switch(n)),
                    ]
                )
                for name in others
            ],
        )
        self.households.visible = bool(others)
        self.control = ft.Column(
            [
                ft.Text("Settings", size=18, weight=ft.FontWeight.W_600),
                card(
                    "Account",
                    None,
                    [
                        self.account,
                        muted(f"Deployment: {controller.deployment}"),
                        ft.Row(
                            [
                                ft.OutlinedButton(
                                    "Sign out", icon=ft.Icons.LOGOUT, on_click=self._sign_out
                                )
                            ]
                        ),
                    ],
                ),
                self.households,
                self.free_up.control,
                card("Network", None, [self.wifi, self.wifi_note]),
                card("In the background", None, [muted(BACKGROUND_NOTE)]),
                # Tuning a parent never needs to see: folded away.
                ft.Card(
                    content=ft.ExpansionTile(
                        title="Advanced",
                        subtitle="Tuning for a fast or a slow connection",
                        controls=[self.parallel_label, self.parallel],
                        controls_padding=ft.Padding.symmetric(horizontal=16, vertical=8),
                        expanded_cross_axis_alignment=ft.CrossAxisAlignment.STRETCH,
                    )
                ),
            ],
            spacing=GAP,
            scroll=ft.ScrollMode.AUTO,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,  # every card one width
        )

    def refresh(self) -> None:
        prefs = self._c.prefs
        self.account.value = f"Signed in as {self._c.username or '—'}"
        self.parallel_label.value = f"Files uploaded at the same time: {prefs.parallel}"
        self.parallel.value = prefs.parallel
        self.wifi.value = prefs.wifi_only and self._c.wifi_supported
        self.wifi.disabled = not self._c.wifi_supported
        if self._c.wifi_supported:
            self.wifi_note.value = "Uploads wait while the phone is on mobile data."
        else:
            self.wifi_note.value = WIFI_UNSUPPORTED

    def _parallel_changed(self) -> None:
        self._c.update_prefs(self._c.prefs.with_parallel(int(self.parallel.value or MIN_PARALLEL)))

    def _wifi(self) -> None:
        self._c.update_prefs(replace(self._c.prefs, wifi_only=bool(self.wifi.value)))

    async def _switch(self, profile: str) -> None:
        """Another household of this device: its own sign-in, queue and history."""
        settings = load_settings(profile, state_dir=self._c.settings.state_dir)
        await asyncio.to_thread(self._c.use, settings)
        self._on_switched()

    async def _sign_out(self) -> None:
        # Waits for the uploads in flight to stop (they resume at the next sign-in).
        await asyncio.to_thread(self._c.sign_out)
        self._on_sign_out()
