"""Signing in to the deployment's Cognito user pool and keeping the session fresh.

Against AWS the password is proven with SRP (pycognito) and never leaves the device.
Against the local emulator, USER_PASSWORD_AUTH is used instead because the emulator does
not check SRP proofs (it would accept any password); that flow is enabled on the local
stack's app client only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mobile_backup.client._tokens import Tokens, TokenStore
from mobile_backup.client.exceptions import (
    LoginError,
    NewPasswordRequiredError,
    NotLoggedInError,
    TransportError,
)
from mobile_backup.core import Settings, cognito_client, password_problem, password_rules, utcnow

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

log = logging.getLogger(__name__)

_LOGIN_ERRORS = {
    "NotAuthorizedException": "wrong email or password",
    "UserNotFoundException": "wrong email or password",  # never reveal who has an account
    "UserNotConfirmedException": "this account is not confirmed yet",
    "PasswordResetRequiredException": "this account must reset its password first",
    "TooManyRequestsException": "too many sign-in attempts; wait a minute and try again",
    "LimitExceededException": "too many sign-in attempts; wait a minute and try again",
}


_NEW_PASSWORD = (
    f"this is a temporary password: choose your own to finish signing in ({password_rules()})"
)


def _unsigned_cognito(settings: Settings) -> CognitoIdentityProviderClient:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # Sign-in calls need no AWS credentials: the phone and CLI never hold any.
    client: CognitoIdentityProviderClient = boto3.session.Session().client(
        "cognito-idp", region_name=settings.region, config=Config(signature_version=UNSIGNED)
    )
    return client


def _translate(exc: Exception) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _LOGIN_ERRORS:
            return LoginError(_LOGIN_ERRORS[code])
        if code == "InvalidPasswordException":  # never the service's own words
            return LoginError(
                f"the new password was refused: it needs {password_rules()}",
                code="weak_password",
            )
        return LoginError(f"sign-in refused ({code or 'unknown error'})")
    if isinstance(exc, BotoCoreError):
        return TransportError(f"cannot reach the sign-in service: {exc}")
    return exc


class Authenticator:
    """Signs in, stores the session, and hands out a fresh access token on demand."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: TokenStore | None = None,
        cognito: CognitoIdentityProviderClient | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store or TokenStore(settings.effective_state_dir / "session.json")
        self._cognito = cognito
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: Tokens | None = None

    @property
    def store(self) -> TokenStore:
        return self._store

    def _client(self) -> CognitoIdentityProviderClient:
        if self._cognito is None:
            s = self._settings
            self._cognito = cognito_client(s) if s.local else _unsigned_cognito(s)
        return self._cognito

    def _tokens_from(self, result: dict[str, Any], username: str, refresh: str | None) -> Tokens:
        return Tokens(
            username=username,
            access_token=result["AccessToken"],
            refresh_token=result.get("RefreshToken", refresh),
            expires_at=self._clock() + timedelta(seconds=int(result.get("ExpiresIn", 3600))),
        )

    def login(self, username: str, password: str, *, new_password: str | None = None) -> Tokens:
        """Sign in and store the session; raises LoginError with a readable reason.

        A member added with a temporary password must choose their own at the first
        sign-in: without `new_password` that raises NewPasswordRequiredError (ask for one,
        then call again with it); with it, the new password is set and the session starts.
        """
        username = username.strip()
        if not username or not password:
            raise LoginError("email and password are both required")
        if new_password is not None and (problem := password_problem(new_password)):
            raise LoginError(problem, code="weak_password")
        client_id = self._settings.require("client_id")
        try:
            if self._settings.local:
                resp: Any = self._client().initiate_auth(
                    ClientId=client_id,
                    AuthFlow="USER_PASSWORD_AUTH",
                    AuthParameters={"USERNAME": username, "PASSWORD": password},
                )
                if resp.get("ChallengeName") == "NEW_PASSWORD_REQUIRED" and new_password:
                    resp = self._client().respond_to_auth_challenge(
                        ClientId=client_id,
                        ChallengeName="NEW_PASSWORD_REQUIRED",
                        Session=resp["Session"],
                        ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password},
                    )
            else:
                resp = self._srp_login(username, password, new_password)
        except NewPasswordRequiredError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        if "AuthenticationResult" not in resp:
            challenge = resp.get("ChallengeName", "unknown")
            if challenge == "NEW_PASSWORD_REQUIRED":
                raise NewPasswordRequiredError(_NEW_PASSWORD)
            raise LoginError(f"sign-in needs a step this client does not support ({challenge})")
        tokens = self._tokens_from(resp["AuthenticationResult"], username, None)
        with self._lock:
            self._store.save(tokens)
            self._tokens = tokens
        log.info("signed in as %s", username)
        return tokens

    def _srp_login(self, username: str, password: str, new_password: str | None) -> Any:
        """AWS: SRP, so the password never leaves the device (and the new one is set)."""
        from pycognito.aws_srp import AWSSRP
        from pycognito.exceptions import ForceChangePasswordException

        srp = AWSSRP(
            username=username,
            password=password,
            pool_id=self._settings.require("user_pool_id"),
            client_id=self._settings.require("client_id"),
            client=self._client(),
        )
        if new_password is not None:
            return srp.set_new_password_challenge(new_password)
        try:
            return srp.authenticate_user()
        except ForceChangePasswordException as exc:
            raise NewPasswordRequiredError(_NEW_PASSWORD) from exc

    def logout(self) -> bool:
        with self._lock:
            self._tokens = None
            return self._store.clear()

    def current(self) -> Tokens | None:
        with self._lock:
            if self._tokens is None:
                self._tokens = self._store.load()
            return self._tokens

    def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid access token, refreshed transparently when it is about to expire."""
        with self._lock:
            tokens = self._tokens or self._store.load()
            if tokens is None:
                profile = self._settings.profile
                raise NotLoggedInError(
                    f"not signed in to profile {profile!r}: run `{self._login_command()}`"
                )
            if force_refresh or not tokens.fresh(self._clock()):
                tokens = self._refresh(tokens)
            self._tokens = tokens
            return tokens.access_token

    def _login_command(self) -> str:
        """The command that signs in to this profile, as the user would type it."""
        profile = self._settings.profile
        return (
            "mobile-backup login"
            if profile == "default"
            else f"mobile-backup --profile {profile} login"
        )

    def _refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise NotLoggedInError(f"the session has expired: run `{self._login_command()}` again")
        try:
            resp = self._client().initiate_auth(
                ClientId=self._settings.require("client_id"),
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
            )
        except Exception as exc:
            err = _translate(exc)
            if isinstance(err, LoginError):
                raise NotLoggedInError(
                    f"the session can no longer be refreshed: run `{self._login_command()}` again"
                ) from exc
            raise err from exc
        fresh = self._tokens_from(
            dict(resp["AuthenticationResult"]), tokens.username, tokens.refresh_token
        )
        self._store.save(fresh)
        return fresh
