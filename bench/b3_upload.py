"""B3: the client uploads many photos / one big video through our engine, compared with
`s5cmd cp` and boto3's `upload_file` to the same SeaweedFS endpoint, same files, same run.

Ours is the whole engine a phone or the CLI runs: SHA-256 of every file (and of every part
of the video), presigned batches from the real HTTP API (served on loopback, ledger on the
emulator, presigning against SeaweedFS), PUTs / multipart parts with signed length and
checksum, completion checked by the API. The peers only move bytes (no hashing, no API).
Each run signs up a fresh user so nothing is a duplicate of an earlier run, and deletes
what every tool uploaded afterwards. Our engine runs in a process of its own (as on a phone
or as `mobile-backup upload`), apart from the API and the emulator, which share this one.

Also counted: API calls per photo (target ≤ 0.05 with batched presigning) and for the video.
And where the CPU goes, per MB, for ours and for s5cmd's run at its best setting: the
client's own process and SeaweedFS's, plus, for ours, the API and the ledger (this process).
On two cores their sum is what binds both tools. Ours counts the upload itself, as its
seconds do: not the user's sign-up, the API's start or the uploader's interpreter start-up
(s5cmd's few milliseconds of start-up are in its figure).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import (
    MB,
    BenchContext,
    CpuMeter,
    Measurement,
    Target,
    make_file,
    make_files,
    mb_per_s,
    quiet_logs,
    run_measured,
    scenario,
    total_size,
)
from bench._peers import (
    BOTO3_SWEEP,
    S5CMD_SWEEP_FILES,
    S5CMD_SWEEP_PARTS,
    Endpoint,
    best_setting,
    boto3_upload,
    s5cmd_upload,
    upload_trial,
    verify_prefix,
)

BUCKET = "bench"
PASSWORD = "Bench-Horse-9-Battery"  # noqa: S105 - a throwaway emulator user
PARALLEL = 8
MIB = 1024**2


# Our engine in its own interpreter: it times its own upload and counts its API calls.
UPLOADER_CHILD = r"""
import json, sys, time
from pathlib import Path
import httpx
from mobile_backup.client import UPLOADED, ApiClient, Journal, Uploader

job = json.loads(sys.stdin.read())
calls = [0]


def count(request):
    calls[0] += 1


api = ApiClient(
    base_url=job["api_url"],
    token=lambda force_refresh=False: job["token"],
    http=httpx.Client(timeout=60, event_hooks={"request": [count]}),
)
uploader = Uploader(api=api, journal=Journal(Path(job["journal"])), parallel=job["parallel"])
try:
    started, cpu = time.perf_counter(), time.process_time()
    summary = uploader.upload([Path(p) for p in job["files"]])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
finally:
    uploader.close()
    api.close()
reasons = sorted({r.reason or "" for r in summary.results if r.status != UPLOADED})
print(json.dumps({"elapsed": elapsed, "cpu": cpu, "calls": calls[0],
                  "hashing": summary.hashing_seconds,
                  "done": summary.count(UPLOADED), "reasons": reasons}))
