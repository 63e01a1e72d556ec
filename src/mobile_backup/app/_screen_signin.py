"""The sign-in screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import flet as ft

from mobile_backup.app._controller import AppController
from mobile_backup.app._errors import user_message
from mobile_backup.app._widgets import GAP, MAX_WIDTH, banner, icon_button, muted
from mobile_backup.client import (
    MfaChallenge,
    MfaRequiredError,
    NewPasswordRequiredError,
)
from mobile_backup.core import MobileBackupError, password_rules


def qr_png(text: str) -> bytes:
    """`text` as a QR code, a PNG the screen can draw (segno: pure Python)."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=5, border=2)
    return buffer.getvalue()


def password_field(label: str, *, on_submit: Callable[..., object]) -> ft.TextField:
    """A password field whose show/hide button has a name a screen reader says (Flet's own
    `can_reveal_password` button has none)."""
    field = ft.TextField(label=label, password=True, on_submit=on_submit)

    def toggle(_: object) -> None:
        field.password = not field.password
        field.suffix_icon = button()
        field.update()

    def button() -> ft.IconButton:
        shown = not field.password
        return icon_button(
            ft.Icons.VISIBILITY_OFF if shown else ft.Icons.VISIBILITY,
            f"{'Hide' if shown else 'Show'} {label.lower()}",
            toggle,
        )

    field.suffix_icon = button()
    return field


class SignInScreen:
    """Email and password; a wrong password or an unreachable service is said plainly.

    A new member who signs in with the temporary password they were given is asked for
    their own (with the pool's rules in words) and signed in with it. Where the deployment
    asks for a second factor, the code of an authenticator app ends the sign-in; a member
    who has none yet is shown the key to add (a QR code, and the key as text) first.
    """

    def __init__(
        self,
        controller: AppController,
        *,
        on_signed_in: Callable[[], None],
        on_joined: Callable[[], None] | None = None,
        message: str | None = None,
        invite: str | None = None,
    ) -> None:
        self._c = controller
        self._on_signed_in = on_signed_in
        self._on_joined = on_joined
        self.email = ft.TextField(
            label="Email",
            value=controller.invited_email or "",
            keyboard_type=ft.KeyboardType.EMAIL,
            autofocus=True,
            autocorrect=False,
            enable_suggestions=False,
        )
        self.password = password_field("Password", on_submit=self._submit)
        self.new_password = password_field("New password", on_submit=self._submit)
        self.new_password.visible = False
        self.code = ft.TextField(
            label="Code from your authenticator app",
            keyboard_type=ft.KeyboardType.NUMBER,
            autocorrect=False,
            enable_suggestions=False,
            max_length=7,
            on_submit=self._submit,
            visible=False,
        )
        self.key = ft.Column(visible=False, spacing=GAP)
        self._challenge: MfaChallenge | None = None
        self.rules = muted(f"Choose your own password: {password_rules()}.", size=13)
        self.rules.visible = False
        self.error = ft.Container(visible=False)
        self.join = JoinPanel(controller, on_joined=self._joined, link=invite)
        self.reset_code = ft.TextField(
            label="Code from the e-mail",
            autocorrect=False,
            enable_suggestions=False,
            on_submit=self._submit,
            visible=False,
        )
        self._resetting = False
        self.forgot = ft.TextButton("Forgot password?", on_click=self._forgot)
        self.busy = ft.ProgressRing(width=20, height=20, stroke_width=2, visible=False)
        self.button = ft.FilledButton(
            "Sign in", icon=ft.Icons.LOGIN, on_click=self._submit, height=48, expand=True
        )
        if message:
            self._show_error(message)
        self.sign_in_part = ft.Column(
            [
                self.email,
                self.password,
                self.reset_code,
                self.rules,
                self.new_password,
                self.key,
                self.code,
                self.error,
                ft.Row([self.button]),
                ft.Row([self.busy], alignment=ft.MainAxisAlignment.CENTER),
                ft.Row(
                    [
                        self.forgot,
                        ft.TextButton("Join with an invite", on_click=self.join.open),
                    ],
                    alignment=ft.MainAxisAlignment.CENTER,
                    wrap=True,
                ),
            ],
            spacing=GAP + 4,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            visible=controller.configured and invite is None,
        )
        if not self.sign_in_part.visible:
            self.join.show()
        form = ft.Container(
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
                        self.sign_in_part,
                        self.join.control,
                    ],
                    spacing=GAP + 4,
                    horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
                ),
            ),
        )
        # A phone's screen (with its keyboard up) is shorter than the form at its longest
        # (a new password, the authenticator's QR code and key, the code): it scrolls.
        self.control = ft.Column(
            [form],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
        )

    def refresh(self) -> None:
        """Nothing on this screen follows the controller's state."""

    def _joined(self) -> None:
        if self._on_joined is not None:
            self._on_joined()

    def _show_error(self, message: str) -> None:
        self.error.content = banner(message)
        self.error.visible = True

    async def _submit(self) -> None:
        self.error.visible = False
        self.button.disabled = True
        self.busy.visible = True
        self.control.update()
        next_field: ft.TextField | None = None  # where the member types next, brought into view
        try:
            await asyncio.to_thread(self._sign_in)
        except NewPasswordRequiredError:
            next_field = self.new_password
            self.new_password.visible = self.rules.visible = True
            self.button.content = "Set password and sign in"
            self._show_error("This is a temporary password. Choose your own to finish signing in.")
        except MfaRequiredError as needed:
            self._ask_code(needed)
            next_field = self.code
        except MobileBackupError as exc:
            self._show_error(user_message(exc))
        except Exception as exc:  # never a raw exception on screen
            self._show_error(user_message(exc))
        else:
            self.password.value = self.code.value = ""
            self._challenge = None
            self._on_signed_in()
            return
        finally:
            self.button.disabled = False
            self.busy.visible = False
        self.control.update()
        if next_field is not None:  # on a phone the key and QR code push it off the screen
            await next_field.focus()  # type: ignore[no-untyped-call]  # Flet: untyped

    async def _forgot(self) -> None:
        """A forgotten password: a code by e-mail, then the code and a new password."""
        self.error.visible = False
        try:
            sent = await asyncio.to_thread(self._c.begin_password_reset, self.email.value or "")
        except Exception as exc:  # never a raw exception on screen
            self._show_error(user_message(exc))
            self.control.update()
            return
        self._resetting = True
        self.password.visible = self.forgot.visible = False
        self.reset_code.visible = self.new_password.visible = self.rules.visible = True
        self.button.content = "Set password and sign in"
        if sent.local_code is not None:
            said = f"The local stack sends no e-mail: its code is {sent.local_code}"
        else:
            said = (
                "If this address has an account here, a code is on its way to "
                f"{sent.destination or 'it'}. Enter it below with a new password."
            )
        self.error.content = banner(said, error=False)
        self.error.visible = True
        self.control.update()
        await self.reset_code.focus()  # type: ignore[no-untyped-call]  # Flet: untyped

    def _sign_in(self) -> None:
        """The step the screen is at: the password (and a new one), or the code."""
        if self._resetting:
            self._c.finish_password_reset(
                self.email.value or "", self.reset_code.value or "", self.new_password.value or ""
            )
            return
        if self._challenge is not None:
            self._c.answer_mfa(self._challenge, self.code.value or "")
            return
        new_password = self.new_password.value if self.new_password.visible else None
        self._c.sign_in(self.email.value or "", self.password.value or "", new_password)

    def _ask_code(self, needed: MfaRequiredError) -> None:
        """The password was right: the sign-in ends with the authenticator app's code."""
        self._challenge = needed.challenge
        for field in (self.email, self.password, self.new_password):
            field.disabled = True
        self.rules.visible = False
        self.code.visible = True
        self.button.content = "Verify and sign in"
        secret = needed.challenge.secret
        if needed.challenge.kind == "setup" and secret is not None:
            key = secret.upper()
            grouped = " ".join(key[i : i + 4] for i in range(0, len(key), 4))
            self.key.controls = [
                muted(
                    "This deployment asks for a code from an authenticator app at every "
                    "sign-in. Add this account to your app: scan the code, or type the key.",
                    size=13,
                ),
                ft.Row(
                    [
                        ft.Image(
                            src=qr_png(needed.challenge.otpauth_uri()),
                            width=200,
                            height=200,
                            semantics_label="QR code of the key for your authenticator app",
                        )
                    ],
                    alignment=ft.MainAxisAlignment.CENTER,
                ),
                ft.Text(f"Key: {grouped}", weight=ft.FontWeight.W_500),
                # On the phone itself there is nothing to scan: the app opens the key.
                ft.Row(
                    [
                        ft.TextButton(
                            "Add to an authenticator app on this device",
                            icon=ft.Icons.OPEN_IN_NEW,
                            url=needed.challenge.otpauth_uri(),
                        )
                    ],
                    alignment=ft.MainAxisAlignment.CENTER,
                ),
            ]
            self.key.visible = True
        else:
            self.error.content = banner(
                "Enter the code your authenticator app shows for Mobile Backup.", error=False
            )
            self.error.visible = True


