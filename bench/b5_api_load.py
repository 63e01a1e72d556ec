"""B5, the HTTP API as a service: an open-loop load of presign batches, plus a burst.

The local stack's API (the Lambda's resolver behind the ASGI adapter, under uvicorn) on the
moto emulator, each in its own interpreter, with the load generator (the runner's process)
as the third: none of them waits on another's GIL; everything is on loopback.

**Service level (the target).** 100 simulated users, each sending a presign batch of 10 new
files (random SHA-256) to `POST /v1/uploads` every 10 s for 60 s (20 s with `--quick`), with
a real Cognito access token. The load is *open loop*: each user's sends are scheduled at a
fixed phase (spread over the first period) plus k x 10 s and fired at that instant whether
or not the previous answer has come back, so a slow server meets the same arrival rate
instead of slowing its own clients down (a closed loop hides queueing). Held to 0 errors and
p99 < 250 ms. Reported beside it, measured over the same window:

- CPU per request of the API server process (what Lambda would bill) and of the emulator
  (what the AWS side cost on this host), from the operating system's accounts (psutil);
- AWS calls per request, counted by the API process's own call recorder (the one the IAM
  test uses, `MOBILE_BACKUP_RECORD_AWS_CALLS`): calls that go over the network, and presigned
  URLs (signed locally, no call) apart.

**Burst (informational).** 1,000 users (100 with `--quick`) each sending one batch at the
same instant: about 10,000 requests a second would be needed to answer all within the
target, out of reach of two cores, so this row has no target; it shows that nothing fails
and how long the queue takes to drain. A client timeout counts as an error in both.

On AWS each request gets its own Lambda instance and DynamoDB, so the local p99 says how our
code behaves under contention, not what API Gateway would show.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import statistics
import time
import uuid
from typing import Any

from bench._harness import BenchContext, Measurement, Target, cpu_seconds, scenario

SIGNED_IN_USERS = 10
# Resolver instances (and worker threads) of the API server. Each request holds one for its
# whole life and reserves up to 4 files at once (UploadService's default), so 8 keep the
# shared boto3 pool of 32 connections busy without queueing on it.
API_POOL_SIZE = 8
CLIENT_TIMEOUT_SECONDS = 120.0
SERVICE_USERS = 100
SERVICE_PERIOD_SECONDS = 10.0
FILES_PER_BATCH = 10
TARGET_P99_MS = 250.0

# Each server runs in its own interpreter, apart from the load generator (this process),
# so that the client, the API and the emulator do not share one GIL (the emulator through
# its own `own_process` mode). The API child prints "READY <url>" once listening and exits
# when its stdin closes (when this process ends).
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


def _stack(ctx: BenchContext) -> dict[str, Any]:
    import boto3

    from mobile_backup.core import EMULATOR_KEY, RECORD_CALLS_ENV
    from mobile_backup.local import (
        EmulatorServer,
        ServerProcess,
        create_user,
        local_settings,
        provision,
    )

    emulator = EmulatorServer(own_process=True)  # a child interpreter, as `local up` runs it
    emulator.start()
    atexit.register(emulator.stop)
    endpoint_url = emulator.endpoint_url
    resources = provision(endpoint_url=endpoint_url, stack_name="bench-b5")
    settings = local_settings(resources, api_url=None, library=None)
    values = settings.model_dump(mode="python", exclude_none=True)
    values["aws_secret_access_key"] = EMULATOR_KEY
    values = {k: str(v) if not isinstance(v, bool | int) else v for k, v in values.items()}
    calls = ctx.work_dir / "b5-api-calls.jsonl"
    api = ServerProcess(
        API_CHILD,
        json.dumps({"settings": values, "pool_size": API_POOL_SIZE}),
        what="API server",
        env={**os.environ, RECORD_CALLS_ENV: str(calls)},
    )
    api_url = api.start()
    atexit.register(api.stop)
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
    return {
        "url": api_url,
        "tokens": tokens,
        "api_pid": api.pid,
        "emulator_pid": emulator.pid,
        "calls": calls,
    }


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


def _summary(latencies: list[float], errors: dict[str, int], elapsed: float) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "count": len(latencies),
        "elapsed": elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max": latencies[-1],
        "errors": errors,
    }


async def _post_batch(
    client: Any,
    headers: dict[str, str],
    files: int,
    latencies: list[float],
    errors: dict[str, int],
) -> None:
    """One presign batch: its latency into `latencies`, anything but a 200 into `errors`."""
    import httpx

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


async def _open_loop(
    url: str, tokens: list[str], *, users: int, period: float, duration: float, files: int
) -> dict[str, Any]:
    """Each user fires a batch at its phase + k x period, without waiting for answers."""
    import random

    import httpx

    latencies: list[float] = []
    late: list[float] = []
    errors: dict[str, int] = {}
    phases = random.Random(5).sample(range(users), users)  # an even spread, shuffled
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=users)
    timeout = httpx.Timeout(CLIENT_TIMEOUT_SECONDS)
    loop = asyncio.get_running_loop()

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def send(headers: dict[str, str], due: float) -> None:
            late.append(loop.time() - due)
            await _post_batch(client, headers, files, latencies, errors)

        async def user(n: int, began: float) -> list[asyncio.Task[None]]:
            headers = {"authorization": f"Bearer {tokens[n % len(tokens)]}"}
            sent: list[asyncio.Task[None]] = []
            due = began + phases[n] * period / users
            while due < began + duration:
                await asyncio.sleep(max(0.0, due - loop.time()))
                sent.append(asyncio.create_task(send(headers, due)))
                due += period
            return sent

        began = loop.time()
        schedules = await asyncio.gather(*(user(n, began) for n in range(users)))
        await asyncio.gather(*(task for tasks in schedules for task in tasks))
        elapsed = loop.time() - began
    result = _summary(latencies, errors, elapsed)
    result["late_max"] = max(late)
    return result


async def _burst(url: str, tokens: list[str], *, users: int, files: int) -> dict[str, Any]:
    """Every user sends one batch at the same instant."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    timeout = httpx.Timeout(CLIENT_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def user(n: int) -> None:
            headers = {"authorization": f"Bearer {tokens[n % len(tokens)]}"}
            await _post_batch(client, headers, files, latencies, errors)

        began = time.perf_counter()
        await asyncio.gather(*(user(n) for n in range(users)))
        elapsed = time.perf_counter() - began
    return _summary(latencies, errors, elapsed)


