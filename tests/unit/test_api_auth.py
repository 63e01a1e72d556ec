"""TokenVerifier against a real JWKS endpoint on loopback and tokens signed with real keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mobile_backup.api import Principal, TokenVerifier
from mobile_backup.api._auth import bearer_token
from mobile_backup.api.exceptions import TokenExpiredError, TokenInvalidError, TokenMissingError
from mobile_backup.core import AuthError, ServiceError

POOL_ID = "us-east-1_TestPool1"
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL_ID}"
CLIENT_ID = "testclient123"
KID = "key-1"
SUB = "6f1c2f9e-0d7b-4c4e-9d61-3f3d3c1b2a10"


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is fetched."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{POOL_ID}/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture(scope="module")
def _jwks_server(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk = RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwk.update(kid=KID, alg="RS256", use="sig")
    with JwksServer({"keys": [jwk]}) as server:
        yield server


@pytest.fixture
def jwks_server(_jwks_server: JwksServer) -> JwksServer:
    _jwks_server.hits = 0
    return _jwks_server


@pytest.fixture
def verifier(jwks_server: JwksServer) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, client_id=CLIENT_ID, jwks_url=jwks_server.url)


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims shaped like a Cognito access token's."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": SUB,
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": "5c0c3f8e-2d4b-4f4e-8f0e-0e0e0e0e0e0e",
        "username": "alice@example.com",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(payload: dict[str, Any], key: rsa.RSAPrivateKey, *, kid: str = KID) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assert_rejected(verifier: TokenVerifier, token: str, error: type[AuthError]) -> AuthError:
    with pytest.raises(error) as caught:
        verifier.verify(token)
    assert caught.value.code == error.code
    return caught.value


def test_a_valid_access_token_gives_the_principal(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    principal = verifier.verify_header(f"Bearer {sign(claims(), signing_key)}")
    assert principal == Principal(sub=SUB, username="alice@example.com")


def test_the_bearer_scheme_is_case_insensitive(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert verifier.verify_header(f"bearer  {sign(claims(), signing_key)} ").sub == SUB


def test_an_expired_token_is_token_expired(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    token = sign(claims(iat=now - 7200, exp=now - 60), signing_key)
    _assert_rejected(verifier, token, TokenExpiredError)


def test_a_token_from_another_pool_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    other_issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OtherPool"
    error = _assert_rejected(
        verifier, sign(claims(iss=other_issuer), signing_key), TokenInvalidError
    )
    assert "another user pool" in error.message


def test_a_token_for_another_client_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    token = sign(claims(client_id="someoneelse"), signing_key)
    error = _assert_rejected(verifier, token, TokenInvalidError)
    assert "another app client" in error.message


def test_an_id_token_is_not_an_access_token(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    # A genuine Cognito id token: aud instead of client_id, token_use=id.
    id_token = sign(claims(token_use="id", client_id=None, aud=CLIENT_ID), signing_key)
    _assert_rejected(verifier, id_token, TokenInvalidError)
    # Even with a client_id claim added, token_use alone must reject it.
    error = _assert_rejected(
        verifier, sign(claims(token_use="id", aud=CLIENT_ID), signing_key), TokenInvalidError
    )
    assert "token_use='id'" in error.message


def test_a_token_signed_by_another_key_with_our_kid_is_invalid(
    verifier: TokenVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    error = _assert_rejected(verifier, sign(claims(), other_key), TokenInvalidError)
    assert "signature" in error.message


def test_a_token_with_a_flipped_payload_byte_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    header, payload, signature = sign(claims(), signing_key).split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Flip a byte inside the JSON so the payload still parses: the signature must catch it.
    at = raw.index(b"alice")
    raw[at] ^= 0x01  # 'a' -> '`'
    tampered = f"{header}.{_b64(bytes(raw))}.{signature}"
    assert jwt.decode(tampered, options={"verify_signature": False})["username"].startswith("`")
    _assert_rejected(verifier, tampered, TokenInvalidError)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_header_is_token_missing(verifier: TokenVerifier, header: str | None) -> None:
    with pytest.raises(TokenMissingError) as caught:
        verifier.verify_header(header)
    assert caught.value.code == "token_missing"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"])
def test_a_header_without_a_bearer_token_is_token_missing(header: str) -> None:
    with pytest.raises(TokenMissingError):
        bearer_token(header)


@pytest.mark.parametrize(
    "garbage", ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.%%%.abc", "x" * 2000]
)
def test_bearer_garbage_is_token_invalid(verifier: TokenVerifier, garbage: str) -> None:
    with pytest.raises(TokenInvalidError) as caught:
        verifier.verify_header(f"Bearer {garbage}")
    assert caught.value.code == "token_invalid"


def test_alg_none_is_rejected(verifier: TokenVerifier) -> None:
    header = _b64(json.dumps({"alg": "none", "kid": KID, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    error = _assert_rejected(verifier, f"{header}.{payload}.", TokenInvalidError)
    assert "'none'" in error.message


def test_hs256_signed_with_the_public_key_is_rejected(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    # The classic key-confusion attack: HMAC keyed with the (public) RSA key.
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    error = _assert_rejected(verifier, f"{header}.{payload}.{_b64(mac)}", TokenInvalidError)
    assert "HS256" in error.message


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "token_use", "client_id"])
def test_a_missing_required_claim_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, claim: str
) -> None:
    _assert_rejected(verifier, sign(claims(**{claim: None}), signing_key), TokenInvalidError)


def test_a_subject_unusable_as_a_key_part_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    # The sub becomes part of S3 keys; a validly signed but odd value must still not pass.
    _assert_rejected(verifier, sign(claims(sub="../other-user"), signing_key), TokenInvalidError)


def test_an_unknown_kid_is_invalid(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    error = _assert_rejected(verifier, sign(claims(), signing_key, kid="nope"), TokenInvalidError)
    assert "unknown key" in error.message


def test_a_token_issued_in_the_future_is_invalid(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    _assert_rejected(verifier, sign(claims(iat=now + 600), signing_key), TokenInvalidError)


def test_signing_keys_are_cached(
    verifier: TokenVerifier, jwks_server: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    for _ in range(3):
        verifier.verify(sign(claims(), signing_key))
    assert jwks_server.hits == 1


def test_an_unreachable_jwks_is_a_service_error_not_the_callers_fault(
    signing_key: rsa.RSAPrivateKey,
) -> None:
    # Bind then close a socket to get a port nothing listens on.
    with JwksServer({"keys": []}) as server:
        url = server.url
    verifier = TokenVerifier(issuer=ISSUER, client_id=CLIENT_ID, jwks_url=url)
    with pytest.raises(ServiceError):
        verifier.verify(sign(claims(), signing_key))


def test_an_injected_jwks_client_is_used(
    jwks_server: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(
        issuer=ISSUER, client_id=CLIENT_ID, jwks_client=jwt.PyJWKClient(jwks_server.url)
    )
    assert verifier.verify(sign(claims(), signing_key)).sub == SUB
    assert jwks_server.hits == 1


def test_exactly_one_key_source_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(issuer=ISSUER, client_id=CLIENT_ID)
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(
            issuer=ISSUER,
            client_id=CLIENT_ID,
            jwks_url="http://127.0.0.1:9/jwks.json",
            jwks_client=jwt.PyJWKClient("http://127.0.0.1:9/jwks.json"),
        )


def test_the_key_set_is_fetched_with_the_system_s_certificates_over_https_only() -> None:
    import ssl

    from mobile_backup.api._auth import _tls_context_for

    # https (Cognito): urllib's default context, the system's certificate authorities.
    assert (
        _tls_context_for("https://cognito-idp.eu-west-1.amazonaws.com/p/.well-known/jwks.json")
        is None
    )
    # Plain http (the local stack): a context that loads nothing and still verifies, so a
    # TLS connection through it would fail rather than trust anyone.
    bare = _tls_context_for("http://127.0.0.1:5000/p/.well-known/jwks.json")
    assert bare is not None
    assert (bare.verify_mode, bare.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert bare.cert_store_stats()["x509_ca"] == 0
