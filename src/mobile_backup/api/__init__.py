"""The HTTP API: presigned uploads and the per-user ledger, as a Lambda function.

`create_app` builds the Powertools resolver that Lambda runs (`api.handler.handler`); the
local stack serves the same resolver over HTTP (`mobile_backup.local.ApiServer`).
"""

from __future__ import annotations

from mobile_backup.api._app import create_app, ledger_for, verifier_for
from mobile_backup.api._auth import Principal, TokenVerifier

__all__ = ["Principal", "TokenVerifier", "create_app", "ledger_for", "verifier_for"]