"""


def _stack(ctx: BenchContext) -> Any:
    from mobile_backup.local import provision

    return provision(
        endpoint_url=ctx.emulator().endpoint_url, stack_name=f"b3{uuid.uuid4().hex[:8]}"
    )


def _ours(
    ctx: BenchContext,
    stack: Any,
    files: list[Path],
    *,
    s3: Endpoint | None = None,
    front: Callable[[str], str] | None = None,
    parallel: int = PARALLEL,
) -> tuple[float, int, str, CpuMeter, float, float]:
    """(seconds, API calls, the user's key prefix, the CPU during the upload, the client's
    own CPU for it, the seconds it spent reading and hashing) for one upload run. The meter
    covers the uploader's run only (not the user's sign-up or the API's start), and the
    client's figure its upload only (not its interpreter's start-up), like the seconds.
    `s3`: the endpoint the API presigns for (B8: SeaweedFS through the shaped link);
    `front`: the address the client calls the API at, given the server's (B8: through the
    link); `parallel`: the client's transfers at once."""
    import json
    import sys

    from mobile_backup.api import create_app, ledger_for, verifier_for
    from mobile_backup.client import Authenticator, TokenStore
    from mobile_backup.local import ApiAsgiApp, ApiServer, create_user, local_settings

    settings = local_settings(stack, api_url=None, library=None, profile="bench", bucket=BUCKET)
    presigner = (s3 or Endpoint.from_seaweed(ctx.seaweed())).client(max_pool_connections=32)
    ledger, verifier = ledger_for(settings), verifier_for(settings)
    server = ApiServer(
        ApiAsgiApp(
            lambda: create_app(settings=settings, ledger=ledger, s3=presigner, verifier=verifier)
        )
    )
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    sub = create_user(stack, email=email, password=PASSWORD)
    state = ctx.work_dir / f"state-{uuid.uuid4().hex[:8]}"
    auth = Authenticator(settings=settings, store=TokenStore(state / "session.json"))
    auth.login(email, PASSWORD)
    with server:
        job = {
            "api_url": front(server.url) if front else server.url,
            "token": auth.access_token(), "parallel": parallel,
            "journal": str(state / "journal.db"), "files": [str(p) for p in files],
        }  # fmt: skip
        with CpuMeter(seaweed=ctx.seaweed().pid) as cpu:
            run = run_measured(
                [sys.executable, "-c", UPLOADER_CHILD], stdin=json.dumps(job), timeout=1800
            ).check()
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    done = int(answer["done"])
    if done != len(files):
        raise RuntimeError(f"our uploader sent {done} of {len(files)} files: {answer['reasons']}")
    return (
        float(answer["elapsed"]), int(answer["calls"]), f"media/{sub}/", cpu, answer["cpu"],
        float(answer["hashing"]),
    )  # fmt: skip


def _delete_prefix(ctx: BenchContext, prefix: str) -> None:
    s3 = ctx.seaweed().client()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
        keys: list[Any] = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def _count_objects(ctx: BenchContext, prefix: str) -> tuple[int, int]:
    s3 = ctx.seaweed().client()
    n = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            n += 1
            size += obj["Size"]
    return n, size