def _calls_by_kind(path: Any) -> dict[str, int]:
    """AWS calls the API process recorded: 'network' calls and 'presigned' URLs."""
    counts = {"network": 0, "presigned": 0}
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        # The API never sends S3 object requests itself: an S3 PutObject/UploadPart it
        # records is a URL it signed for the phone.
        presigned = call["service"] == "s3" and call["operation"] in ("PutObject", "UploadPart")
        counts["presigned" if presigned else "network"] += 1
    return counts


@scenario("B5", "HTTP API: open-loop presign load (100 users, a batch every 10 s) + a burst")
def api_load(ctx: BenchContext) -> list[Measurement]:
    duration = 20.0 if ctx.quick else 60.0
    burst_users = 100 if ctx.quick else 1000
    users, period, files = SERVICE_USERS, SERVICE_PERIOD_SECONDS, FILES_PER_BATCH
    stack = ctx.once("stack", lambda: _stack(ctx))
    ctx.record_setting(
        "service load",
        f"open loop: {users} users x a batch of {files} every {period:.0f} s "
        f"for {duration:.0f} s ({users / period:.0f} req/s offered)",
    )
    ctx.record_setting("burst", f"{burst_users} users x 1 batch of {files}, all at once")
    ctx.record_setting(
        "processes",
        "3 on 2 cores: load generator (this), API server, moto emulator; loopback",
    )
    ctx.record_setting("server", f"uvicorn + ApiAsgiApp ({API_POOL_SIZE} resolver threads)")
    ctx.record_setting("client timeout (counted as an error)", f"{CLIENT_TIMEOUT_SECONDS:.0f} s")
    ctx.record_setting("signed-in Cognito users shared by the simulated ones", SIGNED_IN_USERS)
    ctx.record_setting("AWS calls", "counted by the API process's call recorder")

    calls_before = _calls_by_kind(stack["calls"])
    api_cpu = cpu_seconds(stack["api_pid"])
    emulator_cpu = cpu_seconds(stack["emulator_pid"])
    service = asyncio.run(
        _open_loop(
            stack["url"], stack["tokens"], users=users, period=period, duration=duration,
            files=files,
        )
    )  # fmt: skip
    api_cpu = cpu_seconds(stack["api_pid"]) - api_cpu
    emulator_cpu = cpu_seconds(stack["emulator_pid"]) - emulator_cpu
    calls_after = _calls_by_kind(stack["calls"])
    requests = service["count"]
    network = (calls_after["network"] - calls_before["network"]) / requests
    presigned = (calls_after["presigned"] - calls_before["presigned"]) / requests
    burst = asyncio.run(_burst(stack["url"], stack["tokens"], users=burst_users, files=files))

    label = f"{users} users, a batch of {files} every {period:.0f} s"
    service_details = {
        "requests": requests,
        "errors_by_kind": service["errors"],
        "max_ms": service["max"] * 1000,
        "generator_late_max_ms": service["late_max"] * 1000,
    }
    return [
        Measurement(
            metric=f"{label}: throughput",
            ours=requests / service["elapsed"],
            unit="req/s",
            details=service_details,
        ),
        Measurement(metric=f"{label}: p50 latency", ours=service["p50"] * 1000, unit="ms"),
        Measurement(
            metric=f"{label}: p99 latency",
            ours=service["p99"] * 1000,
            unit="ms",
            target=Target.at_most(TARGET_P99_MS, "ms"),
            details=service_details,
        ),
        Measurement(
            metric=f"{label}: errors",
            ours=float(sum(service["errors"].values())),
            unit="requests",
            target=Target.at_most(0, "requests"),
            details=service_details,
        ),
        Measurement(
            metric=f"{label}: API server CPU per request",
            ours=api_cpu / requests * 1000,
            unit="ms",
        ),
        Measurement(
            metric=f"{label}: emulator CPU per request (the AWS side)",
            ours=emulator_cpu / requests * 1000,
            unit="ms",
        ),
        Measurement(metric=f"{label}: AWS calls per request", ours=network, unit="calls"),
        Measurement(
            metric=f"{label}: URLs presigned per request (no call)", ours=presigned, unit="URLs"
        ),
        Measurement(
            metric=f"burst of {burst_users} users at once (informational): p99 latency",
            ours=burst["p99"] * 1000,
            unit="ms",
            details={"requests": burst["count"], "p50_ms": burst["p50"] * 1000},
        ),
        Measurement(
            metric=f"burst of {burst_users} users at once (informational): errors",
            ours=float(sum(burst["errors"].values())),
            unit="requests",
            target=Target.at_most(0, "requests"),
            details={"errors_by_kind": burst["errors"]},
        ),
    ]
