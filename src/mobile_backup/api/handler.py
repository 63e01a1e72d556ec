"""The Lambda entry point of the HTTP API: `mobile_backup.api.handler.handler`.

The resolver (and its boto3 clients and cached signing keys) is built on the first
invocation and reused by every later one in the same container.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from mobile_backup.api._app import create_app, verifier_for
from mobile_backup.api.exceptions import error_body, status_for
from mobile_backup.core import (
    MobileBackupError,
    RedactingFilter,
    load_settings,
    reseed_after_restore,
    snapshot_init,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE_NAME = "mobile-backup-api"
PACKAGE_LOGGER = "mobile_backup"

logger = Logger(service=SERVICE_NAME)
# Presigned URLs and tokens never reach CloudWatch, whatever is logged (core/_redact.py).
logger.registered_handler.addFilter(RedactingFilter())

_app: APIGatewayHttpResolver | None = None


def get_app(*, eager: bool = False) -> APIGatewayHttpResolver:
    """The container's resolver, built from the environment on first use.

    `eager` (SnapStart's init) also builds what the first request would build lazily: the
    S3 and Cognito clients and the pool's signing keys, so that the snapshot holds them.
    """
    global _app
    if _app is None:
        # Our modules log through `logging`; send them into the same JSON stream. Done here,
        # not at import, so that importing this module changes no global logging state.
        logging.getLogger(PACKAGE_LOGGER)
        copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER})
        settings = load_settings()
        if eager:
            verifier = verifier_for(settings)
            verifier.prefetch_keys()
            _app = create_app(settings=settings, verifier=verifier, eager=True)
        else:
            _app = create_app(settings=settings)
    return _app


if snapshot_init():  # Lambda is initialising this function to snapshot it (SnapStart)
    reseed_after_restore()
    try:
        get_app(eager=True)
    except MobileBackupError:
        # The first invocation builds it again and answers the error in the API's format.
        logger.exception("the API could not start")


# Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: it carries the bearer token.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway HTTP API (payload v2.0) event."""
    try:
        app = get_app()
    except MobileBackupError as exc:
        # A misconfigured function still answers in the API's error format; the next
        # invocation tries again rather than caching the failure.
        logger.exception("the API could not start")
        return {
            "statusCode": status_for(exc),
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(error_body(exc)),
        }
    return app.resolve(event, context)
