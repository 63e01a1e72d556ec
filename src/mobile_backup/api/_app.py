"""The HTTP API: a Powertools resolver with its routes (`_routes.py`), authentication and errors.

The same resolver runs in Lambda (behind API Gateway's HTTP API) and locally behind the
ASGI adapter in `_asgi.py`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    CORSConfig,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from mobile_backup.api._auth import TokenVerifier
from mobile_backup.api._members import MemberFolders, MemberStatus
from mobile_backup.api._routes import (
    Routes,
    current_principal,
    error_handlers,
    file_routes,
    public_routes,
    thumb_routes,
)
from mobile_backup.api._service import UploadService
from mobile_backup.aws import Bucket, cognito_client, dynamodb_client, s3_client
from mobile_backup.core import Settings, utcnow
from mobile_backup.ledger import Ledger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_s3 import S3Client


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def parse_json_body(text: str) -> Any:
    """`json.loads` for request bodies: nesting deeper than any of our shapes (32 levels)
    is a decode error, never a RecursionError (a 500) or a deep walk in the validator; so is
    an integer longer than Python converts (4,300 digits: a ValueError, else a 500)."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise json.JSONDecodeError(
                f"nested more than {MAX_JSON_DEPTH} levels deep", text, match.start()
            )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int("9" * 4301): sys.get_int_max_str_digits
        raise json.JSONDecodeError(f"a number too long to read ({exc})", text, 0) from exc


def _json_only_validation() -> Any:
    """Powertools' request validation, but a body must be declared JSON.

    Powertools also parses form-encoded and multipart bodies into the JSON model (and
    treats a missing Content-Type as JSON); the API speaks JSON only, so anything else is
    refused as an unsupported media type (415) before it is parsed.
    """
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIRequestValidationMiddleware,
    )

    class JsonOnlyValidation(OpenAPIRequestValidationMiddleware):
        def _get_body(self, app: Any) -> dict[str, Any]:
            content_type = app.current_event.headers.get("content-type", "")
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type != "application/json" and not media_type.endswith("+json"):
                raise RequestUnsupportedContentType(
                    "Unsupported content type",
                    errors=[
                        {
                            "type": "unsupported_content_type",
                            "loc": ("body",),
                            "msg": content_type,
                            "input": {},
                            "ctx": {},
                        }
                    ],
                )
            body: dict[str, Any] = super()._get_body(app)
            return body

    return JsonOnlyValidation()  # type: ignore[no-untyped-call]  # Powertools: untyped __init__


class ApiResolver(APIGatewayHttpResolver):
    """`APIGatewayHttpResolver` whose per-request event is per thread.

    Powertools keeps the current event and Lambda context as attributes of the shared
    `BaseRouter` class, so two threads resolving at once (in any two resolver instances)
    would read each other's request. Here they live in a thread-local instead. Lambda runs
    one request at a time and is unaffected; the ASGI adapter additionally gives each worker
    thread its own resolver instance, because routing context is per instance.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._request_state = threading.local()
        self._later: list[tuple[tuple[str, ...], Callable[[], None]]] = []
        self._later_lock = threading.Lock()
        super().__init__(**kwargs)

    def routes_later(self, prefixes: tuple[str, ...], register: Callable[[], None]) -> None:
        """Register a group of routes when a request first asks for a path under one of
        `prefixes` (a cold start builds the validation models of that group only); a path
        under none of the groups' prefixes registers them all first, so that it is
        answered (404, 405, the OpenAPI document) exactly as with every route there."""
        self._later.append((prefixes, register))

    def _register_for(self, path: str) -> None:
        if not self._later:
            return
        with self._later_lock:
            wanted = [g for g in self._later if path.startswith(g[0])]
            for group in wanted or list(self._later):
                group[1]()
                self._later.remove(group)

    def register_all(self) -> None:
        """Register every group now."""
        self._register_for("")

    @property
    def current_event(self) -> APIGatewayProxyEventV2:
        event = getattr(self._request_state, "event", None)
        if event is None:
            raise RuntimeError("no request is being resolved on this thread")
        return cast(APIGatewayProxyEventV2, event)

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._request_state.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        return cast("LambdaContext", getattr(self._request_state, "lambda_context", None))

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._request_state.lambda_context = value

    def resolve(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        if isinstance(event, dict):
            self._register_for(str(event.get("rawPath") or event.get("path") or ""))
        self._request_state.lambda_context = context
        try:
            return super().resolve(event, context)
        finally:
            # Do not keep the last request (and its token) alive in an idle worker.
            self._request_state.event = None
            self._request_state.lambda_context = None

    def _to_proxy_event(self, event: dict[str, Any]) -> APIGatewayProxyEventV2:
        proxy = cast(APIGatewayProxyEventV2, super()._to_proxy_event(event))
        self._request_state.event = proxy
        return proxy


class _LazyS3:
    """An S3 client built on first use, then shared (thread-safe).

    Building a boto3 S3 client loads its (large) service model and endpoint rules, about
    150 ms; a cold Lambda whose first request only reads the ledger (`GET /v1/files`)
    should not pay for it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = s3_client(self._settings, component="api")
                client = self._client
        return getattr(client, name)