@scenario("B3", "client upload: photos and a video, our engine vs s5cmd and boto3")
def upload(ctx: BenchContext) -> list[Measurement]:
    photos_n, video_size = (100, 256 * MIB) if ctx.quick else (1000, 2 * 1024 * MIB)
    photos = ctx.once(
        "photos",
        lambda: make_files(
            ctx.work_dir / "photos", photos_n, min_size=1 * MB, max_size=5 * MB, seed=3
        ),
    )
    video = ctx.once(
        "video", lambda: [make_file(ctx.work_dir / "video" / "VID_0001.mp4", video_size, seed=4)]
    )
    stack = ctx.once("stack", lambda: _stack(ctx))
    ctx.record_setting("photos", f"{photos_n} x 1-5 MB ({total_size(photos) / MB:.0f} MB)")
    ctx.record_setting("video", f"{video_size / MIB:.0f} MiB")
    ctx.record_setting(
        "ours",
        f"parallel={PARALLEL}, 8 MiB parts from 16 MiB, SHA-256 of files and parts, "
        "presign batches of 100, API on loopback (uvicorn), ledger on moto",
    )
    if ctx.quick:
        ctx.record_setting("quick", "100 photos and a 256 MiB video instead of 1000 and 2 GiB")
    endpoint = Endpoint.from_seaweed(ctx.seaweed())
    rows: list[Measurement] = []
    cleanup: list[str] = []

    def sweep_prefix() -> str:
        """A fresh key prefix for one sweep trial, removed with the rest afterwards."""
        cleanup.append(ctx.unique("sweep-"))
        return cleanup[-1]

    try:
        with quiet_logs("mobile_backup", "botocore", "httpx"):
            for label, files in (("photos", photos), ("video", video)):
                seaweed_pid = ctx.seaweed().pid
                ours_s, calls, ours_prefix, ours_cpu, client_cpu, _ = _ours(ctx, stack, files)
                cleanup.append(ours_prefix)
                n, nbytes = _count_objects(ctx, ours_prefix)
                if (n, nbytes) != (len(files), total_size(files)):
                    raise RuntimeError(f"our upload left {n} objects / {nbytes} bytes")
                s5_prefix, b3_prefix = ctx.unique(f"s5-{label}-"), ctx.unique(f"boto3-{label}-")
                cleanup += [s5_prefix, b3_prefix]
                s5_sweep = S5CMD_SWEEP_PARTS if label == "video" else S5CMD_SWEEP_FILES
                s5_trial, b3_trial = (
                    upload_trial(tool, endpoint, files, bucket=BUCKET, new_prefix=sweep_prefix)
                    for tool in (s5cmd_upload, boto3_upload)
                )
                s5_best = best_setting(ctx, f"s5cmd ({label})", s5_sweep, s5_trial)
                b3_best = best_setting(ctx, f"boto3 ({label})", BOTO3_SWEEP, b3_trial)
                with CpuMeter(seaweed=seaweed_pid) as s5_cpu:
                    s5 = s5cmd_upload(endpoint, files, bucket=BUCKET, prefix=s5_prefix, **s5_best)
                b3 = boto3_upload(endpoint, files, bucket=BUCKET, prefix=b3_prefix, **b3_best)
                for prefix in (s5_prefix, b3_prefix):
                    verify_prefix(endpoint, bucket=BUCKET, prefix=prefix, files=files)
                for peer in (s5, b3):
                    ctx.record_tool(peer.tool, peer.version)
                    ctx.record_setting(f"{peer.tool}", peer.settings)
                ours_mb_s = mb_per_s(total_size(files), ours_s)
                what = (
                    f"{len(files)} photos"
                    if label == "photos"
                    else f"{video_size // MIB} MiB video"
                )
                rows += [
                    Measurement(
                        metric=f"upload {what} vs s5cmd",
                        ours=ours_mb_s,
                        unit="MB/s",
                        peer=s5.mb_per_s,
                        peer_name=s5.name,
                        target=Target.ratio_at_least(1.0),
                    ),
                    Measurement(
                        metric=f"upload {what} vs boto3 upload_file",
                        ours=ours_mb_s,
                        unit="MB/s",
                        peer=b3.mb_per_s,
                        peer_name=b3.name,
                        target=None,
                    ),
                ]
                megabytes = total_size(files) / MB
                rows += [
                    Measurement(
                        metric=f"upload {what}: {who} CPU per MB", unit="ms",
                        ours=ours * 1e3 / megabytes, peer=peer * 1e3 / megabytes,
                        peer_name=f"{s5.name}'s run",
                    )
                    for who, ours, peer in (
                        ("the client's", client_cpu, s5_cpu.children),
                        ("SeaweedFS's", ours_cpu.seaweed, s5_cpu.seaweed),
                    )
                ]  # fmt: skip
                rows.append(Measurement(  # s5cmd has none: no API, no ledger
                    metric=f"upload {what}: the API's and the ledger's CPU per MB", unit="ms",
                    ours=ours_cpu.own * 1e3 / megabytes,
                ))  # fmt: skip
                if label == "photos":
                    rows.append(
                        Measurement(
                            metric="API calls per photo",
                            ours=calls / len(files),
                            unit="calls",
                            target=Target.at_most(0.05),
                        )
                    )
                else:
                    rows.append(
                        Measurement(
                            metric="API calls for the video", ours=calls, unit="calls", target=None
                        )
                    )
    finally:
        for prefix in cleanup:
            _delete_prefix(ctx, prefix)
    return rows
