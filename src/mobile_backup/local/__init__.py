"""The whole system on one machine, on an embedded AWS emulator.

Imports stay light: moto and boto3 load only when a server starts or a stack is provisioned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobile_backup.local._emulator import EmulatorServer
from mobile_backup.local._provision import LocalResources, ProvisionError, create_user, provision
from mobile_backup.local._stack import (
    DEMO_EMAIL,
    LOCAL_PROFILE,
    LocalStack,
    agent_environment,
    local_settings,
    profile_values,
)
from mobile_backup.local._template import TemplateError, load_template, resolve

if TYPE_CHECKING:
    from mobile_backup.local._demo import DemoReport, DemoRow, run_demo

__all__ = [
    "DEMO_EMAIL",
    "LOCAL_PROFILE",
    "DemoReport",
    "DemoRow",
    "EmulatorServer",
    "LocalResources",
    "LocalStack",
    "ProvisionError",
    "TemplateError",
    "agent_environment",
    "create_user",
    "load_template",
    "local_settings",
    "profile_values",
    "provision",
    "resolve",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    # The demo pulls in the client (httpx); load it only when asked for.
    if name in {"DemoReport", "DemoRow", "run_demo"}:
        from mobile_backup.local import _demo

        return getattr(_demo, name)
    raise AttributeError(name)
