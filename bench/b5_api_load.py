"""B5, the HTTP API under 1000 concurrent simulated users sending presign batches.

The local stack's API (the Lambda's resolver behind the ASGI adapter, under uvicorn) on the
moto emulator. Every simulated user is an asyncio task with its own connection; all start
together, each sends `requests` batches of `files` new files (random SHA-256) to
`POST /v1/uploads` with a real Cognito access token (a pool of signed-in users is shared by
the simulated ones), one after the other. Reported: requests per second over the whole
run, p50/p99 latency, and errors (any non-200 or transport failure).

Three processes share this host's cores: the load generator (the runner's process), the API
server (uvicorn + the ASGI adapter, in its own interpreter) and the moto emulator (its own
interpreter), so none of them waits on another's GIL; a client timeout counts as an error.
On AWS each request gets its own Lambda instance and DynamoDB, so the local p99 says how our
code behaves under contention, not what API Gateway would show. BENCHMARKS.md's target for this
scenario is "locally", so it is held to it as it is.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from bench._harness import BenchContext, Measurement, Target, scenario

SIGNED_IN_USERS = 10
# Resolver instances (and worker threads) of the API server. Each request holds one for its
# whole life and reserves up to 4 files at once (UploadService's default), so 8 keep the
# shared boto3 pool of 32 connections busy without queueing on it.
API_POOL_SIZE = 8
CLIENT_TIMEOUT_SECONDS = 120.0
READY_TIMEOUT_SECONDS = 60.0

# Each server runs in its own interpreter, apart from the load generator (this process),
# so that the client, the API and the emulator do not share one GIL. A server prints
# "READY <url>" once listening and exits when its stdin closes (when this process ends).
EMULATOR_CHILD = r"""
import sys
from mobile_backup.local import EmulatorServer
server = EmulatorServer(port=0)
server.start()
print("READY", server.endpoint_url, flush=True)
sys.stdin.read()
server.stop()
"""

API_CHILD = r"""
import json, sys
from mobile_backup.local import ApiAsgiApp, ApiServer
from mobile_backup.core import Settings
config = json.loads(sys.argv[1])
settings = Settings.explicit(**config["settings"])
server = ApiServer(ApiAsgiApp.for_settings(settings, pool_size=config["pool_size"]))
server.start()
print("READY", server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def _server_process(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start a server child; return it and the URL it announced."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    atexit.register(_stop, proc)
    stdout = proc.stdout
    assert stdout is not None
    ready: list[str] = []
    # A thread, so that a child that never announces itself cannot hang the run.
    reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT_SECONDS)
    line = ready[0] if ready else ""
    if not line.startswith("READY "):
        _stop(proc)
        raise RuntimeError(f"server child did not start (exit {proc.poll()}): {line!r}")
    return proc, line.split()[1]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        if proc.stdin:
            proc.stdin.close()  # the child's cue to stop
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stack(ctx: BenchContext) -> dict[str, Any]:
    import boto3

    from mobile_backup.core import EMULATOR_KEY
    from mobile_backup.local import create_user, local_settings, provision

    _, endpoint_url = _server_process(EMULATOR_CHILD)
    resources = provision(endpoint_url=endpoint_url, stack_name="bench-b5")
    settings = local_settings(resources, api_url=None, library=None)
    values = settings.model_dump(mode="python", exclude_none=True)
    values["aws_secret_access_key"] = EMULATOR_KEY
    values = {k: str(v) if not isinstance(v, bool | int) else v for k, v in values.items()}
    _, api_url = _server_process(
        API_CHILD, json.dumps({"settings": values, "pool_size": API_POOL_SIZE})
    )
    idp = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint_url,
        region_name=resources.region,
        aws_access_key_id=EMULATOR_KEY,
        aws_secret_access_key=EMULATOR_KEY,
    )
    tokens = []
    for n in range(SIGNED_IN_USERS):
        email, password = f"b5-{n}-{uuid.uuid4().hex[:6]}@example.com", "Bench-Pass-123"
        create_user(resources, email=email, password=password)
        tokens.append(
            idp.initiate_auth(
                ClientId=resources.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )["AuthenticationResult"]["AccessToken"]
        )
    return {"url": api_url, "tokens": tokens}


def _batch(files: int) -> dict[str, Any]:
    return {
        "files": [
            {
                "sha256": os.urandom(32).hex(),
                "size": 3_000_000,
                "filename": f"IMG_{n:04d}.jpg",
                "content_type": "image/jpeg",
            }
            for n in range(files)
        ]
    }


async def _load(
    url: str, tokens: list[str], *, users: int, requests: int, files: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    start_gate = asyncio.Event()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    timeout = httpx.Timeout(CLIENT_TIMEOUT_SECONDS)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def user(n: int) -> None:
            headers = {"authorization": f"Bearer {tokens[n % len(tokens)]}"}
            await start_gate.wait()
            for _ in range(requests):
                body = _batch(files)
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/uploads", json=body, headers=headers)
                    outcome = "ok" if response.status_code == 200 else str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                if outcome != "ok":
                    errors[outcome] = errors.get(outcome, 0) + 1

        tasks = [asyncio.create_task(user(n)) for n in range(users)]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start_gate.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "count": len(latencies),
        "elapsed": elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


@scenario("B5", "HTTP API under 1000 concurrent simulated users (presign batches)")
def api_load(ctx: BenchContext) -> list[Measurement]:
    users, requests, files = (100, 2, 10) if ctx.quick else (1000, 1, 10)
    stack = ctx.once("stack", lambda: _stack(ctx))
    ctx.record_setting("users", users)
    ctx.record_setting("requests per user", requests)
    ctx.record_setting("files per batch", files)
    ctx.record_setting(
        "processes",
        "3 on 2 cores: load generator (this), API server, moto emulator; loopback",
    )
    ctx.record_setting("server", f"uvicorn + ApiAsgiApp ({API_POOL_SIZE} resolver threads)")
    ctx.record_setting("client timeout (counted as an error)", f"{CLIENT_TIMEOUT_SECONDS:.0f} s")
    ctx.record_setting("signed-in Cognito users shared by the simulated ones", SIGNED_IN_USERS)
    result = asyncio.run(
        _load(stack["url"], stack["tokens"], users=users, requests=requests, files=files)
    )
    error_count = sum(result["errors"].values())
    details = {"requests": result["count"], "errors_by_kind": result["errors"]}
    return [
        Measurement(
            metric=f"{users} users x {requests} batches of {files}: throughput",
            ours=result["count"] / result["elapsed"],
            unit="req/s",
            details=details,
        ),
        Measurement(
            metric=f"{users} users: p50 latency",
            ours=result["p50"] * 1000,
            unit="ms",
        ),
        Measurement(
            metric=f"{users} users: p99 latency",
            ours=result["p99"] * 1000,
            unit="ms",
            target=Target.at_most(100, "ms"),
        ),
        Measurement(
            metric=f"{users} users: errors",
            ours=float(error_count),
            unit="requests",
            target=Target.at_most(0, "requests"),
            details=details,
        ),
    ]
