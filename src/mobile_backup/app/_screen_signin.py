"""The sign-in screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._errors import user_message
from mobile_backup.app._widgets import GAP, MAX_WIDTH, banner, muted
from mobile_backup.client import NewPasswordRequiredError
from mobile_backup.core import MobileBackupError, password_rules


class SignInScreen:
    """Email and password; a wrong password or an unreachable service is said plainly.

    A new member who signs in with the temporary password they were given is asked for
    their own (with the pool's rules in words) and signed in with it.
    """

    def __init__(
        self,
        controller: AppController,
        *,
        on_signed_in: Callable[[], None],
        message: str | None = None,
    ) -> None:
        self._c = controller
        self._on_signed_in = on_signed_in
        self.email = ft.TextField(
            label="Email",
            keyboard_type=ft.KeyboardType.EMAIL,
            autofocus=True,
            autocorrect=False,
            enable_suggestions=False,
        )
        self.password = ft.TextField(
            label="Password",
            password=True,
            can_reveal_password=True,
            on_submit=self._submit,
        )
        self.new_password = ft.TextField(
            label="New password",
            password=True,
            can_reveal_password=True,
            on_submit=self._submit,
            visible=False,
        )
        self.rules = muted(f"Choose your own password: {password_rules()}.", size=13)
        self.rules.visible = False
        self.error = ft.Container(visible=False)
        self.busy = ft.ProgressRing(width=20, height=20, stroke_width=2, visible=False)
        self.button = ft.FilledButton(
            "Sign in", icon=ft.Icons.LOGIN, on_click=self._submit, height=48, expand=True
        )
        if message:
            self._show_error(message)
        self.control = ft.Container(
            alignment=ft.Alignment.TOP_CENTER,
            padding=ft.Padding.symmetric(vertical=40, horizontal=24),
            content=ft.Container(
                width=MAX_WIDTH,
                content=ft.Column(
                    [
                        ft.Icon(ft.Icons.CLOUD_SYNC, size=64, color=ft.Colors.PRIMARY),
                        ft.Text("Mobile Backup", size=28, weight=ft.FontWeight.BOLD),
                        muted("Your photos and videos, on your own PC, through your own cloud."),
                        ft.Container(height=8),
                        muted(f"Deployment: {controller.deployment}", size=12),
                        self.email,
                        self.password,
                        self.rules,
                        self.new_password,
                        self.error,
                        ft.Row([self.button]),
                        ft.Row([self.busy], alignment=ft.MainAxisAlignment.CENTER),
                    ],
                    spacing=GAP + 4,
                    horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
                ),
            ),
        )

    def refresh(self) -> None:
        """Nothing on this screen follows the controller's state."""

    def _show_error(self, message: str) -> None:
        self.error.content = banner(message)
        self.error.visible = True

    async def _submit(self) -> None:
        self.error.visible = False
        self.button.disabled = True
        self.busy.visible = True
        self.control.update()
        new_password = self.new_password.value if self.new_password.visible else None
        try:
            await asyncio.to_thread(
                self._c.sign_in, self.email.value, self.password.value, new_password
            )
        except NewPasswordRequiredError:
            self.new_password.visible = self.rules.visible = True
            self.button.content = "Set password and sign in"
            self._show_error("This is a temporary password. Choose your own to finish signing in.")
        except MobileBackupError as exc:
            self._show_error(user_message(exc))
        except Exception as exc:  # never a raw exception on screen
            self._show_error(user_message(exc))
        else:
            self.password.value = ""
            self._on_signed_in()
            return
        finally:
            self.button.disabled = False
            self.busy.visible = False
        self.control.update()
