"""The HTTP API: presigned uploads and the per-user ledger, on Lambda and locally.

`create_app` builds the Powertools resolver that Lambda runs (`api.handler.handler`);
`ApiAsgiApp` and `ApiServer` serve the same resolver over HTTP on a developer's machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobile_backup.api._app import create_app
from mobile_backup.api._auth import Principal, TokenVerifier

if TYPE_CHECKING:
    from mobile_backup.api._asgi import ApiAsgiApp, ApiServer, serve_api

__all__ = [
    "ApiAsgiApp",
    "ApiServer",
    "Principal",
    "TokenVerifier",
    "create_app",
    "serve_api",
]

_LAZY = {"ApiAsgiApp", "ApiServer", "serve_api"}


def __getattr__(name: str) -> Any:
    # The ASGI adapter is for local serving only; Lambda never imports it.
    if name in _LAZY:
        from mobile_backup.api import _asgi

        return getattr(_asgi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
