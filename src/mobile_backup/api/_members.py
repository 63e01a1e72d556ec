"""Who the caller is in the household: still a member (asked once a minute), and their folder
name, settled once: what the PC library and receipts call them.

A token outlives its member: Cognito cannot recall an access token it issued (15 minutes),
so `MemberStatus` asks Cognito with the caller's own token (`GetUser`) at most once a
minute per token, and a member removed (`users remove`), disabled or signed out everywhere
is refused within a minute on every route.


The name comes from the member's own Cognito attributes, read with their verified access
token (`GetUser`, which Cognito authorises by that token, not by IAM): the preferred
username, else the e-mail's local part. The ledger then claims it once for good
(`Ledger.claim_folder`), so it is stable from the first upload on, whatever the member
later renames, and unique in the household.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mobile_backup.api._auth import Principal
from mobile_backup.api.exceptions import MemberRemovedError, TokenInvalidError
from mobile_backup.aws import (
    AwsFailure,
    AwsNotFoundError,
    NotAuthorizedError,
    aws_call,
)
from mobile_backup.core import LazyPool, member_folder_name
from mobile_backup.ledger import Ledger

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CACHED = 1000
FOLDER_ATTRIBUTES = ("preferred_username", "email")
"""The member's Cognito attributes their folder is named from, first found first: only an
administrator may write them (the template's app client does not let members)."""
CONFIRMED_FOR_SECONDS = 60.0
"""How long Cognito's word that a token's member is active is taken as still true."""


class MemberStatus:
    """Refuses callers who are no longer active members (see the module docstring)."""

    def __init__(
        self,
        identity: Callable[[], CognitoIdentityProviderClient],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity = identity
        self._clock = clock
        self._confirmed: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._asking = LazyPool(4, "member-check")

    def check(self, principal: Principal) -> None:
        """Returns if the caller is an active member; MemberRemovedError otherwise.

        If Cognito cannot be asked, the (verified) token is trusted for now and the next
        request asks again: an outage of Cognito must not stop every backup.
        """
        if self._confirmed_lately(principal):
            return
        self._ask(principal)

    def check_while(self, principal: Principal, read: Callable[[], T]) -> T:
        """`read()`'s answer if the caller is an active member (as `check`), Cognito asked
        while it runs: one round trip instead of two. Only for work that changes nothing
        (a removed member's request may run; its answer is never sent)."""
        if self._confirmed_lately(principal):
            return read()
        asked = self._asking().submit(self._ask, principal)
        try:
            answer = read()
        finally:
            asked.result()  # a refusal wins over whatever the read answered or raised
        return answer

    def _confirmed_lately(self, principal: Principal) -> bool:
        key = hashlib.sha256(principal.token.encode()).digest()  # no token kept in memory
        with self._lock:
            at = self._confirmed.get(key)
        return at is not None and self._clock() - at < CONFIRMED_FOR_SECONDS

    def _ask(self, principal: Principal) -> None:
        key = hashlib.sha256(principal.token.encode()).digest()
        now = self._clock()
        try:
            with aws_call("ask Cognito about the member"):
                self._identity().get_user(AccessToken=principal.token)
        except AwsNotFoundError as exc:
            raise MemberRemovedError(
                "this account is no longer a member of the household; ask its owner"
            ) from exc
        except NotAuthorizedError as exc:
            raise MemberRemovedError(
                "this sign-in was revoked (the account was removed, disabled or signed "
                "out everywhere); sign in again"
            ) from exc
        except AwsFailure as exc:
            logger.warning("could not confirm that %s is still a member: %s", principal.sub, exc)
            return
        with self._lock:
            if len(self._confirmed) >= MAX_CACHED:
                self._confirmed.clear()
            self._confirmed[key] = now


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
            with aws_call("read the member's name"):
                resp = self._identity().get_user(AccessToken=principal.token)
        except NotAuthorizedError as exc:
            raise TokenInvalidError("the token was revoked; sign in again") from exc
        except AwsFailure:
            if "@" in principal.username:  # the pool's username is the e-mail
                return principal.username
            raise
        attributes = {a["Name"]: a.get("Value", "") for a in resp.get("UserAttributes", [])}
        named = (attributes.get(name) for name in FOLDER_ATTRIBUTES)
        return next((n for n in named if n), None) or resp.get("Username") or principal.username
