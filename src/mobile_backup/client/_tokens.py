"""Cognito session tokens and where they are kept between runs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mobile_backup.core import utcnow

# Refresh this long before the access token expires, so a request never races expiry.
EXPIRY_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Tokens:
    """One signed-in session."""

    username: str
    access_token: str
    refresh_token: str | None
    expires_at: datetime

    def fresh(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) + EXPIRY_MARGIN < self.expires_at


class TokenStore:
    """A private JSON file (mode 0600) in the profile's state dir.

    Only the tokens are kept, never the password.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Tokens | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Tokens(
                username=data["username"],
                access_token=data["access_token"],
                refresh_token=data.get("refresh_token"),
                expires_at=datetime.fromisoformat(data["expires_at"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged session file is treated as signed out, not as a crash.
            return None

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(tokens)
        data["expires_at"] = tokens.expires_at.isoformat()
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path)

    def clear(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
