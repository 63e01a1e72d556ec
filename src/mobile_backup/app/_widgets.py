"""Small building blocks shared by the screens, so spacing and colours stay consistent."""

from __future__ import annotations

from typing import Any

import flet as ft

GAP = 12
PAD = 16
MAX_WIDTH = 560
GALLERY_WIDTH = 960
"""The gallery may use more of a wide window: more photos per row."""
# Our own colours, chosen for contrast on the light theme's surfaces (checked by a test):
# text at least 4.5:1, icons at least 3:1.
OK = "#1B5E20"
WARN = "#BF360C"
MUTED = ft.Colors.ON_SURFACE_VARIANT
# Roboto has no "✓". Phones and desktops fall back to a system font; a browser offline
# cannot fetch Flutter's fallback fonts, so web mode registers one flet-web already ships.
TICK_FONT = "Tick"
TICK_FONT_WEB_URL = "/assets/packages/flutter_math_fork/lib/katex_fonts/fonts/KaTeX_AMS-Regular.ttf"
FALLBACK = [TICK_FONT]


def icon_button(
    icon: ft.IconData, label: str, on_click: Any, *, color: str | None = None
) -> ft.IconButton:
    """An icon button a screen reader names: `label` is both the icon's semantics label
    (which becomes the button's accessible name) and the tooltip a pointer shows."""
    return ft.IconButton(
        icon=ft.Icon(icon, semantics_label=label, color=color), tooltip=label, on_click=on_click
    )


def muted(text: str, *, size: int = 13) -> ft.Text:
    return ft.Text(text, size=size, color=MUTED, font_family_fallback=FALLBACK)


def card(title: str, subtitle: str | None, body: list[ft.Control]) -> ft.Card:
    head: list[ft.Control] = [ft.Text(title, size=16, weight=ft.FontWeight.W_600)]
    if subtitle:
        head.append(muted(subtitle))
    return ft.Card(
        semantic_container=False,
        content=ft.Container(
            padding=PAD,
            content=ft.Column([*head, *body], spacing=GAP - 4, tight=True),
        ),
    )


def banner(message: str, *, error: bool = True) -> ft.Container:
    """A one-line message box: errors in the theme's error colours."""
    fg = ft.Colors.ON_ERROR_CONTAINER if error else ft.Colors.ON_SECONDARY_CONTAINER
    return ft.Container(
        bgcolor=ft.Colors.ERROR_CONTAINER if error else ft.Colors.SECONDARY_CONTAINER,
        border_radius=8,
        padding=12,
        content=ft.Row(
            [
                ft.Icon(ft.Icons.ERROR_OUTLINE if error else ft.Icons.INFO_OUTLINE, color=fg),
                ft.Text(message, color=fg, expand=True),
            ],
            spacing=GAP,
        ),
    )


def empty_state(icon: ft.IconData, title: str, body: str) -> ft.Container:
    return ft.Container(
        padding=ft.Padding.symmetric(vertical=48, horizontal=24),
        content=ft.Column(
            [
                ft.Icon(icon, size=56, color=ft.Colors.OUTLINE),
                ft.Text(title, size=18, weight=ft.FontWeight.W_600, text_align=ft.TextAlign.CENTER),
                ft.Text(body, color=MUTED, text_align=ft.TextAlign.CENTER),
            ],
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
            spacing=GAP,
        ),
    )
