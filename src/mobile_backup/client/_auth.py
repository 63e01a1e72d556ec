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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import AwsFailure, aws_call, cognito_client
from mobile_backup.client._mfa import DEVICE_NAME, MfaChallenge, clean_code
from mobile_backup.client._tokens import Tokens, TokenStore
from mobile_backup.client.exceptions import (
    LoginError,
    MfaRequiredError,
    MfaSetupRequiredError,
    NewPasswordRequiredError,
    NotLoggedInError,
    TransportError,
)
from mobile_backup.core import (
    MobileBackupError,
    Settings,
    password_problem,
    password_rules,
    utcnow,
)

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


_MFA_CODE = "enter the six-digit code your authenticator app shows for Mobile Backup"
_MFA_SETUP = (
    "this deployment asks for a code from an authenticator app at every sign-in: add this "
    "account to one (scan the QR code or type the key), then enter the code it shows"
)
_MFA_ERRORS = {
    "CodeMismatchException": "that is not the code your authenticator app shows now; "
    "enter the current one",
    "EnableSoftwareTokenMFAException": "that is not the code your authenticator app shows "
    "now; enter the current one",
    "ExpiredCodeException": "that code has expired; enter the current one",
    # The challenge's session lasts three minutes (the emulator says it has none).
    "NotAuthorizedException": "the sign-in took too long; sign in again",
    "ResourceNotFoundException": "the sign-in took too long; sign in again",
    "InvalidParameterException": "this deployment does not offer authenticator apps",
}


_EMULATOR_CODE_HEADER = "x-moto-forgot-password-confirmation-code"
_RESET_ERRORS = {
    "CodeMismatchException": "that is not the code in the e-mail; check it and try again",
    "ExpiredCodeException": "that code has expired: ask for a new one",
    "LimitExceededException": "too many attempts; wait a few minutes and try again",
    "TooManyRequestsException": "too many attempts; wait a few minutes and try again",
    "TooManyFailedAttemptsException": "too many attempts; wait a few minutes and try again",
    # A member who never signed in has no password of their own to reset yet.
    "NotAuthorizedException": (
        "this account has not chosen its own password yet: sign in with the temporary "
        "password from the invitation (ask for a new invite if it expired)"
    ),
    "InvalidParameterException": (
        "this account has no verified e-mail to send a code to: ask whoever runs the "
        "household's backup to set a new temporary password"
    ),
}


@dataclass(frozen=True, slots=True)
class ResetSent:
    """Where the reset code went (masked by Cognito, e.g. `a***@e***`), and on the local
    stack, which sends no e-mail, the code itself."""

    destination: str | None
    local_code: str | None = None


def _translate_reset(exc: AwsFailure) -> MobileBackupError:
    if exc.aws_code in _RESET_ERRORS:
        return LoginError(_RESET_ERRORS[exc.aws_code], code="reset_failed")
    return _translate(exc)


def _translate_mfa(exc: AwsFailure) -> MobileBackupError:
    """The words for what Cognito answered to a second-factor step."""
    if exc.aws_code in _MFA_ERRORS:
        return LoginError(_MFA_ERRORS[exc.aws_code], code="mfa_failed")
    return _translate(exc)


