"""The api package's public surface, and what the Lambda entry point drags in on import."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_lambda_handler_imports_nothing_it_does_not_need() -> None:
    # A fresh interpreter: what `mobile_backup.api.handler` costs at cold start.
    code = (
        "import json, sys; import mobile_backup.api.handler; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    assert {"aws_lambda_powertools", "jwt", "pydantic"} <= loaded
    forbidden = {
        "httpx",
        "typer",
        "rich",
        "moto",
        "uvicorn",
        "anyio",
        "platformdirs",
        "PIL",
        "flet",
        # Cold start: settings are read without pydantic-settings.
        "pydantic_settings",
    }
    assert not loaded & forbidden


def test_a_cold_lambda_defers_what_its_first_request_may_not_need() -> None:
    # Powertools' OpenAPI models are needed only to serve /v1/openapi.json; boto3 only
    # once the first request builds the clients.
    code = (
        "import json, sys; import mobile_backup.api.handler, mobile_backup.ingest.handler; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    assert "aws_lambda_powertools.event_handler.openapi.models" not in loaded
    assert not {"boto3", "pydantic_settings", "s3transfer"} & loaded


def test_the_asgi_adapter_is_local_only_and_loaded_only_when_asked_for() -> None:
    """Lambda packages hold Lambda code: the local HTTP adapter lives with the local stack."""
    import importlib.util

    assert importlib.util.find_spec("mobile_backup.api._asgi") is None
    assert importlib.util.find_spec("mobile_backup.ingest._poller") is None
    code = (
        "import sys; import mobile_backup.local as local; "
        "before = 'mobile_backup.local._asgi' in sys.modules; local.ApiServer; "
        "print(before, 'mobile_backup.local._asgi' in sys.modules, 'uvicorn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True", "False"]
