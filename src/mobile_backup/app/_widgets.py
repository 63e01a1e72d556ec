"""Small building blocks shared by the screens, so spacing and colours stay consistent."""

from __future__ import annotations

import flet as ft

GAP = 12
PAD = 16
MAX_WIDTH = 560
OK = ft.Colors.GREEN_700
MUTED = ft.Colors.ON_SURFACE_VARIANT
# Roboto has no "✓". Phones and desktops fall back to a system font; a browser offline
# cannot fetch Flutter's fallback fonts, so web mode registers one flet-web already ships.
TICK_FONT = "Tick"
TICK_FONT_WEB_URL = "/assets/packages/flutter_math_fork/lib/katex_fonts/fonts/KaTeX_AMS-Regular.ttf"
FALLBACK = [TICK_FONT]


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


def step(done: bool, text: str, *, failed: bool = False) -> ft.Row:
    """One line of a receipt: a tick when the step is done."""
    if failed:
        icon, color = ft.Icons.ERROR, ft.Colors.ERROR
    elif done:
        icon, color = ft.Icons.CHECK_CIRCLE, OK
    else:
        icon, color = ft.Icons.SCHEDULE, ft.Colors.OUTLINE
    return ft.Row(
        [
            ft.Icon(icon, color=color, size=18),
            ft.Text(
                text,
                size=13,
                color=color if (done or failed) else MUTED,
                expand=True,
                font_family_fallback=FALLBACK,
            ),
        ],
        spacing=8,
        vertical_alignment=ft.CrossAxisAlignment.START,
    )