def lazy_s3_client(settings: Settings) -> S3Client:
    """The S3 client `settings` describe, built when first used."""
    return cast("S3Client", _LazyS3(settings))


def _lazy_identity(settings: Settings) -> Callable[[], CognitoIdentityProviderClient]:
    """The Cognito client, built on first use: only a member's first upload needs it."""
    built: list[CognitoIdentityProviderClient] = []
    lock = threading.Lock()

    def get() -> CognitoIdentityProviderClient:
        with lock:
            if not built:
                built.append(cognito_client(settings, component="api"))
            return built[0]

    return get


def ledger_for(settings: Settings) -> Ledger:
    """The ledger `settings` describe (thread-safe; build once and share)."""
    return Ledger(dynamodb_client(settings, component="api"), settings.require("table"))


def verifier_for(settings: Settings) -> TokenVerifier:
    """The token verifier for the pool and app client `settings` describe (thread-safe)."""
    return TokenVerifier(
        issuer=settings.issuer,
        client_id=settings.require("client_id"),
        jwks_url=settings.effective_jwks_url,
    )


def _new_resolver() -> ApiResolver:
    app = ApiResolver(
        # Explicit: Powertools' debug mode (POWERTOOLS_DEV) prints whole events, bearer
        # tokens included; no environment variable may turn that on.
        debug=False,
        enable_validation=True,
        json_body_deserializer=parse_json_body,
        # Bearer tokens are never sent implicitly by browsers, so any origin is safe and lets
        # the web build of the app call the API.
        cors=CORSConfig(
            allow_origin="*",
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        ),
    )
    app._request_validation_middleware = _json_only_validation()
    return app


def create_app(
    *,
    settings: Settings,
    ledger: Ledger | None = None,
    s3: S3Client | None = None,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], datetime] | None = None,
    eager: bool = False,
) -> ApiResolver:
    """Build the API resolver; collaborators not passed in are built from `settings`.

    The S3 and Cognito clients, and the routes other than the public ones, are built when
    first needed unless `eager` (SnapStart's init, which should leave nothing for the first
    request to build): a cold start builds only what its request needs.
    """
    bucket = settings.require("bucket")
    if ledger is None:
        ledger = ledger_for(settings)
    if s3 is None:
        s3 = s3_client(settings, component="api") if eager else lazy_s3_client(settings)
    identity = _lazy_identity(settings)
    if eager:
        identity()
    members = MemberFolders(ledger, identity)
    service = UploadService(
        ledger=ledger,
        members=members,
        objects=Bucket(s3, bucket),
        clock=clock or utcnow,
        expiry_seconds=settings.presign_expiry_seconds,
    )
    app = _new_resolver()
    route = Routes(app, verifier or verifier_for(settings), MemberStatus(identity))
    public_routes(route)
    error_handlers(route)

    def uploads() -> None:  # its modules too are imported when first needed
        from mobile_backup.api._multipart import MultipartService
        from mobile_backup.api._upload_routes import upload_routes

        multipart = MultipartService(
            ledger=ledger,
            members=members,
            s3=s3,
            bucket=bucket,
            clock=clock or utcnow,
            expiry_seconds=settings.presign_expiry_seconds,
        )
        upload_routes(route, service, multipart)

    app.routes_later(("/v1/uploads",), uploads)
    app.routes_later(("/v1/files", "/v1/pcs"), lambda: file_routes(route, service))
    app.routes_later(("/v1/thumbs",), lambda: thumb_routes(route, service))
    if eager:  # SnapStart's snapshot holds every route, built
        app.register_all()
    return app


__all__ = ["ApiResolver", "create_app", "current_principal"]
