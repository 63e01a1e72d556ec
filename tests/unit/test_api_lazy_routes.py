"""A cold API registers (and builds the validation models of) only the routes of the path
its request asks for (issue 34, B6); any other path registers them all first, so it is
answered exactly as before."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, cast

from mobile_backup.api import create_app
from mobile_backup.core import Settings

EVENT = json.loads(
    (Path(__file__).parents[1] / "events" / "api_http_v2_get_files.json").read_text("utf-8")
)


class Refuse:
    """A verifier that refuses every token: each request here ends in a 401 or a 404."""

    def verify_header(self, header: str | None) -> Any:
        from mobile_backup.api.exceptions import TokenMissingError

        raise TokenMissingError("no token")


def request(app: Any, method: str, path: str) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["rawPath"] = path
    event["routeKey"] = f"{method} {path}"
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"].pop("authorization", None)
    return cast(dict[str, Any], app.resolve(event, None))


def paths(app: Any) -> set[str]:
    return {r.path for r in [*app._static_routes, *app._dynamic_routes]}


def test_a_request_registers_its_own_group_and_another_path_all_of_them() -> None:
    app = create_app(
        settings=Settings(bucket="b"),
        ledger=cast(Any, object()),
        s3=cast(Any, object()),
        verifier=cast(Any, Refuse()),
    )
    public = paths(app)
    assert "/v1/health" in public
    assert not any(p.startswith(("/v1/files", "/v1/uploads", "/v1/thumbs")) for p in public)

    assert request(app, "GET", "/v1/files")["statusCode"] == 401
    files = paths(app) - public
    assert "/v1/files/lookup" in files
    assert "/v1/pcs/check" in files
    assert not any(p.startswith(("/v1/uploads", "/v1/thumbs")) for p in files)

    assert request(app, "GET", "/v1/nowhere")["statusCode"] == 404
    assert {"/v1/uploads", "/v1/thumbs"} <= paths(app)
    # A method a path does not allow is a 405 whichever group asked first.
    fresh = create_app(
        settings=Settings(bucket="b"),
        ledger=cast(Any, object()),
        s3=cast(Any, object()),
        verifier=cast(Any, Refuse()),
    )
    assert request(fresh, "DELETE", "/v1/uploads")["statusCode"] == 405
