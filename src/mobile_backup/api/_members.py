"""Each member's folder name, settled once: what the PC library and receipts call them.

The name comes from the member's own Cognito attributes, read with their verified access
token (`GetUser`, which Cognito authorises by that token, not by IAM): the preferred
username, else the e-mail's local part. The ledger then claims it once for good
(`Ledger.claim_folder`), so it is stable from the first upload on, whatever the member
later renames, and unique in the household.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mobile_backup.api._auth import Principal
from mobile_backup.api.exceptions import TokenInvalidError
from mobile_backup.core import Ledger, ServiceError, boto_errors, error_code, member_folder_name

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

logger = logging.getLogger(__name__)

MAX_CACHED = 1000


class MemberFolders:
    """The folder name of each caller, from the ledger (cached: it never changes)."""

    def __init__(
        self, ledger: Ledger, identity: Callable[[], CognitoIdentityProviderClient]
    ) -> None:
        self._ledger = ledger
        self._identity = identity
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def folder(self, principal: Principal) -> str:
        cached = self._cache.get(principal.sub)
        if cached is not None:
            return cached
        folder = self._ledger.member_folder(principal.sub)
        if folder is None:
            wanted = member_folder_name(self._name(principal))
            folder = self._ledger.claim_folder(principal.sub, wanted)
            logger.info("member %s is %r in the library", principal.sub, folder)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[principal.sub] = folder
        return folder

    def _name(self, principal: Principal) -> str:
        """Preferred username, else e-mail, from the member's own attributes."""
        try:
            resp = self._identity().get_user(AccessToken=principal.token)
        except boto_errors() as exc:
            if error_code(exc) == "NotAuthorizedException":
                raise TokenInvalidError("the token was revoked; sign in again") from exc
            if "@" in principal.username:  # the pool's username is the e-mail
                return principal.username
            raise ServiceError(f"could not read the member's name: {exc}") from exc
        attributes = {a["Name"]: a.get("Value", "") for a in resp.get("UserAttributes", [])}
        return (
            attributes.get("preferred_username")
            or attributes.get("email")
            or resp.get("Username")
            or principal.username
        )
