"""The history as a gallery: thumbnails by capture month, a two-step badge on each, a filter,
and a detail sheet with the receipts.

Only a page of tiles is drawn at a time (more as the list is scrolled to its end), and each
tile's control is kept while the file's state is unchanged rather than built again at every
redraw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._errors import user_message
from mobile_backup.app._receipts import (
    Filter,
    HistoryEntry,
    badge_text,
    by_month,
    check_answer,
    detail_lines,
    offers_check,
    steps_text,
)
from mobile_backup.app._widgets import (
    FALLBACK,
    GAP,
    OK,
    PAD,
    WARN,
    banner,
    empty_state,
    icon_button,
    muted,
)

PAGE_TILES = 96
"""Tiles drawn at first, and added each time the list reaches its end."""
SPACING = 4
TILE_MIN = 140
"""A wide window shows more tiles per row, none narrower than this (a phone shows four)."""
_EMPTY = {
    Filter.ALL: (
        "No backups yet",
        "Files you back up appear here with their receipts: first in the cloud, then on your PC.",
    ),
    Filter.NOT_ON_PC: ("Everything is on your PC", "No file is waiting for your PC."),
    Filter.FAILED: ("Nothing failed", "Every file you backed up reached the cloud."),
}


class HistoryScreen:
    def __init__(
        self, controller: AppController, page: ft.Page, *, width: Callable[[], float]
    ) -> None:
        self._c = controller
        self._page = page
        self._width = width
        self._filter = Filter.ALL
        self._limit = PAGE_TILES
        self._drawn: tuple[Any, ...] = ()
        self._tiles: dict[str, tuple[tuple[Any, ...], ft.Control]] = {}
        self.summary = ft.Text("", size=13, color=ft.Colors.ON_SURFACE_VARIANT)
        self.refresh_button = icon_button(ft.Icons.REFRESH, "Refresh history", self.reload)
        self.chips = {
            f: ft.Chip(label=ft.Text(f.value), on_select=lambda _e, f=f: self._choose(f))
            for f in Filter
        }
        self.error = ft.Container(visible=False)
        self.more = ft.TextButton("Show more", icon=ft.Icons.EXPAND_MORE, on_click=self._more)
        self.grid = ft.ListView(
            spacing=SPACING, expand=True, on_scroll=self._scrolled, scroll_interval=200
        )
        self.control = ft.Column(
            [
                ft.Row(
                    [ft.Column([ft.Text("History", size=18, weight=ft.FontWeight.W_600),
                                self.summary], spacing=2, expand=True),
                     self.refresh_button],
                ),
                ft.Row(list(self.chips.values()), wrap=True, spacing=8),
                self.error,
                self.grid,
            ],
            spacing=GAP - 4,
            expand=True,
        )  # fmt: skip

    async def reload(self) -> None:
        """The member's own refresh: the whole history again, not only what changed."""
        await asyncio.to_thread(lambda: self._c.history.refresh(whole=True))

    def _choose(self, keep: Filter) -> None:
        self._filter = keep
        self._limit = PAGE_TILES
        self.refresh()
        self._page.update()

    def _more(self) -> None:
        self._limit += PAGE_TILES
        self.refresh()
        self._page.update()

    def _scrolled(self, e: ft.OnScrollEvent) -> None:
        if e.max_scroll_extent is None or e.pixels is None:
            return
        if e.pixels >= e.max_scroll_extent - 400 and self.more.visible:
            self._more()

    # Drawing ---------------------------------------------------------------------------
    def _columns(self) -> tuple[int, float]:
        room = self._width() - 2 * PAD
        cols = max(4, int(room // TILE_MIN))
        return cols, (room - (cols - 1) * SPACING) / cols

    def refresh(self) -> None:
        state = self._c.history.state
        thumbs = self._c.thumbs
        cols, edge = self._columns()
        key = (state, self._filter, self._limit, cols, round(edge), thumbs and thumbs.made)
        if key == self._drawn:
            return
        self._drawn = key
        for f, chip in self.chips.items():
            chip.selected = f == self._filter
        self.error.visible = state.error is not None
        if state.error is not None:
            self.error.content = banner(state.error)
        if not state.loaded:
            self.summary.value = "Loading…"
        else:
            self.summary.value = state.counts.summary() + ("" if state.complete else " so far…")
        months = by_month(state.entries, self._filter)
        if not months:
            self.more.visible = False
            title, text = _EMPTY[self._filter]
            self.grid.controls = (
                [empty_state(ft.Icons.PHOTO_LIBRARY_OUTLINED, title, text)]
                if state.loaded
                else [ft.Row([ft.ProgressRing()], alignment=ft.MainAxisAlignment.CENTER)]
            )
            return
        items: list[ft.Control] = []
        left = self._limit
        tiles: dict[str, tuple[tuple[Any, ...], ft.Control]] = {}
        for month in months:
            if left <= 0:
                break
            shown = month.entries[:left]
            left -= len(shown)
            items.append(
                ft.Container(
                    content=ft.Text(month.title, size=15, weight=ft.FontWeight.W_600),
                    padding=ft.Padding.only(top=8, bottom=2),
                )
            )
            for i in range(0, len(shown), cols):
                row = [
                    self._tile(e, edge, state.pcs, tiles, make=state.complete)
                    for e in shown[i : i + cols]
                ]
                items.append(ft.Row(row, spacing=SPACING))
        self._tiles = tiles
        total = sum(len(m.entries) for m in months)
        self.more.visible = total > self._limit
        if self.more.visible:
            items.append(
                ft.Row(
                    [muted(f"{total - self._limit} more"), self.more],
                    alignment=ft.MainAxisAlignment.CENTER,
                )
            )
        self.grid.controls = items

    def _tile(
        self,
        e: HistoryEntry,
        edge: float,
        pcs: tuple[str, ...],
        into: dict[str, tuple[tuple[Any, ...], ft.Control]],
        *,
        make: bool,
    ) -> ft.Control:
        # While pages still arrive the tiles may move: thumbnails are made for the final order.
        thumbs = self._c.thumbs
        picture = thumbs.get(e.sha256, make=make) if thumbs is not None else None
        label = badge_text(e, pcs)
        sig = (label, round(edge), picture is not None, e.in_cloud, e.pcs, pcs)
        kept = self._tiles.get(e.sha256)
        if kept is not None and kept[0] == sig:
            into[e.sha256] = kept
            return kept[1]
        control = _tile(e, picture, edge, pcs, label, on_open=lambda _e: self._open(e))
        into[e.sha256] = (sig, control)
        return control

    # The detail sheet --------------------------------------------------------------------
    def _open(self, e: HistoryEntry) -> None:
        # The tile may be older than the ledger's latest word on its file (a tile is kept
        # while its badge is unchanged): the sheet shows the latest.
        e = next((n for n in self._c.history.state.entries if n.sha256 == e.sha256), e)
        thumbs = self._c.thumbs
        picture = thumbs.get(e.sha256) if thumbs is not None else None
        head: list[ft.Control] = [
            _picture(e, picture, 96),
            ft.Column(
                [ft.Text(e.filename, size=16, weight=ft.FontWeight.W_600, max_lines=2,
                         overflow=ft.TextOverflow.ELLIPSIS),
                 muted(steps_text(e, self._c.history.state.pcs))],
                spacing=4,
                expand=True,
            ),
        ]  # fmt: skip
        lines: list[ft.Control] = [ft.Row(head, spacing=GAP)]
        for label, value in detail_lines(e):
            lines.append(
                ft.Row(
                    [
                        ft.Text(label, size=13, weight=ft.FontWeight.W_600, width=88),
                        ft.Text(
                            value,
                            size=13,
                            expand=True,
                            font_family_fallback=FALLBACK,
                            color=OK if value.startswith("✓") else None,
                        ),
                    ],
                    vertical_alignment=ft.CrossAxisAlignment.START,
                )
            )
        actions: list[ft.Control] = []
        if offers_check(e):
            answer = ft.Container(visible=False)
            lines.append(answer)
            actions.append(self._check_button(answer))
        actions.append(ft.TextButton("Close", on_click=lambda _e: self._page.pop_dialog()))
        lines.append(ft.Row(actions, alignment=ft.MainAxisAlignment.END))
        sheet = ft.BottomSheet(
            content=ft.Container(
                padding=PAD,
                content=ft.Column(lines, spacing=GAP - 4, tight=True, scroll=ft.ScrollMode.AUTO),
            ),
            show_drag_handle=True,
            scrollable=True,  # as tall as its content needs, up to the whole screen
        )
        self._page.show_dialog(sheet)

    def _check_button(self, answer: ft.Container) -> ft.Control:
        """ "Check now": the PCs check their copies at once instead of in a few hours."""

        async def check(_e: ft.Event[ft.OutlinedButton]) -> None:
            button.disabled = True
            button.update()
            try:
                said = check_answer(await asyncio.to_thread(self._c.check_now))
                error = False
            except Exception as exc:  # shown in the sheet; the button can be tried again
                said, error = user_message(exc), True
                button.disabled = False
            answer.content = banner(said, error=error)
            answer.visible = True
            answer.update()
            button.update()

        button = ft.OutlinedButton(
            "Check now", icon=ft.Icons.FACT_CHECK_OUTLINED, on_click=check,
            tooltip="Ask your PCs to check their copies now",
        )  # fmt: skip
        return button


def _picture(e: HistoryEntry, picture: bytes | None, edge: float) -> ft.Control:
    if picture is not None:
        return ft.Image(src=picture, width=edge, height=edge, fit=ft.BoxFit.COVER, border_radius=6)
    icon = ft.Icons.MOVIE_OUTLINED if e.is_video else ft.Icons.IMAGE_OUTLINED
    return ft.Container(
        width=edge,
        height=edge,
        border_radius=6,
        bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
        padding=4,
        alignment=ft.Alignment.CENTER,
        content=ft.Column(
            [
                ft.Icon(icon, color=ft.Colors.ON_SURFACE_VARIANT, size=min(32, edge / 3)),
                ft.Text(e.filename, size=10, max_lines=2, overflow=ft.TextOverflow.ELLIPSIS,
                        text_align=ft.TextAlign.CENTER, color=ft.Colors.ON_SURFACE_VARIANT),
            ],
            spacing=2,
            tight=True,
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
            alignment=ft.MainAxisAlignment.CENTER,
        ),
    )  # fmt: skip


def _badge(e: HistoryEntry, pcs: tuple[str, ...]) -> ft.Control:
    """Two steps in a pill: the cloud, then the PC (with a count when there are several)."""
    if e.failed:
        parts: list[ft.Control] = [ft.Icon(ft.Icons.ERROR, size=16, color=ft.Colors.ERROR)]
    else:
        cloud = ft.Icons.CLOUD_DONE if e.in_cloud else ft.Icons.CLOUD_UPLOAD_OUTLINED
        held = len(e.pcs)
        every = held > 0 and held >= max(1, len(pcs))
        # Each step differs in shape as well as colour: a pending step is an outline or an
        # hourglass, a done one a filled cloud with a tick or a computer.
        parts = [
            ft.Icon(cloud, size=16, color=OK if e.in_cloud else ft.Colors.OUTLINE),
            ft.Icon(
                ft.Icons.COMPUTER if held else ft.Icons.HOURGLASS_EMPTY,
                size=16,
                color=OK if every else (WARN if held else ft.Colors.OUTLINE),
            ),
        ]
        if len(pcs) > 1:
            parts.append(ft.Text(f"{held}/{len(pcs)}", size=10, weight=ft.FontWeight.W_600))
    return ft.Container(
        content=ft.Row(parts, spacing=2, tight=True),
        bgcolor=ft.Colors.with_opacity(0.9, ft.Colors.SURFACE),
        border_radius=10,
        padding=ft.Padding.symmetric(horizontal=4, vertical=1),
    )


def _tile(
    e: HistoryEntry,
    picture: bytes | None,
    edge: float,
    pcs: tuple[str, ...],
    label: str,
    *,
    on_open: Callable[[Any], None],
) -> ft.Control:
    body = ft.Stack(
        [
            _picture(e, picture, edge),
            ft.Container(content=_badge(e, pcs), right=3, bottom=3),
        ],
        width=edge,
        height=edge,
    )
    return ft.Semantics(
        label=label,
        button=True,
        content=ft.Container(content=body, on_click=on_open, ink=True, border_radius=6),
    )
