"""Choosing what to back up: pick files now, or folders for automatic backup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._errors import user_message
from mobile_backup.app._widgets import GAP, OK, PAD, banner, card, icon_button, muted

log = logging.getLogger(__name__)
UPLOAD_URL_SECONDS = 3600


class BackupScreen:
    """Picking works everywhere; folders only where the app can read the file system.

    In a browser the page cannot hand a file path to Python: the picked files are sent to
    the app's own server through signed upload URLs, into a private folder, and backed up
    from there (the queue shows them as "receiving" meanwhile).
    """

    def __init__(
        self,
        controller: AppController,
        page: ft.Page,
        picker: ft.FilePicker,
        *,
        on_queued: Callable[[], None],
    ) -> None:
        self._c = controller
        self._page = page
        self._picker = picker
        self._on_queued = on_queued
        self._incoming: dict[str, list[Path]] = {}
        picker.on_result = self._picked
        picker.on_upload = self._upload_progress
        self.message = ft.Container(visible=False)
        self.folders = ft.Column(spacing=4)
        self.who = ft.Text("", size=15, weight=ft.FontWeight.W_600)
        self.where = muted("")
        self.counts = ft.Row(wrap=True, spacing=6, run_spacing=6)
        self.collected = muted("")
        self.problem = ft.Text("", size=13, color=ft.Colors.ERROR, visible=False)
        status = ft.Card(
            semantic_container=False,
            content=ft.Container(
                padding=PAD,
                content=ft.Column(
                    [
                        ft.Row(
                            [ft.Icon(ft.Icons.ACCOUNT_CIRCLE, color=ft.Colors.PRIMARY, size=32),
                             ft.Column([self.who, self.where], spacing=0, expand=True)],
                            spacing=GAP,
                        ),
                        self.problem,
                        self.counts,
                        self.collected,
                    ],
                    spacing=GAP - 4,
                    tight=True,
                ),
            ),
        )  # fmt: skip
        pick = ft.FilledButton(
            "Choose photos and videos",
            icon=ft.Icons.ADD_PHOTO_ALTERNATE,
            height=48,
            action=ft.PickFiles(
                picker,
                allow_multiple=True,
                file_type=ft.FilePickerFileType.MEDIA,
                dialog_title="Photos and videos to back up",
                cancel_upload_on_window_blur=False,
            ),
        )
        self.control = ft.Column(
            [
                ft.Text("Back up", size=18, weight=ft.FontWeight.W_600),
                status,
                self.message,
                card(
                    "Photos and videos",
                    "Pick files to back up now. Files the cloud already has are skipped.",
                    [ft.Row([pick], wrap=True)],
                ),
                self._folder_card(),
            ],
            spacing=GAP,
            scroll=ft.ScrollMode.AUTO,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,  # every card one width
        )

    def _folder_card(self) -> ft.Control:
        if self._page.web:
            return card(
                "Automatic backup",
                None,
                [
                    muted(
                        "A browser cannot watch folders on your device. Install the app on "
                        "your phone or computer to back up chosen folders automatically; "
                        "here, pick files instead."
                    )
                ],
            )
        return card(
            "Automatic backup",
            "New photos and videos in these folders are queued when the app starts and "
            "while it is open.",
            [
                self.folders,
                ft.Row(
                    [
                        ft.OutlinedButton(
                            "Add a folder", icon=ft.Icons.CREATE_NEW_FOLDER, on_click=self._add
                        ),
                        ft.TextButton("Check now", icon=ft.Icons.SYNC, on_click=self._scan),
                    ],
                    wrap=True,
                ),
            ],
        )

    def refresh(self) -> None:
        seen = self._c.history.glance()
        self.who.value = seen.who
        self.where.value = seen.where
        self.collected.value = seen.collected
        self.problem.value = seen.problem or ""
        self.problem.visible = seen.problem is not None
        self.counts.controls = [_count(n, label) for label, n in seen.counts]
        folders = self._c.prefs.folders
        rows: list[ft.Control] = []
        for folder in folders:
            rows.append(
                ft.Row(
                    [
                        ft.Icon(ft.Icons.FOLDER, color=ft.Colors.PRIMARY),
                        ft.Text(
                            folder, expand=True, max_lines=2, overflow=ft.TextOverflow.ELLIPSIS
                        ),
                        icon_button(
                            ft.Icons.CLOSE,
                            f"Stop backing up {folder}",
                            lambda _e, f=folder: self._c.remove_folder(f),
                        ),
                    ],
                    spacing=GAP,
                )
            )
        if not rows:
            rows.append(muted("No folders chosen yet."))
        self.folders.controls = rows

    def _say(self, text: str, *, error: bool = True) -> None:
        self.message.content = banner(text, error=error)
        self.message.visible = True
        self.control.update()

    # Picking ---------------------------------------------------------------------------
    async def _picked(self, e: ft.FilePickerResultEvent) -> None:
        self.message.visible = False
        if not e.files:
            return
        if self._page.web:
            await self._receive(e.files)
            return
        paths = [Path(f.path) for f in e.files if f.path]
        unreadable = len(e.files) - len(paths)
        self._c.add_files(paths)
        if unreadable:
            self._say(f"{unreadable} of the picked files could not be opened by the app.")
        if paths:
            self._on_queued()

    async def _receive(self, files: list[ft.FilePickerFile]) -> None:
        uploads = []
        for f in files:
            dest = self._c.incoming_path(f.name)
            rel = dest.relative_to(self._c.upload_dir).as_posix()
            self._c.queue.expect(dest, size=f.size, name=f.name)
            if f.size == 0:
                # Nothing to send: browsers report no progress for an empty file, so it
                # would wait at "receiving… 0 %" forever. It is complete as it is.
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.touch()
                self._c.queue.received(dest)
                continue
            self._incoming.setdefault(f.name, []).append(dest)
            uploads.append(
                ft.FilePickerUploadFile(
                    upload_url=self._page.get_upload_url(rel, UPLOAD_URL_SECONDS), id=f.id
                )
            )
        self._on_queued()
        if not uploads:
            return
        try:
            await self._picker.upload(uploads)
        except Exception as exc:
            log.warning("the browser could not send the picked files: %s", exc)
            pending = [p for f in files for p in self._incoming.pop(f.name, [])]
            self._c.queue.fail(pending, "The browser could not send this file. Pick it again.")

    def _upload_progress(self, e: ft.FilePickerUploadEvent) -> None:
        waiting = self._incoming.get(e.file_name)
        if not waiting:
            return
        dest = waiting[0]
        if e.error:
            waiting.pop(0)
            self._c.queue.fail([dest], "The browser could not send this file. Pick it again.")
        elif e.progress is not None and e.progress >= 1.0:
            waiting.pop(0)
            self._c.queue.received(dest)
        elif e.progress is not None:
            self._c.queue.receiving(dest, e.progress)
        if not waiting:
            self._incoming.pop(e.file_name, None)

    # Folders ---------------------------------------------------------------------------
    async def _add(self) -> None:
        try:
            folder = await self._picker.get_directory_path(dialog_title="Folder to back up")
        except Exception as exc:
            self._say(user_message(exc))
            return
        if not folder:
            return
        queued = await asyncio.to_thread(self._c.add_folder, folder)
        if queued:
            self._on_queued()

    async def _scan(self) -> None:
        try:
            queued = await asyncio.to_thread(self._c.folders.scan)
        except Exception as exc:
            self._say(user_message(exc))
            return
        if queued:
            self._on_queued()
        else:
            self._say("No new photos or videos in the chosen folders.", error=False)


def _count(n: int | None, label: str) -> ft.Control:
    """One number of the status card, coloured only when it asks for something; a dash
    while it is not known."""
    color: str = ft.Colors.ON_SURFACE_VARIANT
    if label == "failed" and n:
        color = ft.Colors.ERROR
    elif label == "on your PC" and n:
        color = OK
    return ft.Container(
        content=ft.Text(
            f"{'—' if n is None else n} {label}", size=12, color=color, weight=ft.FontWeight.W_500
        ),
        padding=ft.Padding.symmetric(horizontal=8, vertical=3),
        border_radius=12,
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
    )
