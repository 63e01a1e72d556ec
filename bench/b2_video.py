"""B2: the agent receives one large video (2 GiB; 256 MiB with --quick) from SeaweedFS, vs
`s5cmd cp` and boto3's `download_file` of the same object in the same run; peak RSS of each
process (the agent's must stay under 200 MB whatever the size: it streams ranged GETs to
their offsets and hashes from the file, never holding the object).

Queue and ledger on the emulator, as in B1 (see `bench.b1_agent`).
"""

from __future__ import annotations

import shutil

from bench._harness import (
    MB,
    BenchContext,
    CpuMeter,
    Measurement,
    Target,
    make_file,
    scenario,
    warm_memory,
)
from bench._peers import (
    BOTO3_SWEEP,
    S5CMD_SWEEP_PARTS,
    Endpoint,
    best_setting,
    boto3_download,
    crt_floor_download,
    download_trial,
    s5cmd_download,
)
from bench.b1_agent import (
    BUCKET,
    AgentStack,
    agent_settings_record,
    ceiling_rows,
    digests_of,
    library_files,
    run_agent,
    sha256_cpu_s,
    stage_objects,
)

MiB = 1024 * 1024


@scenario("B2", "agent receives one large video vs s5cmd / boto3 download_file")
def video(ctx: BenchContext) -> list[Measurement]:
    size = 256 * MiB if ctx.quick else 2048 * MiB
    ctx.record_setting("video", f"{size // MiB} MiB")
    files = ctx.once("files", lambda: [make_file(ctx.work_dir / "files" / "v00000", size, seed=2)])
    digests = ctx.once("digests", lambda: digests_of(files))
    endpoint = Endpoint.from_seaweed(ctx.seaweed())
    stack = ctx.once("stack", lambda: AgentStack.provision(ctx, endpoint))
    workers, concurrency, part = 4, 8, 8 * MiB
    agent_settings_record(ctx, workers, concurrency, part)

    sub = stage_objects(ctx, stack, files, digests)
    out = ctx.work_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    seaweed_pid = ctx.seaweed().pid
    # Each measured tool starts on memory the host backs (`warm_memory`).
    with CpuMeter(seaweed=seaweed_pid) as ours_cpu:
        ours = run_agent(
            stack, library=out / "agent", expect=1, workers=workers, max_concurrency=concurrency,
            part_size=part, warm=size,
        )  # fmt: skip
    if [p.stat().st_size for p in library_files(out / "agent")] != [size]:
        raise RuntimeError("the agent did not place the video")
    shutil.rmtree(out / "agent")
    prefix = f"media/{sub}"
    s5_trial, b3_trial = (
        download_trial(tool, endpoint, bucket=BUCKET, prefix=prefix, dest=out / "sweep")
        for tool in (s5cmd_download, boto3_download)
    )
    s5_best = best_setting(ctx, "s5cmd", S5CMD_SWEEP_PARTS, s5_trial)
    b3_best = best_setting(ctx, "boto3", BOTO3_SWEEP, b3_trial)
    warm_memory(out, size)
    with CpuMeter(seaweed=seaweed_pid) as s5_cpu:
        s5 = s5cmd_download(endpoint, bucket=BUCKET, prefix=prefix, dest=out / "s5cmd", **s5_best)
    shutil.rmtree(out / "s5cmd")
    warm_memory(out, size)
    b3 = boto3_download(endpoint, bucket=BUCKET, prefix=prefix, dest=out / "boto3", **b3_best)
    shutil.rmtree(out / "boto3")
    # The lever issue 34 names: awscrt moving the bytes (its own connections and parts),
    # then SHA-256 over the file read back, fsync: what the agent's bytes could cost in C.
    warm_memory(out, size)
    with CpuMeter(seaweed=seaweed_pid) as crt_cpu:
        crt = crt_floor_download(endpoint, bucket=BUCKET, prefix=prefix, dest=out / "crt")
    shutil.rmtree(out, ignore_errors=True)
    for peer in (s5, b3, crt):
        if peer.bytes != size:
            raise RuntimeError(f"{peer.tool} fetched {peer.bytes} of {size} bytes")
        ctx.record_tool(peer.tool, peer.version)
        ctx.record_setting(peer.tool, peer.settings)
    megabytes = size / MB
    ours_mb_s = megabytes / ours.elapsed
    sha_s = sha256_cpu_s(files)
    ceilings = ceiling_rows(s5_cpu=s5_cpu, s5_name="s5cmd", sha_s=sha_s, emulator_s=None)
    ceiling_x = ceilings[0].ours or 1.0  # a hash-only downloader's speed over s5cmd's
    verifier_x = ceilings[-1].ours or 1.0  # one moving bytes at s5cmd's cost, then hashing
    sha_ms = sha_s * 1e3 / megabytes
    agent_ms, s5_ms = ours.detail["cpu_s"] * 1e3 / megabytes, s5_cpu.children * 1e3 / megabytes
    return [
        Measurement(
            metric=f"{size // MiB} MiB video: agent vs s5cmd", ours=ours_mb_s, unit="MB/s",
            peer=s5.mb_per_s, peer_name=s5.name, target=Target.ratio_at_least(1.0),
        ),
        Measurement(
            metric=f"{size // MiB} MiB video: agent vs boto3", ours=ours_mb_s, unit="MB/s",
            peer=b3.mb_per_s, peer_name=b3.name, target=Target.ratio_at_least(1.0),
        ),
        # Where the time goes, per MB: both tools are bound by two cores shared with SeaweedFS.
        Measurement(
            metric="CPU per MB: the agent (vs s5cmd)", ours=agent_ms, unit="ms", peer=s5_ms,
            peer_name=f"{s5.name}'s run",
            target=Target.ratio_at_most(1.5),
            # What hashing every byte adds to s5cmd's own CPU: a verifier moving the bytes
            # as cheaply as s5cmd is this many times s5cmd.
            details={"sha256_ms": sha_ms,
                     "s5cmd_plus_sha256_x": (s5_ms + sha_ms) / max(s5_ms, 1e-9)},
        ),
        # The agent's CPU less its SHA-256 (moving, writing, fsync, the queue and ledger).
        Measurement(
            metric="CPU per MB: the agent less its SHA-256 (vs s5cmd)",
            ours=agent_ms - sha_ms, unit="ms", peer=s5_ms, peer_name=f"{s5.name}'s run",
        ),
        Measurement(
            metric="CPU per MB: the floor through awscrt (vs s5cmd)",
            ours=(crt.work_cpu_s or 0) * 1e3 / megabytes, unit="ms", peer=s5_ms,
            peer_name=f"{s5.name}'s run",
            details={
                "mb_per_s": crt.mb_per_s, "peak_rss_mb": crt.peak_rss / MB,
                "process_ms": crt_cpu.children * 1e3 / megabytes,
            },
        ),
        # The agent against what this host allows a verifying downloader (the CPU model
        # below: s5cmd's speed times the hash-only ceiling), per run.
        Measurement(
            metric=f"{size // MiB} MiB video: agent vs the ceiling (s5cmd x the CPU model)",
            ours=ours_mb_s, unit="MB/s", peer=s5.mb_per_s * ceiling_x,
            peer_name="ceiling", target=Target.ratio_at_least(0.9),
        ),
        Measurement(
            metric=f"{size // MiB} MiB video: agent vs a verifying s5cmd (s5cmd x its model)",
            ours=ours_mb_s, unit="MB/s", peer=s5.mb_per_s * verifier_x,
            peer_name="verifying s5cmd",
        ),
        Measurement(
            metric="CPU per MB: SeaweedFS (S3), the agent's run vs s5cmd's",
            ours=ours_cpu.seaweed * 1e3 / megabytes, unit="ms",
            peer=s5_cpu.seaweed * 1e3 / megabytes, peer_name=f"{s5.name}'s run",
        ),
        Measurement(
            metric="agent peak RSS (vs s5cmd's)", ours=ours.peak_rss / MB, unit="MB",
            peer=s5.peak_rss / MB, peer_name=s5.name, target=Target.at_most(200, "MB"),
            details={"boto3_peak_rss_mb": b3.peak_rss / MB},
        ),
        *ceilings,
    ]  # fmt: skip
