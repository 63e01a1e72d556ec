"""The "Free up space" card: check, read the preview, confirm, and only then delete."""

from __future__ import annotations

import asyncio

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._errors import user_message
from mobile_backup.app._format import human_bytes
from mobile_backup.app._free import FreePreview, can_touch_files, free, preview
from mobile_backup.app._widgets import banner, card, muted

RULE = (
    "Removes from this device only the photos and videos your PC has and has checked "
    "again since, in the folders chosen for automatic backup. They go to the trash."
)
OUT_OF_REACH = (
    "A browser cannot delete files on your device. Use the app installed on your phone or "
    "computer, or `mobile-backup free-up` on the computer."
)

NO_FOLDERS = "Choose folders for automatic backup first (on Back up): free-up looks in those."
# A browser cannot choose folders (Back up says so): say what works from here instead.
NO_FOLDERS_WEB = (
    "Free-up looks in the folders chosen for automatic backup, which a browser cannot "
    "choose. On this computer, run `mobile-backup free-up FOLDER` (it shows what would go "
    "before anything does), or open the desktop app with `mobile-backup app`."
)


class FreeUpCard:
    def __init__(self, controller: AppController, page: ft.Page) -> None:
        self._c = controller
        self._page = page
        self._plan: FreePreview | None = None
        self.message = ft.Container(visible=False)
        self.preview = ft.Column(spacing=4, visible=False)
        self.busy = ft.ProgressRing(width=20, height=20, visible=False)
        self.check = ft.OutlinedButton(
            "Check what can go", icon=ft.Icons.CLEANING_SERVICES, on_click=self._check
        )
        self.go = ft.FilledButton("Free up", icon=ft.Icons.DELETE_SWEEP, on_click=self._confirm)
        reachable = can_touch_files(web=page.web, client_ip=page.client_ip)
        body: list[ft.Control] = (
            [self.message, ft.Row([self.check, self.busy]), self.preview]
            if reachable
            else [muted(OUT_OF_REACH)]
        )
        self.control = card("Free up space", RULE, body)

    def _say(self, text: str, *, error: bool = True) -> None:
        self.message.content = banner(text, error=error)
        self.message.visible = True

    async def _check(self) -> None:
        self.message.visible = False
        self.preview.visible = False
        if not self._c.prefs.folders:
            self._say(NO_FOLDERS_WEB if self._page.web else NO_FOLDERS, error=False)
            return
        self.busy.visible = True
        self.check.disabled = True
        self.control.update()
        try:
            plan = await asyncio.to_thread(preview, self._c.session(), self._c.prefs.folders)
        except Exception as exc:
            self._say(f"{user_message(exc)} Nothing was deleted.")
            return
        finally:
            self.busy.visible = False
            self.check.disabled = False
        self._plan = plan
        n = len(plan.eligible)
        lines: list[ft.Control] = [
            ft.Text(
                f"{n} {'file' if n == 1 else 'files'} ({human_bytes(plan.size)}) can be "
                "removed from this device."
                if n
                else "Nothing can be removed yet.",
                weight=ft.FontWeight.W_500,
            )
        ]
        for reason, count in plan.kept_reasons[:4]:
            lines.append(muted(f"{count} stay: {reason}", size=12))
        if n:
            self.go.content = f"Free up {human_bytes(plan.size)}"
            lines.append(ft.Row([self.go]))
        self.preview.controls = lines
        self.preview.visible = True

    def _confirm(self) -> None:
        plan = self._plan
        if plan is None or not plan.eligible:
            return
        n = len(plan.eligible)
        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text("Free up space?"),
            content=ft.Text(
                f"Move {n} {'file' if n == 1 else 'files'} ({human_bytes(plan.size)}) from "
                "this device to the trash? Your PC keeps its verified copies."
            ),
            actions=[
                ft.TextButton("Cancel", on_click=lambda _e: self._page.pop_dialog()),
                ft.FilledButton("Move to trash", on_click=self._free),
            ],
        )
        self._page.show_dialog(dialog)

    async def _free(self) -> None:
        self._page.pop_dialog()
        plan, self._plan = self._plan, None
        self.preview.visible = False
        if plan is None:
            return
        thumbs = self._c.thumbs
        if thumbs is not None:  # the gallery keeps showing them: their thumbnails stay
            keep = [(i.sha256, i.path) for i in plan.eligible if i.sha256]
            await asyncio.to_thread(thumbs.keep_now, keep)
        done = await asyncio.to_thread(free, plan)
        gone = [f for f in done if f.freed]
        kept = len(done) - len(gone)
        text = f"Freed {human_bytes(sum(f.size for f in gone))}: {len(gone)} moved to the trash."
        if kept:
            text += f" {kept} kept (changed since the check)."
        self._say(text, error=False)
