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
    # The multipart service and models: only a path under /v1/uploads needs them.
    assert not {"mobile_backup.api._multipart", "mobile_backup.core._wire_multipart"} & loaded


def test_the_wire_contract_serves_every_name_it_exports_whether_imported_yet_or_not() -> None:
    """`core.wire` imports its multipart half when one of its names is first asked for."""
    code = (
        "import sys; import mobile_backup.core.wire as wire; "
        "before = 'mobile_backup.core._wire_multipart' in sys.modules; "
        "from mobile_backup.core.wire import MultipartStart; "
        "from mobile_backup.core import _wire_multipart as m; "
        "missing = [n for n in wire.__all__ if not hasattr(wire, n)]; "
        "lazy = [n for n in wire.__all__ if getattr(wire, n) is getattr(m, n, None)]; "
        "print(before, MultipartStart is m.MultipartStart, missing, len(lazy) > 10)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True", "[]", "True"]
    import pytest

    from mobile_backup.core import wire

    with pytest.raises(AttributeError, match="NoSuchName"):
        wire.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


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
