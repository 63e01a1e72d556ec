"""Verification of Cognito access tokens: the only source of a caller's identity.

A token is accepted only if it is RS256-signed by a key from the pool's JWKS, unexpired,
issued by the configured pool (`iss`), an *access* token (`token_use`), and minted for the
configured app client (`client_id`; Cognito access tokens carry no `aud`).
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

import jwt

from mobile_backup.api.exceptions import TokenExpiredError, TokenInvalidError, TokenMissingError
from mobile_backup.core import ServiceError, is_user_sub

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256",)
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "token_use", "client_id")
JWKS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller. `sub` names the user's partition and key prefix."""

    sub: str
    username: str
    token: str = field(default="", repr=False, compare=False)
    """The verified access token itself (Cognito's GetUser reads the member's name with it)."""


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not authorization or not authorization.strip():
        raise TokenMissingError("send the access token as 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenMissingError(
            f"the Authorization header uses the {scheme!r} scheme; send 'Bearer <token>'"
        )
    token = token.strip()
    if not token:
        raise TokenMissingError("the Authorization header has no token after 'Bearer'")
    return token


def _tls_context_for(url: str) -> ssl.SSLContext | None:
    """The TLS context the key set is fetched with: urllib's default (the system's CA
    certificates) for https; for plain http (the local stack's emulator) one that loads no
    certificates, since urllib builds a TLS context for every fetch even when it has no use
    for it (~40 ms of a cold start). It still verifies, so it fails rather than trusts if
    it ever met a TLS connection."""
    if url.lower().startswith("https:"):
        return None
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class TokenVerifier:
    """Verifies Cognito access tokens for one user pool and app client.

    The signing keys are fetched from the pool's JWKS URL (or an injected `PyJWKClient`)
    and cached, so a warm Lambda verifies without any network call.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        jwks_url: str | None = None,
        jwks_client: jwt.PyJWKClient | None = None,
        leeway_seconds: float = 0.0,
    ) -> None:
        if (jwks_url is None) == (jwks_client is None):
            raise ValueError("pass exactly one of jwks_url or jwks_client")
        self._issuer = issuer
        self._client_id = client_id
        self._leeway = leeway_seconds
        self._jwks = jwks_client or jwt.PyJWKClient(
            str(jwks_url),
            cache_keys=True,
            lifespan=3600,
            timeout=JWKS_TIMEOUT_SECONDS,
            ssl_context=_tls_context_for(str(jwks_url)),
        )

    @property
    def issuer(self) -> str:
        return self._issuer

    def prefetch_keys(self) -> bool:
        """Fetch and cache the pool's signing keys now (SnapStart's init), so that the first
        request verifies without a network call. False (logged) when they could not be
        fetched: the first request then fetches them as it would have anyway."""
        try:
            self._jwks.get_jwk_set()
        except jwt.PyJWKClientError as exc:
            logger.warning("could not fetch the signing keys ahead of the first request: %s", exc)
            return False
        return True

    @property
    def client_id(self) -> str:
        return self._client_id

    def verify_header(self, authorization: str | None) -> Principal:
        """Verify the token of an `Authorization` header value."""
        return self.verify(bearer_token(authorization))

    def verify(self, token: str) -> Principal:
        """Verify an access token and return who it belongs to; raise an AuthError if not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:  # DecodeError, a non-string kid, a bad `crit`
            raise TokenInvalidError("the bearer token is not a well-formed JWT") from exc
        # Checked before any key lookup: `none` and HMAC tokens never reach the verifier.
        if header.get("alg") not in ALGORITHMS:
            raise TokenInvalidError(f"token algorithm {header.get('alg')!r} is not accepted")
        if not isinstance(header.get("kid"), str):
            raise TokenInvalidError("the token names no signing key (kid)")

        key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError("the access token has expired; sign in again") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenInvalidError("the token was issued by another user pool") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenInvalidError(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalidError("the token's signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenInvalidError(f"the token is not valid: {exc}") from exc
        return dataclasses.replace(self._principal(claims), token=token)

    def _signing_key(self, token: str) -> Any:
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            # Not the caller's fault: the pool's key set could not be fetched.
            raise ServiceError(f"could not fetch the signing keys: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise TokenInvalidError("the token was signed by an unknown key") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalidError("the token is not a well-formed JWT") from exc

    def _principal(self, claims: dict[str, Any]) -> Principal:
        if claims.get("token_use") != "access":
            raise TokenInvalidError(
                f"expected an access token, got token_use={claims.get('token_use')!r}"
            )
        if claims.get("client_id") != self._client_id:
            raise TokenInvalidError("the token was issued to another app client")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not is_user_sub(sub):
            raise TokenInvalidError("the token's subject is not a valid user id")
        username = claims.get("username")
        return Principal(sub=sub, username=username if isinstance(username, str) else sub)