class JoinPanel:
    """ "Join with an invite": the link the member was sent, pasted (or opened: the web
    app's /join?i=... and the phone's mobilebackup://join?i=... fill it in)."""

    def __init__(
        self, controller: AppController, *, on_joined: Callable[[], None], link: str | None
    ) -> None:
        self._c = controller
        self._on_joined = on_joined
        self.link = ft.TextField(
            label="Invite link",
            value=link or "",
            autocorrect=False,
            enable_suggestions=False,
        )
        self.error = ft.Container(visible=False)
        self.button = ft.FilledButton(
            "Join", icon=ft.Icons.GROUP_ADD, on_click=self._submit, height=48, expand=True
        )
        intro = (
            "Paste the invite link you were sent (or open it on this device)."
            if controller.configured
            else "This app is not set up for a household yet: open the invite link you were "
            "sent on this device, or paste it here."
        )
        self.control = ft.Column(
            [muted(intro, size=13), self.link, self.error, ft.Row([self.button])],
            spacing=GAP + 4,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            visible=False,
        )

    def show(self) -> None:
        self.control.visible = True

    def open(self) -> None:
        self.show()
        self.control.update()

    async def _submit(self) -> None:
        self.error.visible = False
        self.button.disabled = True
        self.control.update()
        try:
            await asyncio.to_thread(self._c.join, self.link.value or "")
        except Exception as exc:  # one sentence, never a raw exception on screen
            self.error.content = banner(user_message(exc))
            self.error.visible = True
        else:
            self._on_joined()
            return
        finally:
            self.button.disabled = False
        self.control.update()
