"""A second factor at sign-in: codes from an authenticator app (TOTP).

`login` asks for a code when the member has set one up, and walks a member through setting
one up where the deployment requires it; `mfa setup` and `mfa off` are for deployments
where it is optional (`deploy --mfa optional`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from mobile_backup.commands._common import err, load_profile, out, safe

if TYPE_CHECKING:
    from mobile_backup.client import Authenticator, MfaRequiredError

app = typer.Typer(
    help="A code from an authenticator app at every sign-in (where offered).",
    short_help="Authenticator-app codes at sign-in.",
)


def print_qr(text: str) -> None:
    """`text` as a QR code in the terminal (two rows per line of text)."""
    import segno

    segno.make(text, error="m").terminal(out=sys.stdout, compact=True)


def show_secret(secret: str, uri: str) -> None:
    """The key to add to an authenticator app: a QR code, and the key to type instead."""
    out.print("Add this account to your authenticator app: scan the QR code, or type the key.")
    sys.stdout.flush()
    print_qr(uri)
    key = secret.upper()  # base32: apps take either case; upper is how Cognito spells it
    grouped = " ".join(key[i : i + 4] for i in range(0, len(key), 4))
    out.print(f"Key: [bold]{safe(grouped)}[/]")


def read_code(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().strip()
    return str(typer.prompt("Code from your authenticator app"))


def answer(auth: Authenticator, needed: MfaRequiredError, *, from_stdin: bool) -> None:
    """End a sign-in that asked for a code (setting the app up first when required)."""
    challenge = needed.challenge
    if challenge.kind == "setup" and challenge.secret is not None:
        err.print(
            "This deployment asks for a code from an authenticator app at every sign-in, "
            "and this account has none yet."
        )
        show_secret(challenge.secret, challenge.otpauth_uri())
    auth.answer_mfa(challenge, read_code(from_stdin))
    if challenge.kind == "setup":
        out.print("The authenticator app is set up: sign-ins now ask for its code.")


@app.command(short_help="Ask for an authenticator app's code at your sign-ins.")
def setup(
    code_stdin: bool = typer.Option(
        False, "--code-stdin", help="Read the app's code from standard input (for scripts)."
    ),
) -> None:
    """Ask for a code from an authenticator app at every sign-in to this deployment.

    Shows a QR code and a key to add to the app (Google Authenticator, Aegis, 1Password,
    ...), then checks the first code it shows. Signed-in sessions stay signed in.
    """
    from mobile_backup.client import Authenticator, otpauth_uri

    cfg = load_profile()
    auth = Authenticator(settings=cfg)
    tokens = auth.current()
    secret = auth.begin_mfa_setup()
    show_secret(secret, otpauth_uri(secret, account=tokens.username if tokens else cfg.profile))
    auth.finish_mfa_setup(read_code(code_stdin))
    out.print("Done: every sign-in now asks for a code from your authenticator app.")


@app.command(short_help="Stop asking you for a code at sign-in.")
def off() -> None:
    """Stop asking for a code at sign-in (where the deployment leaves it optional)."""
    from mobile_backup.client import Authenticator

    auth = Authenticator(settings=load_profile())
    auth.turn_off_mfa()
    out.print("Sign-ins no longer ask for a code from an authenticator app.")
