"""The history screen: every backed-up file with its two-step receipt."""

from __future__ import annotations

import asyncio
from pathlib import PurePath

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._format import human_bytes, human_date
from mobile_backup.app._receipts import HistoryEntry
from mobile_backup.app._widgets import GAP, OK, PAD, banner, empty_state, muted, step

MAX_ROWS = 200
_VIDEO = {".mp4", ".mov", ".m4v", ".3gp", ".mkv", ".webm", ".avi"}


class HistoryScreen:
    def __init__(self, controller: AppController) -> None:
        self._c = controller
        self.summary = ft.Text("", size=13, color=ft.Colors.ON_SURFACE_VARIANT, expand=True)
        self.refresh_button = ft.IconButton(
            ft.Icons.REFRESH, tooltip="Refresh history", on_click=self.reload
        )
        self.error = ft.Container(visible=False)
        self.rows = ft.Column(spacing=GAP - 4)
        self.control = ft.Column(
            [
                ft.Row(
                    [ft.Column([ft.Text("History", size=18, weight=ft.FontWeight.W_600),
                                self.summary], spacing=2, expand=True),
                     self.refresh_button],
                ),
                muted("A photo is safe to delete from this phone once it says so: your "
                      "PC has it, and has checked it again since."),
                self.error,
                self.rows,
            ],
            spacing=GAP,
            scroll=ft.ScrollMode.AUTO,
        )  # fmt: skip

    async def reload(self) -> None:
        await asyncio.to_thread(self._c.refresh_history)

    def refresh(self) -> None:
        state = self._c.history
        self.error.visible = state.error is not None
        if state.error is not None:
            self.error.content = banner(state.error)
        self.summary.value = state.counts.summary() if state.loaded else "Loading…"
        if not state.entries:
            self.rows.controls = (
                [
                    empty_state(
                        ft.Icons.PHOTO_LIBRARY_OUTLINED,
                        "No backups yet",
                        "Files you back up appear here with their receipts: first in the "
                        "cloud, then on your PC.",
                    )
                ]
                if state.loaded
                else [ft.Row([ft.ProgressRing()], alignment=ft.MainAxisAlignment.CENTER)]
            )
            return
        rows: list[ft.Control] = [_entry(e) for e in state.entries[:MAX_ROWS]]
        if len(state.entries) > MAX_ROWS:
            rows.append(muted(f"and {len(state.entries) - MAX_ROWS} older files"))
        self.rows.controls = rows


def _entry(e: HistoryEntry) -> ft.Control:
    is_video = PurePath(e.filename).suffix.lower() in _VIDEO
    icon = ft.Icons.MOVIE_OUTLINED if is_video else ft.Icons.IMAGE_OUTLINED
    lines: list[ft.Control] = [
        ft.Row(
            [
                ft.Icon(icon, color=ft.Colors.PRIMARY),
                ft.Column(
                    [ft.Text(e.filename, weight=ft.FontWeight.W_600, max_lines=1,
                             overflow=ft.TextOverflow.ELLIPSIS),
                     muted(f"{human_bytes(e.size)} · {human_date(e.taken_at or e.created_at)}",
                           size=12)],
                    spacing=0,
                    expand=True,
                ),
            ],
            spacing=GAP,
        ),
    ]  # fmt: skip
    if e.failed_text is not None:
        lines.append(step(False, e.failed_text, failed=True))
    else:
        lines.append(step(e.in_cloud, e.cloud_text))
        lines.extend(step(e.on_pc, text) for text in e.pc_lines or (e.pc_text,))
    if e.safe_to_delete:
        lines.append(
            ft.Container(
                content=ft.Text("Safe to delete from this phone", size=12, color=OK),
                padding=ft.Padding.symmetric(vertical=2, horizontal=8),
                border_radius=12,
                border=ft.Border.all(1, OK),
            )
        )
    return ft.Card(
        semantic_container=False,
        content=ft.Container(padding=PAD - 4, content=ft.Column(lines, spacing=6, tight=True)),
    )
