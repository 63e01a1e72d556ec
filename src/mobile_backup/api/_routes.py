"""The API's routes and error handlers, registered on a resolver by `create_app`.

Every route is authenticated unless declared public; the error handlers keep each failure a
JSON error with a stable code, and answer an unauthenticated caller 401 before anything
that would describe the API to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotMatched
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AwareDatetime

from mobile_backup import __version__
from mobile_backup.api._auth import Principal, TokenVerifier
from mobile_backup.api._join import HEADERS as JOIN_HEADERS
from mobile_backup.api._join import PAGE as JOIN_PAGE
from mobile_backup.api._members import MemberStatus
from mobile_backup.api._service import UploadService
from mobile_backup.api.exceptions import (
    InvalidJsonError,
    InvalidRequestError,
    MethodNotAllowedError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
    error_response,
    from_validation_errors,
)
from mobile_backup.core import AuthError
from mobile_backup.core.wire import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CheckResponse,
    FilesPage,
    FilesSummary,
    Health,
    LookupRequest,
    LookupResponse,
    StatusesPage,
    ThumbUploadRequest,
    ThumbUploads,
    ThumbUrlRequest,
    ThumbUrls,
    openapi_responses,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

API_TITLE = "Mobile Backup API"
BEARER_SCHEME = "bearerAuth"
_BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
_PRINCIPAL_KEY = "mobile_backup_principal"
MAX_CURSOR_LENGTH = 4096
SUMMARY_RECENT = 20
_POWERTOOLS_422 = "HTTPValidationError"


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


class Routes:
    """Route registration: every route is authenticated unless declared public, and the
    methods each path allows are remembered for exact 405 answers (our paths are static)."""

    def __init__(
        self, app: APIGatewayHttpResolver, verifier: TokenVerifier, status: MemberStatus
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.status = status
        self.allowed_methods: dict[str, set[str]] = {}
        self.public: set[tuple[str, str]] = set()

    def _authenticate(
        self, app: APIGatewayHttpResolver, next_middleware: NextMiddleware
    ) -> Response[Any]:
        principal = self.verifier.verify_header(app.current_event.headers.get("authorization"))
        # A removed member is refused within a minute. A GET changes none of the caller's
        # files: it runs while Cognito is asked, and its answer is dropped on a refusal.
        if app.current_event.request_context.http.method.upper() == "GET":
            app.context[_PRINCIPAL_KEY] = principal
            return self.status.check_while(principal, lambda: next_middleware(app))
        self.status.check(principal)
        app.context[_PRINCIPAL_KEY] = principal
        return next_middleware(app)

    def __call__(
        self, rule: str, method: str, *, is_public: bool = False, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        self.allowed_methods.setdefault(rule, set()).add(method)
        if is_public:
            self.public.add((method, rule))
        else:
            kwargs.update(security=_BEARER, middlewares=[self._authenticate])
        return self.app.route(rule, method, **kwargs)

    def auth_failure(self) -> Response[Any] | None:
        """A 401 unless the current route is public or the caller is authenticated."""
        event = self.app.current_event
        if (event.request_context.http.method.upper(), event.path) in self.public:
            return None
        try:
            self.verifier.verify_header(event.headers.get("authorization"))
        except AuthError as exc:
            return error_response(exc)
        return None


def public_routes(route: Routes) -> None:
    app = route.app

    @route("/v1/health", "GET", is_public=True, summary="Liveness check")
    def health() -> Health:
        return Health()

    @route(
        "/v1/join",
        "GET",
        is_public=True,
        summary="The page an invite link opens: what to do with the invite",
        responses={200: {"description": "An HTML page", "content": {"text/html": {}}}},
    )
    def join() -> Response[str]:
        return Response(200, "text/html; charset=utf-8", JOIN_PAGE, headers=dict(JOIN_HEADERS))

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


def file_routes(route: Routes, service: UploadService) -> None:
    app = route.app

    @route(
        "/v1/files",
        "GET",
        summary="List the caller's files, one page at a time",
        responses=openapi_responses(FilesPage, 400, 401, 422, 503),
    )
    def list_files(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)] = None,
        order: Annotated[
            Literal["id", "taken"],
            Query(description="`taken`: newest capture time first (the gallery's order)"),
        ] = "id",
        month: Annotated[
            str | None,
            Query(
                pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$",
                description="With `order=taken`: start at this month (YYYY-MM), then older",
            ),
        ] = None,
        changed_since: Annotated[
            AwareDatetime | None,
            Query(
                description=(
                    "Only the files whose entry changed after this time (ISO 8601 with a "
                    "zone), oldest change first; the page's `as_of` is the next one to ask "
                    "from (less a margin for the writers' clocks)"
                ),
            ),
        ] = None,
    ) -> FilesPage:
        principal = current_principal(app)
        if changed_since is not None:
            if order != "id" or month is not None:
                raise InvalidRequestError("changed_since comes in change order: no order or month")
            return service.list_changed(principal, since=changed_since, limit=limit, cursor=cursor)
        before = _month_end(month) if month else None
        return service.list_files(
            principal,
            limit=limit,
            cursor=cursor,
            by_taken=order == "taken" or month is not None,
            before=before,
        )

    @route(
        "/v1/files/summary",
        "GET",
        summary="Count the caller's files by status and show the most recent few",
        responses=openapi_responses(FilesSummary, 400, 401, 422, 503),
    )
    def files_summary(
        recent: Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)] = SUMMARY_RECENT,
    ) -> FilesSummary:
        return service.summary(current_principal(app), recent=recent)

    @route(
        "/v1/files/statuses",
        "GET",
        summary="List the caller's contents and the status of each, one page at a time",
        responses=openapi_responses(StatusesPage, 400, 401, 422, 503),
    )
    def list_statuses(
        prefix: Annotated[
            str,
            Query(
                pattern=r"^[0-9a-f]{0,2}$",
                description="Only the contents whose SHA-256 (hex) starts with this: a "
                "client reads the 16 one-digit prefixes side by side",
            ),
        ] = "",
        cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)] = None,
    ) -> StatusesPage:
        return service.statuses(current_principal(app), prefix=prefix, cursor=cursor)

    @route(
        "/v1/files/lookup",
        "POST",
        summary="Say which contents are backed up, reserving nothing (for a dry run)",
        responses=openapi_responses(LookupResponse, 400, 401, 415, 422, 503),
    )
    def lookup_files(
        body: LookupRequest,
        verdicts: Annotated[
            bool,
            Query(
                description="`false`: only whether each is backed up and on a PC (a dry run); "
                "`deletable` and `reason`, which cost reading every PC's receipt, are left "
                "at their defaults"
            ),
        ] = True,
    ) -> LookupResponse:
        return service.lookup(current_principal(app), body, verdicts=verdicts)

    @route(
        "/v1/pcs/check",
        "POST",
        summary="Ask the household's PCs to check their copies now (no body)",
        responses=openapi_responses(CheckResponse, 400, 401, 422, 503),
    )
    def check_pcs() -> CheckResponse:
        _no_body(app)
        return service.request_check(current_principal(app))


def _month_end(month: str) -> datetime:
    """`2024-05` → 2024-06-01T00:00Z: the files taken in that month or before come first."""
    year, number = int(month[:4]), int(month[5:])
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def _no_body(app: APIGatewayHttpResolver) -> None:
    """A route that takes no body takes none, or `{}`: anything else is a clear 400."""
    text = (app.current_event.decoded_body or "").strip()
    if not text:
        return
    try:
        data = json.loads(text)
    except ValueError:  # a JSONDecodeError, or a number longer than Python converts
        raise InvalidJsonError("the request body is not valid JSON") from None
    if data != {}:
        raise InvalidRequestError("this route takes no body: send none, or {}")


def thumb_routes(route: Routes, service: UploadService) -> None:
    app = route.app

    @route(
        "/v1/thumbs",
        "POST",
        summary="Ask where to keep thumbnails of backed-up files (kept after they expire)",
        responses=openapi_responses(ThumbUploads, 400, 401, 415, 422, 503),
    )
    def upload_thumbs(body: ThumbUploadRequest) -> ThumbUploads:
        return service.thumb_uploads(current_principal(app), body)

    @route(
        "/v1/thumbs/urls",
        "POST",
        summary="Short-lived links to the caller's own thumbnails",
        responses=openapi_responses(ThumbUrls, 400, 401, 415, 422, 503),
    )
    def thumb_urls(body: ThumbUrlRequest) -> ThumbUrls:
        return service.thumb_urls(current_principal(app), body)


def error_handlers(route: Routes) -> None:
    app = route.app
    auth_failure = route.auth_failure

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
        methods = route.allowed_methods.get(event.path)
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
