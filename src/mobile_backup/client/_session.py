"""One way to open an upload session: settings → sign-in → API client → journal → uploader.

The CLI and the app both use it, so both key the journal by deployment and user (a journal
is a cache: it spares hashing and lets multipart uploads resume; whether a file is backed up
is always the ledger's answer). A session belongs to the member signed in when it opened:
if another member signs in meanwhile, its requests fail with NotLoggedInError instead of
carrying the first member's files into the second member's account.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mobile_backup.client._api import ApiClient
from mobile_backup.client._auth import Authenticator
from mobile_backup.client._journal import Journal, journal_path
from mobile_backup.client._upload import Uploader
from mobile_backup.client.exceptions import NotLoggedInError
from mobile_backup.core import Settings


def account_key(settings: Settings, username: str) -> str:
    """Who and where: the deployment's API address and the member's sign-in name."""
    return f"{settings.require('api_url')}|{username}"


def account_id(settings: Settings, username: str) -> str:
    """`account_key` as a short, file-name-safe id (for per-account folders)."""
    return hashlib.sha256(account_key(settings, username).encode()).hexdigest()[:16]


class UploadSession:
    """The signed-in member's API client and journal; `uploader()` builds engines on them."""

    def __init__(self, settings: Settings, auth: Authenticator | None = None) -> None:
        self.settings = settings
        self.auth = auth or Authenticator(settings=settings)
        base_url = settings.require("api_url")
        self.auth.access_token()  # not signed in: say so now, not mid-run
        tokens = self.auth.current()
        if tokens is None:  # pragma: no cover - access_token() raised already
            raise NotLoggedInError("not signed in")
        self.username = tokens.username
        self.account = account_key(settings, self.username)
        self.api = ApiClient(base_url=base_url, token=self._token)
        self.journal = Journal(journal_path(settings.effective_state_dir, self.account))

    def _token(self, *, force_refresh: bool = False) -> str:
        """The member's token, and only theirs: after a sign-out or another sign-in, none."""
        tokens = self.auth.current()
        if tokens is None or tokens.username != self.username:
            raise NotLoggedInError(f"{self.username} signed out; their uploads stopped")
        return self.auth.access_token(force_refresh=force_refresh)

    def uploader(self, **kwargs: Any) -> Uploader:
        return Uploader(api=self.api, journal=self.journal, **kwargs)

    def close(self) -> None:
        self.api.close()
        self.journal.close()

    def __enter__(self) -> UploadSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
