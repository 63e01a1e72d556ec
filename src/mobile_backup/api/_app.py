"""The HTTP API: routes, authentication and error handling on a Powertools resolver.

The same resolver runs in Lambda (behind API Gateway's HTTP API) and locally behind the
ASGI adapter in `_asgi.py`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotMatched
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from mobile_backup import __version__
from mobile_backup.api._auth import Principal, TokenVerifier
from mobile_backup.api._members import MemberFolders, MemberStatus
from mobile_backup.api._multipart import MultipartService
from mobile_backup.api._service import UploadService
from mobile_backup.api.exceptions import (
    InvalidJsonError,
    MethodNotAllowedError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
    error_response,
    from_validation_errors,
)
from mobile_backup.core import (
    AuthError,
    Ledger,
    Settings,
    cognito_client,
    dynamodb_client,
    s3_client,
    utcnow,
)
from mobile_backup.core.wire import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FilesPage,
    Health,
    LookupRequest,
    LookupResponse,
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartPartsRequest,
    MultipartResult,
    MultipartStart,
    MultipartUpload,
    UploadRequest,
    UploadResponse,
    openapi_responses,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_s3 import S3Client

API_TITLE = "Mobile Backup API"
BEARER_SCHEME = "bearerAuth"
_BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
_PRINCIPAL_KEY = "mobile_backup_principal"
MAX_CURSOR_LENGTH = 4096
_POWERTOOLS_422 = "HTTPValidationError"


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
        super().__init__(**kwargs)

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


def current_principal(app: APIGatewayHttpResolver) -> Principal:
    """The verified caller of the request being resolved (set by the auth middleware)."""
    principal = app.context.get(_PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        # Only reachable if a protected route was registered without the middleware.
        raise RuntimeError("route requires a principal but none was authenticated")
    return principal


def openapi_document(app: APIGatewayHttpResolver) -> str:
    """The OpenAPI document as JSON, describing the error bodies this API really sends.

    Powertools adds a 422 with its own `HTTPValidationError` body to every operation; ours
    declare their 422 (with `ErrorBody`) where one can happen, so the generic one goes.
    """
    doc = json.loads(app.get_openapi_json_schema())
    generic = f"#/components/schemas/{_POWERTOOLS_422}"
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref") == generic:
                del responses["422"]
    schemas = doc.get("components", {}).get("schemas", {})
    # Referrers first: both of the others refer to ValidationError.
    for name in (_POWERTOOLS_422, "ResponseValidationError", "ValidationError"):
        if name in schemas and f"#/components/schemas/{name}" not in json.dumps(doc):
            del schemas[name]
    return json.dumps(doc, indent=2)


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
                    self._client = s3_client(self._settings)
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
                built.append(cognito_client(settings))
            return built[0]

    return get


def ledger_for(settings: Settings) -> Ledger:
    """The ledger `settings` describe (thread-safe; build once and share)."""
    return Ledger(dynamodb_client(settings), settings.require("table"))


def verifier_for(settings: Settings) -> TokenVerifier:
    """The token verifier for the pool and app client `settings` describe (thread-safe)."""
    return TokenVerifier(
        issuer=settings.issuer,
        client_id=settings.require("client_id"),
        jwks_url=settings.effective_jwks_url,
    )


def create_app(
    *,
    settings: Settings,
    ledger: Ledger | None = None,
    s3: S3Client | None = None,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], datetime] | None = None,
    eager: bool = False,
) -> APIGatewayHttpResolver:
    """Build the API resolver; collaborators not passed in are built from `settings`.

    The S3 and Cognito clients are built when first needed unless `eager` (SnapStart's
    init, which should leave nothing for the first request to build).
    """
    bucket = settings.require("bucket")
    if ledger is None:
        ledger = ledger_for(settings)
    if s3 is None:
        s3 = s3_client(settings) if eager else lazy_s3_client(settings)
    if verifier is None:
        verifier = verifier_for(settings)
    identity = _lazy_identity(settings)
    if eager:
        identity()
    members = MemberFolders(ledger, identity)
    status = MemberStatus(identity)
    service = UploadService(
        ledger=ledger,
        members=members,
        presigner=s3,
        bucket=bucket,
        clock=clock or utcnow,
        expiry_seconds=settings.presign_expiry_seconds,
    )
    multipart = MultipartService(
        ledger=ledger,
        members=members,
        s3=s3,
        bucket=bucket,
        clock=clock or utcnow,
        expiry_seconds=settings.presign_expiry_seconds,
    )

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
    # Our routes are all static paths, so (method, path) identifies the route.
    allowed_methods: dict[str, set[str]] = {}
    public: set[tuple[str, str]] = set()

    def authenticate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        principal = verifier.verify_header(app.current_event.headers.get("authorization"))
        status.check(principal)  # a removed member is refused within a minute
        app.context[_PRINCIPAL_KEY] = principal
        return next_middleware(app)

    def route(
        rule: str, method: str, *, is_public: bool = False, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a route; every route is authenticated unless declared public."""
        allowed_methods.setdefault(rule, set()).add(method)
        if is_public:
            public.add((method, rule))
        else:
            kwargs.update(security=_BEARER, middlewares=[authenticate])
        return app.route(rule, method, **kwargs)

    @route("/v1/health", "GET", is_public=True, summary="Liveness check")
    def health() -> Health:
        return Health()

    openapi_cache: list[str] = []

    @route(
        "/v1/openapi.json",
        "GET",
        is_public=True,
        include_in_schema=False,
        enable_validation=False,
    )
    def openapi() -> Response[str]:
        if not openapi_cache:  # generating the document is slow; it never changes
            # Configured here, not in create_app: Powertools' OpenAPI models cost ~70 ms to
            # import and only this route needs them (request validation does not).
            from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

            app.configure_openapi(
                title=API_TITLE,
                version=__version__,
                description="Presigned uploads and the per-user ledger of Mobile Backup.",
                security_schemes={BEARER_SCHEME: HTTPBearer(bearerFormat="JWT")},
            )
            openapi_cache.append(openapi_document(app))
        return Response(200, content_types.APPLICATION_JSON, openapi_cache[0])

    @route(
        "/v1/uploads",
        "POST",
        summary="Ask where to upload files (or learn they are backed up already)",
        responses=openapi_responses(UploadResponse, 400, 401, 415, 422, 503),
    )
    def create_uploads(body: UploadRequest) -> UploadResponse:
        return service.plan(current_principal(app), body)

    # Multipart routes name the upload in the body, not the path: S3 upload ids are opaque
    # (any printable characters), and the key they belong to is derived from the token and
    # the body's sha256 anyway. Static paths also keep the 405 answer exact.
    @route(
        "/v1/uploads/multipart",
        "POST",
        summary="Start (or resume) a multipart upload and presign its first parts",
        responses=openapi_responses(MultipartUpload, 400, 401, 415, 422, 503),
    )
    def start_multipart(body: MultipartStart) -> MultipartUpload:
        return multipart.start(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/parts",
        "POST",
        summary="Presign parts of a multipart upload (again), optionally listing those held",
        responses=openapi_responses(MultipartUpload, 400, 401, 404, 415, 422, 503),
    )
    def sign_parts(body: MultipartPartsRequest) -> MultipartUpload:
        return multipart.sign_parts(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/complete",
        "POST",
        summary="Check every part is held with its declared size, then assemble the file",
        responses=openapi_responses(MultipartResult, 400, 401, 404, 415, 422, 503),
    )
    def complete_multipart(body: MultipartCompleteRequest) -> MultipartResult:
        return multipart.complete(current_principal(app), body)

    @route(
        "/v1/uploads/multipart/abort",
        "POST",
        summary="Abort a multipart upload and free its parts",
        responses=openapi_responses(MultipartResult, 400, 401, 404, 415, 422, 503),
    )
    def abort_multipart(body: MultipartAbortRequest) -> MultipartResult:
        return multipart.abort(current_principal(app), body)

    @route(
        "/v1/files",
        "GET",
        summary="List the caller's files, one page at a time",
        responses=openapi_responses(FilesPage, 400, 401, 422, 503),
    )
    def list_files(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)] = None,
    ) -> FilesPage:
        return service.list_files(current_principal(app), limit=limit, cursor=cursor)

    @route(
        "/v1/files/lookup",
        "POST",
        summary="Say which contents are backed up, reserving nothing (for a dry run)",
        responses=openapi_responses(LookupResponse, 400, 401, 415, 422, 503),
    )
    def lookup_files(body: LookupRequest) -> LookupResponse:
        return service.lookup(current_principal(app), body)

    def auth_failure() -> Response[Any] | None:
        """A 401 unless the current route is public or the caller is authenticated."""
        event = app.current_event
        if (event.request_context.http.method.upper(), event.path) in public:
            return None
        try:
            verifier.verify_header(event.headers.get("authorization"))
        except AuthError as exc:
            return error_response(exc)
        return None

    # Powertools validates the request before any middleware runs; an unauthenticated
    # caller must still get the 401 (as behind API Gateway's JWT authorizer), not a 422
    # that describes the API to them.
    def on_invalid_request(exc: RequestValidationError) -> Response[Any]:
        return auth_failure() or error_response(from_validation_errors(exc.errors()))

    def on_unsupported_type(exc: RequestUnsupportedContentType) -> Response[Any]:
        content_type = app.current_event.headers.get("content-type", "")
        return auth_failure() or error_response(
            UnsupportedMediaTypeError(f"the body must be application/json, not {content_type!r}")
        )

    def on_undecodable_body(exc: UnicodeDecodeError) -> Response[Any]:
        # Powertools decodes the body as UTF-8 without catching the error; anything else
        # that fails to decode is a bug, not the caller's fault.
        try:
            _ = app.current_event.decoded_body
        except UnicodeDecodeError:
            return auth_failure() or error_response(
                InvalidJsonError("the request body is not UTF-8 encoded JSON")
            )
        return error_response(exc)

    def on_no_route(exc: RouteNotMatched) -> Response[Any]:
        event = app.current_event
        methods = allowed_methods.get(event.path)
        if methods:
            method = event.request_context.http.method.upper()
            return error_response(
                MethodNotAllowedError(
                    f"{method} is not allowed on {event.path}", allowed=sorted(methods)
                )
            )
        return error_response(RouteNotFoundError(f"no route for {event.path}"))

    def on_error(exc: Exception) -> Response[Any]:
        # Ours map to their status; anything else is a logged 500, still in our JSON shape.
        return error_response(exc)

    # Registered by call, not as decorators: Powertools' decorator is untyped. Lookup walks the
    # exception's MRO, so the most specific registration wins and `Exception` is the backstop.
    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (RequestValidationError, on_invalid_request),
        (RequestUnsupportedContentType, on_unsupported_type),
        (UnicodeDecodeError, on_undecodable_body),
        (RouteNotMatched, on_no_route),
        (Exception, on_error),
    ]
    for exc_class, on_exc in handlers:
        app.exception_handler(exc_class)(on_exc)
    return app


__all__ = ["ApiResolver", "create_app", "current_principal"]
