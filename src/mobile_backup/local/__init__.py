"""The whole system on one machine, on an embedded AWS emulator.

Imports stay light: moto and boto3 load only when a server starts or a stack is provisioned.
"""

from __future__ import annotations

from mobile_backup.local._emulator import EmulatorServer
from mobile_backup.local._provision import LocalResources, ProvisionError, create_user, provision
from mobile_backup.local._template import TemplateError, load_template, resolve

__all__ = [
    "EmulatorServer",
    "LocalResources",
    "ProvisionError",
    "TemplateError",
    "create_user",
    "load_template",
    "provision",
    "resolve",
]
