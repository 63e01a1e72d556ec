"""A second factor at sign-in: the six-digit codes of an authenticator app (TOTP).

Cognito asks for one in two ways. A member who has set it up is asked for the current code
(`SOFTWARE_TOKEN_MFA`). Where the deployment requires it and the member has not set it up,
the sign-in first hands out a secret to add to the app (`MFA_SETUP`) and ends with the app's
first code. Either way the answer goes with the challenge's session, which Cognito keeps
for three minutes. The secret is shown as text and as an `otpauth://` link (a QR code of it
in a terminal), the form every authenticator app reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

ISSUER = "Mobile Backup"
DEVICE_NAME = "Mobile Backup"
_CODE = re.compile(r"\d{6}")


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    """What answering a second-factor challenge needs (never stored; the session is
    Cognito's and lasts minutes)."""

    kind: Literal["code", "setup"]
    username: str
    session: str
    secret: str | None = None
    """The key to add to the authenticator app (`setup` only)."""

    def otpauth_uri(self, *, label: str | None = None) -> str:
        """The secret as authenticator apps read it (a QR code of this, or a tap on a phone)."""
        if self.secret is None:
            raise ValueError("only a set-up challenge carries a secret")
        return otpauth_uri(self.secret, account=label or self.username)


def otpauth_uri(secret: str, *, account: str) -> str:
    name = quote(f"{ISSUER}:{account}", safe="@:")
    query = urlencode({"secret": secret, "issuer": ISSUER, "digits": 6, "period": 30})
    return f"otpauth://totp/{name}?{query}"


def clean_code(code: str) -> str | None:
    """The six digits of `code` as typed (spaces allowed: apps show "123 456"), or None."""
    digits = re.sub(r"\s", "", code)
    return digits if _CODE.fullmatch(digits) else None