def _translate(exc: AwsFailure) -> MobileBackupError:
    """The sign-in's words for what Cognito answered (the boundary's error, by its code)."""
    code = exc.aws_code
    if code in _LOGIN_ERRORS:
        return LoginError(_LOGIN_ERRORS[code])
    if code == "InvalidPasswordException":  # never the service's own words
        return LoginError(
            f"the new password was refused: it needs {password_rules()}",
            code="weak_password",
        )
    if not code:  # no answer at all
        return TransportError(f"cannot reach the sign-in service: {exc}")
    return LoginError(f"sign-in refused ({code})")


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
            self._cognito = (
                cognito_client(s, component="client") if s.local else _unsigned_cognito(s)
            )
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
            with aws_call("sign in"):
                resp = self._first_steps(username, password, new_password, client_id)
                mfa = self._mfa_challenge(resp, username)
        except AwsFailure as exc:
            raise _translate(exc) from exc
        if mfa is not None:
            if mfa.kind == "setup":
                raise MfaSetupRequiredError(_MFA_SETUP, mfa)
            raise MfaRequiredError(_MFA_CODE, mfa)
        return self._signed_in(resp, username)

    def answer_mfa(self, challenge: MfaChallenge, code: str) -> Tokens:
        """End a sign-in that asked for a second factor with the authenticator app's code
        (for a set-up challenge, the first code of the secret just added to the app)."""
        digits = clean_code(code)
        if digits is None:
            raise LoginError(
                "the code is the six digits your authenticator app shows", code="mfa_code_invalid"
            )
        client, client_id = self._client(), self._settings.require("client_id")
        try:
            with aws_call("check the code"):
                if challenge.kind == "setup":
                    verified = client.verify_software_token(
                        Session=challenge.session, UserCode=digits, FriendlyDeviceName=DEVICE_NAME
                    )
                    resp: Any = client.respond_to_auth_challenge(
                        ClientId=client_id,
                        ChallengeName="MFA_SETUP",
                        Session=verified["Session"],
                        ChallengeResponses={"USERNAME": challenge.username},
                    )
                else:
                    resp = client.respond_to_auth_challenge(
                        ClientId=client_id,
                        ChallengeName="SOFTWARE_TOKEN_MFA",
                        Session=challenge.session,
                        ChallengeResponses={
                            "USERNAME": challenge.username,
                            "SOFTWARE_TOKEN_MFA_CODE": digits,
                        },
                    )
        except AwsFailure as exc:
            raise _translate_mfa(exc) from exc
        return self._signed_in(resp, challenge.username)

    def _mfa_challenge(self, resp: Any, username: str) -> MfaChallenge | None:
        """The second-factor step Cognito's answer asks for, if any (a set-up step fetches
        the secret to add to the app)."""
        name = resp.get("ChallengeName")
        if name == "SOFTWARE_TOKEN_MFA":
            return MfaChallenge("code", username, resp["Session"])
        if name == "MFA_SETUP":
            found = self._client().associate_software_token(Session=resp["Session"])
            return MfaChallenge("setup", username, found["Session"], secret=found["SecretCode"])
        return None

    def _signed_in(self, resp: Any, username: str) -> Tokens:
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

    # A second factor for a signed-in member (where the deployment makes it optional) --------
    # A forgotten password ------------------------------------------------------------------
    def begin_password_reset(self, username: str) -> ResetSent:
        """Ask Cognito to e-mail the member a code for a new password.

        Whether the account exists is never revealed (the pool answers the same either
        way). The local stack sends no e-mail: its code comes back here to be shown.
        """
        username = username.strip()
        if not username:
            raise LoginError("enter your e-mail first: the code is sent there")
        client_id = self._settings.require("client_id")
        try:
            with aws_call("ask for a password reset code"):
                resp = self._client().forgot_password(ClientId=client_id, Username=username)
        except AwsFailure as exc:
            if exc.aws_code == "UserNotFoundException":  # never reveal who has an account
                return ResetSent(destination=None)
            raise _translate_reset(exc) from exc
        details = resp.get("CodeDeliveryDetails", {})
        headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        local_code = headers.get(_EMULATOR_CODE_HEADER) if self._settings.local else None
        return ResetSent(destination=details.get("Destination"), local_code=local_code)

    def finish_password_reset(self, username: str, code: str, new_password: str) -> Tokens:
        """Set the new password with the e-mailed code, then sign in with it."""
        username, code = username.strip(), code.strip()
        if not code:
            raise LoginError("enter the code from the e-mail", code="reset_code_invalid")
        if problem := password_problem(new_password):
            raise LoginError(problem, code="weak_password")
        try:
            with aws_call("set the new password"):
                self._client().confirm_forgot_password(
                    ClientId=self._settings.require("client_id"),
                    Username=username,
                    ConfirmationCode=code,
                    Password=new_password,
                )
        except AwsFailure as exc:
            raise _translate_reset(exc) from exc
        return self.login(username, new_password)

    def begin_mfa_setup(self) -> str:
        """A new authenticator secret for the signed-in member (not in force until
        `finish_mfa_setup` checks a code of it)."""
        try:
            with aws_call("start setting up the authenticator app"):
                found = self._client().associate_software_token(AccessToken=self.access_token())
        except AwsFailure as exc:
            raise _translate_mfa(exc) from exc
        return str(found["SecretCode"])

    def finish_mfa_setup(self, code: str) -> None:
        """Check the app's first code, then ask for a code at every sign-in from now on."""
        digits = clean_code(code)
        if digits is None:
            raise LoginError(
                "the code is the six digits your authenticator app shows", code="mfa_code_invalid"
            )
        token = self.access_token()
        try:
            with aws_call("check the code"):
                self._client().verify_software_token(
                    AccessToken=token, UserCode=digits, FriendlyDeviceName=DEVICE_NAME
                )
                self._client().set_user_mfa_preference(
                    AccessToken=token,
                    SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
                )
        except AwsFailure as exc:
            raise _translate_mfa(exc) from exc

    def turn_off_mfa(self) -> None:
        """No code at sign-in any more (refused where the deployment requires one)."""
        try:
            with aws_call("turn off the authenticator app"):
                self._client().set_user_mfa_preference(
                    AccessToken=self.access_token(),
                    SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
                )
        except AwsFailure as exc:
            raise _translate_mfa(exc) from exc

    def _first_steps(
        self, username: str, password: str, new_password: str | None, client_id: str
    ) -> Any:
        """Password (and a new one when asked): Cognito's answer, tokens or a challenge."""
        if not self._settings.local:
            return self._srp_login(username, password, new_password)
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
        return resp

    def _srp_login(self, username: str, password: str, new_password: str | None) -> Any:
        """AWS: SRP, so the password never leaves the device (and the new one is set)."""
        from pycognito.aws_srp import AWSSRP
        from pycognito.exceptions import (
            ForceChangePasswordException,
            SoftwareTokenMFAChallengeException,
        )

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
        except SoftwareTokenMFAChallengeException as challenge:
            return challenge.get_tokens()  # Cognito's answer: the challenge and its session

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
            with aws_call("refresh the session"):
                resp = self._client().initiate_auth(
                    ClientId=self._settings.require("client_id"),
                    AuthFlow="REFRESH_TOKEN_AUTH",
                    AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
                )
        except AwsFailure as exc:
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
