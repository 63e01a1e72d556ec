"""The whole system on one machine, on an embedded AWS emulator.

The Lambda functions' code runs here as it does on AWS: `ApiAsgiApp`/`ApiServer` serve the
API's resolver over HTTP (an ASGI adapter under uvicorn), `IngestPoller` feeds the ingest
handler from the emulator's events queue. None of this is in the Lambda bundle.

Imports stay light: moto and boto3 load only when a server starts or a stack is provisioned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobile_backup.infra import TemplateError, load_template, resolve
from mobile_backup.local._child import LocalServerError, ServerProcess
from mobile_backup.local._emulator import EmulatorServer
from mobile_backup.local._provision import LocalResources, ProvisionError, create_user, provision
from mobile_backup.local._stack import (
    LOCAL_PROFILE,
    LocalStack,
    agent_environment,
    local_settings,
    profile_values,
)

if TYPE_CHECKING:
    from mobile_backup.local._asgi import ApiAsgiApp, ApiServer, serve_api
    from mobile_backup.local._demo import DemoReport, DemoRow, run_demo
    from mobile_backup.local._lambda_context import LocalLambdaContext
    from mobile_backup.local._poller import IngestPoller

__all__ = [
    "LOCAL_PROFILE",
    "ApiAsgiApp",
    "ApiServer",
    "DemoReport",
    "DemoRow",
    "EmulatorServer",
    "IngestPoller",
    "LocalLambdaContext",
    "LocalResources",
    "LocalServerError",
    "LocalStack",
    "ProvisionError",
    "ServerProcess",
    "TemplateError",
    "agent_environment",
    "create_user",
    "load_template",
    "local_settings",
    "profile_values",
    "provision",
    "resolve",
    "run_demo",
    "serve_api",
]

_LAZY = {
    "DemoReport": "_demo",
    "DemoRow": "_demo",
    "run_demo": "_demo",
    "ApiAsgiApp": "_asgi",
    "ApiServer": "_asgi",
    "serve_api": "_asgi",
    "IngestPoller": "_poller",
    "LocalLambdaContext": "_lambda_context",
}


def __getattr__(name: str) -> Any:
    # The demo pulls in the client (httpx), the servers uvicorn and Powertools: load each
    # only when asked for.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"mobile_backup.local.{module}"), name)
