"""B0, the harness's self-test: boto3's transfer manager and rclone against s5cmd, uploading
the same files to SeaweedFS on loopback in the same run.

Nothing of ours is measured here: it proves the harness end to end (generated files, shared
server, peers, verification, median/min/max, ratios, MET/MISS) and gives a feel for how the
peers compare on this machine. Target "≥ 1.0x s5cmd" is the bar our own uploader (B3) must
clear; boto3 and rclone are held to it here only to show how a miss is reported.
"""

from __future__ import annotations

from bench._harness import MB, BenchContext, Measurement, Target, make_files, scenario
from bench._peers import (
    Endpoint,
    boto3_upload,
    rclone_copy_up,
    s5cmd_upload,
    verify_prefix,
)


@scenario("B0", "self-test: boto3 and rclone vs s5cmd uploading to SeaweedFS")
def selftest(ctx: BenchContext) -> list[Measurement]:
    count, low, high = (8, MB // 4, 2 * MB) if ctx.quick else (40, MB // 2, 4 * MB)
    files = ctx.once(
        "files",
        lambda: make_files(ctx.work_dir / "files", count, min_size=low, max_size=high, seed=0),
    )
    ctx.record_setting("files", f"{count} x {low / MB:g}-{high / MB:g} MB")
    endpoint = Endpoint.from_seaweed(ctx.seaweed())
    bucket = "bench"

    s5_prefix, b3_prefix, rc_prefix = (
        ctx.unique(f"{tool}-") for tool in ("s5cmd", "boto3", "rclone")
    )
    s5 = s5cmd_upload(endpoint, files, bucket=bucket, prefix=s5_prefix)
    b3 = boto3_upload(endpoint, files, bucket=bucket, prefix=b3_prefix)
    rc = rclone_copy_up(endpoint, files, bucket=bucket, prefix=rc_prefix)
    for prefix in (s5_prefix, b3_prefix, rc_prefix):
        verify_prefix(endpoint, bucket=bucket, prefix=prefix, files=files)

    for result in (s5, b3, rc):
        ctx.record_tool(result.tool, result.version)
        ctx.record_setting(result.tool, result.settings)
    return [
        Measurement(
            metric=f"upload {count} files, boto3 transfer manager",
            ours=b3.mb_per_s,
            unit="MB/s",
            peer=s5.mb_per_s,
            peer_name=s5.name,
            target=Target.ratio_at_least(1.0),
            details={"bytes": b3.bytes, "peak_rss": b3.peak_rss, "peer_peak_rss": s5.peak_rss},
        ),
        Measurement(
            metric=f"upload {count} files, rclone",
            ours=rc.mb_per_s,
            unit="MB/s",
            peer=s5.mb_per_s,
            peer_name=s5.name,
            target=Target.ratio_at_least(1.0),
            details={"bytes": rc.bytes, "peak_rss": rc.peak_rss},
        ),
        Measurement(
            metric="peak RSS of the boto3 upload process",
            ours=b3.peak_rss / MB,
            unit="MB",
            peer=s5.peak_rss / MB,
            peer_name=s5.name,
            target=Target.at_most(200, "MB"),
        ),
    ]
