"""The backup queue screen: overall and per-file progress, speed, pause, errors, retry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._queue_items import SUCCEEDED, ItemState, QueueItem, QueueSnapshot
from mobile_backup.app._widgets import (
    FALLBACK,
    GAP,
    OK,
    PAD,
    banner,
    empty_state,
    icon_button,
    muted,
)

# A phone shows a few dozen rows at a time; drawing thousands would only slow it down.
MAX_ROWS = 150
# What needs the eye first: files moving, then failed ones, then those waiting.
_ORDER = {
    ItemState.UPLOADING: 0,
    ItemState.CHECKING: 0,
    ItemState.RECEIVING: 1,
    ItemState.FAILED: 2,
    ItemState.WAITING: 3,
    ItemState.NOT_MEDIA: 4,
}

_ICONS: dict[ItemState, tuple[ft.IconData, str]] = {
    ItemState.RECEIVING: (ft.Icons.DOWNLOADING, ft.Colors.OUTLINE),
    ItemState.WAITING: (ft.Icons.SCHEDULE, ft.Colors.OUTLINE),
    ItemState.CHECKING: (ft.Icons.FINGERPRINT, ft.Colors.PRIMARY),
    ItemState.UPLOADING: (ft.Icons.CLOUD_UPLOAD, ft.Colors.PRIMARY),
    ItemState.DONE: (ft.Icons.CLOUD_DONE, OK),
    ItemState.SKIPPED: (ft.Icons.CLOUD_DONE, OK),
    ItemState.FAILED: (ft.Icons.ERROR, ft.Colors.ERROR),
    ItemState.NOT_MEDIA: (ft.Icons.BLOCK, ft.Colors.OUTLINE),
}


class QueueScreen:
    def __init__(self, controller: AppController, *, go_pick: Callable[[], None]) -> None:
        self._c = controller
        self._go_pick = go_pick
        self.percent = ft.Text("0 %", size=32, weight=ft.FontWeight.BOLD)
        self.headline = ft.Text("", size=16, weight=ft.FontWeight.W_600)
        self.detail = ft.Text("", size=13, color=ft.Colors.ON_SURFACE_VARIANT)
        self.speed = ft.Text("", size=13, color=ft.Colors.ON_SURFACE_VARIANT, no_wrap=True)
        self.show_finished = False
        self.finished_toggle = ft.TextButton("Show", on_click=self._toggle_finished)
        self.bar = ft.ProgressBar(
            value=0, bar_height=8, border_radius=4, semantics_label="Overall progress"
        )
        self.pause = ft.FilledTonalButton("Pause", icon=ft.Icons.PAUSE, on_click=self._toggle)
        self.retry_all = ft.TextButton(
            "Retry failed", icon=ft.Icons.REFRESH, on_click=self._retry_all
        )
        self.clear = ft.TextButton("Clear finished", on_click=self._clear)
        self.notice = ft.Container(visible=False)
        self.summary = ft.Card(
            semantic_container=False,  # keep each line its own node for screen readers
            content=ft.Container(
                padding=PAD,
                content=ft.Column(
                    [
                        ft.Row(
                            [ft.Column([self.headline, self.detail, self.speed], spacing=2,
                                       expand=True),
                             self.percent],
                            vertical_alignment=ft.CrossAxisAlignment.CENTER,
                        ),
                        self.bar,
                        ft.Row([self.pause, self.retry_all, self.clear], wrap=True, spacing=8),
                    ],
                    spacing=GAP,
                    tight=True,
                ),
            )
        )  # fmt: skip
        self.rows = ft.Column(spacing=4)
        self.control = ft.Column(
            [self.notice, self.summary, self.rows], spacing=GAP, scroll=ft.ScrollMode.AUTO
        )
        self._drawn: QueueSnapshot | None = None

    def refresh(self) -> None:
        snap = self._c.queue.snapshot()
        blocked = self._c.runner.blocked_reason
        self.notice.visible = blocked is not None and snap.active
        if blocked is not None:
            self.notice.content = banner(blocked, error=False)
        if not snap.items:
            self.summary.visible = False
            self.rows.controls = [
                empty_state(
                    ft.Icons.CLOUD_QUEUE,
                    "Nothing to back up right now",
                    "Pick photos and videos on the Back up tab, or choose folders to back up "
                    "automatically.",
                ),
                ft.Row(
                    [ft.FilledButton("Choose what to back up", on_click=self._go_pick)],
                    alignment=ft.MainAxisAlignment.CENTER,
                ),
            ]
            return
        self.summary.visible = True
        self.percent.value = f"{snap.percent} %"
        self.headline.value = snap.headline()
        self.detail.value = snap.detail()
        self.speed.value = snap.rate()
        self.speed.visible = bool(self.speed.value)
        self.bar.value = snap.fraction
        self.bar.color = ft.Colors.ERROR if (snap.failed and not snap.active) else None
        self.pause.visible = snap.active
        self.pause.content = "Resume" if snap.paused else "Pause"
        self.pause.icon = ft.Icons.PLAY_ARROW if snap.paused else ft.Icons.PAUSE
        self.retry_all.visible = snap.failed > 0
        self.clear.visible = snap.count(ItemState.DONE, ItemState.SKIPPED, ItemState.NOT_MEDIA) > 0
        # Files in flight on top, then failed ones (they need the user), then the waiting;
        # finished files fold into one line that opens on request.
        items = sorted(
            (i for i in snap.items if i.state not in SUCCEEDED), key=lambda i: _ORDER[i.state]
        )
        done = [i for i in snap.items if i.state in SUCCEEDED]
        rows: list[ft.Control] = [self._row(i) for i in items[:MAX_ROWS]]
        if len(items) > MAX_ROWS:
            rows.append(muted(f"and {len(items) - MAX_ROWS} more files"))
        if done:
            rows.append(self._finished_row(len(done)))
            if self.show_finished:
                rows.extend(self._row(i) for i in done[:MAX_ROWS])
        self.rows.controls = rows

    def _finished_row(self, n: int) -> ft.Control:
        self.finished_toggle.content = "Hide" if self.show_finished else "Show"
        self.finished_toggle.tooltip = (
            f"{'Hide' if self.show_finished else 'Show'} the {n} finished files"
        )
        return ft.Container(
            padding=ft.Padding.symmetric(vertical=2, horizontal=12),
            content=ft.Row(
                [
                    ft.Icon(ft.Icons.CLOUD_DONE, color=OK),
                    ft.Text(
                        f"{n} {'file' if n == 1 else 'files'} finished",
                        expand=True,
                        weight=ft.FontWeight.W_500,
                    ),
                    self.finished_toggle,
                ],
                spacing=GAP,
                vertical_alignment=ft.CrossAxisAlignment.CENTER,
            ),
        )

    def _toggle_finished(self) -> None:
        self.show_finished = not self.show_finished
        self.refresh()
        self.control.update()

    def _row(self, item: QueueItem) -> ft.Control:
        icon, color = _ICONS[item.state]
        failed = item.state == ItemState.FAILED
        texts = ft.Column(
            [
                ft.Text(item.name, max_lines=1, overflow=ft.TextOverflow.ELLIPSIS,
                        weight=ft.FontWeight.W_500),
                ft.Text(item.status_text, size=12, font_family_fallback=FALLBACK,
                        color=ft.Colors.ERROR if failed else ft.Colors.ON_SURFACE_VARIANT),
            ],
            spacing=2,
            expand=True,
        )  # fmt: skip
        line: list[ft.Control] = [ft.Icon(icon, color=color), texts]
        if failed:
            line.append(
                icon_button(
                    ft.Icons.REFRESH, f"Retry {item.name}", lambda _e, p=item.path: self._retry(p)
                )
            )
        if item.state in (
            ItemState.FAILED,
            ItemState.WAITING,
            ItemState.RECEIVING,
            ItemState.NOT_MEDIA,
        ):
            line.append(
                icon_button(
                    ft.Icons.CLOSE, f"Remove {item.name}", lambda _e, p=item.path: self._remove(p)
                )
            )
        parts: list[ft.Control] = [
            ft.Row(line, spacing=GAP, vertical_alignment=ft.CrossAxisAlignment.CENTER)
        ]
        if item.state in (ItemState.UPLOADING, ItemState.CHECKING, ItemState.RECEIVING):
            value = item.received if item.state == ItemState.RECEIVING else item.fraction
            parts.append(ft.ProgressBar(value=value or None, bar_height=4, border_radius=2))
        return ft.Container(
            padding=ft.Padding.symmetric(vertical=8, horizontal=12),
            border_radius=8,
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOW,
            content=ft.Column(parts, spacing=6, tight=True),
        )

    def _toggle(self) -> None:
        if self._c.queue.paused:
            self._c.resume()
        else:
            self._c.pause()

    def _retry(self, path: Path) -> None:
        self._c.queue.retry(path)

    def _remove(self, path: Path) -> None:
        self._c.queue.remove(path)

    def _retry_all(self) -> None:
        self._c.queue.retry_failed()

    def _clear(self) -> None:
        self._c.queue.clear_finished()
