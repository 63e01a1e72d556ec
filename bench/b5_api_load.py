"""B5, the HTTP API under 1000 concurrent simulated users sending presign batches.

The local stack's API (the Lambda's resolver behind the ASGI adapter, under uvicorn) on the
moto emulator. Every simulated user is an asyncio task with its own connection; all start
together, each sends `requests` batches of `files` new files (random SHA-256) to
`POST /v1/uploads` with a real Cognito access token (a pool of signed-in users is shared by
the simulated ones), one after the other. Reported: requests per second over the whole
run, p50/p99 latency, and errors (any non-200 or transport failure).

This measures one uvicorn process and one moto process on this host, both Python; on AWS
each request gets its own Lambda instance and DynamoDB, so the local p99 says how our code
behaves under contention, not what API Gateway would show. BENCHMARKS.md's target for this
scenario is "locally", so it is held to it as it is.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from typing import Any

from bench._harness import BenchContext, Measurement, Target, scenario

SIGNED_IN_USERS = 10


def _stack(ctx: BenchContext) -> dict[str, Any]:
    import boto3

    from mobile_backup.api import ApiAsgiApp, ApiServer
    from mobile_backup.core import EMULATOR_KEY
    from mobile_backup.local import create_user, local_settings, provision

    emulator = ctx.emulator()
    resources = provision(endpoint_url=emulator.endpoint_url, stack_name="bench-b5")
    settings = local_settings(resources, api_url=None, library=None)
    server = ApiServer(ApiAsgiApp.for_settings(settings))
    server.start()
    idp = boto3.client(
        "cognito-idp",
        endpoint_url=emulator.endpoint_url,
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
    return {"server": server, "url": server.url, "tokens": tokens}


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
    timeout = httpx.Timeout(120.0)

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
    ctx.record_setting("server", "uvicorn + ApiAsgiApp (8 resolver threads) on moto, loopback")
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
