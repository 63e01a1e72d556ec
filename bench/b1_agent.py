"""B1: the agent receives 1000 photos of 1-5 MB announced on the downloads queue → verified,
fsynced files in the library; against `s5cmd cp` and `rclone copy` of the same objects from
the same SeaweedFS endpoint in the same run.

Objects live on SeaweedFS (a real S3 that validates SigV4); the downloads queue and the
ledger live on the moto emulator (SeaweedFS has neither), so the agent's figure includes
everything it does for real: receive, GET, SHA-256, fsync, placement, receipt in the ledger,
tagging, batched delete. The agent runs in a subprocess (this module's `__main__`) so its
RSS is its own; its clock starts when `Agent.run` starts (after imports) and stops when the
last file is placed and every receipt is in the ledger (the batched deletes may trail by
their 50 ms linger). The peers' clocks cover their whole process (a Go binary:
milliseconds of start-up) including their listing.

This module also holds the machinery B2, B4 and B7 reuse (`AgentStack`, `run_agent`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._harness import (
    MB,
    BenchContext,
    CpuMeter,
    Measurement,
    Target,
    make_files,
    run_measured,
    scenario,
    total_size,
    warm_memory,
)
from bench._peers import (
    RCLONE_SWEEP,
    S5CMD_SWEEP_FILES,
    Endpoint,
    best_setting,
    crt_floor_download,
    download_trial,
    plain_floor_download,
    rclone_copy_down,
    s5cmd_download,
    s5cmd_upload,
)

BUCKET = "bench"


@dataclass
class AgentStack:
    """Queue + ledger on the emulator (or the ledger on dynalite), objects on an S3
    endpoint."""

    emulator_url: str
    region: str
    table: str
    queue_url: str
    dlq_url: str
    s3: Endpoint
    dynamodb_url: str | None = None

    @classmethod
    def provision(
        cls, ctx: BenchContext, s3: Endpoint, *, ledger_on_dynalite: bool = False
    ) -> AgentStack:
        from mobile_backup.local import provision

        dynamodb_url = ctx.dynalite().endpoint_url if ledger_on_dynalite else None
        resources = provision(
            endpoint_url=ctx.emulator().endpoint_url,
            stack_name=f"b{uuid.uuid4().hex[:8]}",
            dynamodb_endpoint_url=dynamodb_url,
        )
        return cls(
            emulator_url=resources.endpoint_url,
            region=resources.region,
            table=resources.table,
            queue_url=resources.downloads_queue_url,
            dlq_url=resources.downloads_dlq_url,
            s3=s3,
            dynamodb_url=dynamodb_url,
        )

    def settings(self, library: Path) -> Any:
        from mobile_backup.core import EMULATOR_KEY, Settings

        return Settings.explicit(
            profile="bench",
            local=True,
            region=self.region,
            aws_endpoint_url=self.emulator_url,
            dynamodb_endpoint_url=self.dynamodb_url,
            aws_access_key_id=EMULATOR_KEY,
            aws_secret_access_key=EMULATOR_KEY,
            bucket=BUCKET,
            table=self.table,
            downloads_queue_url=self.queue_url,
            library=library,
        )

    def announce(self, files: list[Path], digests: dict[Path, str], user_sub: str) -> None:
        """What the phone + ingest do for each object already in the bucket: a ledger entry
        (uploaded) and a download message."""
        from mobile_backup.aws import dynamodb_client, sqs_client
        from mobile_backup.core import DownloadMessage, FileMeta, object_key
        from mobile_backup.ledger import Ledger

        settings = self.settings(Path("/nonexistent"))
        ledger = Ledger(dynamodb_client(settings, component="test"), self.table)
        sqs = sqs_client(settings, component="test")
        now = datetime.now(UTC)
        bodies = []
        for path in files:
            sha = digests[path]
            size = path.stat().st_size
            meta = FileMeta(sha, size, f"IMG_{path.name}.jpg", "image/jpeg", now, "bench")
            ledger.reserve(user_sub, meta, now=now)
            record = ledger.mark_uploaded(user_sub, sha, size=size, now=now)
            bodies.append(
                DownloadMessage(
                    bucket=BUCKET, key=object_key(user_sub, sha), user_sub=user_sub, sha256=sha,
                    size=size, filename=f"IMG_{path.name}.jpg", content_type="image/jpeg",
                    taken_at=now, uploaded_at=record.uploaded_at or now,
                ).to_json()
            )  # fmt: skip
        for i in range(0, len(bodies), 10):
            sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
                ],
            )


def digests_of(files: list[Path]) -> dict[Path, str]:
    out = {}
    for path in files:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(4 * MB):
                h.update(chunk)
        out[path] = h.hexdigest()
    return out


def sha256_cpu_s(files: list[Path]) -> float:
    """This thread's CPU to SHA-256 `files` (`digests_of`, from the page cache): the
    hashing every verifying downloader pays, however lean the rest of it is."""
    started = time.thread_time()
    digests_of(files)
    return time.thread_time() - started


def ceiling_rows(
    *, s5_cpu: CpuMeter, s5_name: str, sha_s: float, emulator_s: float | None
) -> list[Measurement]:
    """How near s5cmd a downloader that verifies could get on this host at best, if the
    run is bound by its cores (B1's and B2's are: the ratios follow the CPU spent): s5cmd's
    whole run (its CPU and SeaweedFS's) over the CPU such a downloader cannot avoid. That is
    SeaweedFS serving the same GETs (as in s5cmd's run) and SHA-256 over the same bytes,
    with moving the bytes taken as free; then also the emulator's queue and receipts as
    measured in the agent's run (not for one video: there the emulator's share is the
    agent's start-up, not per byte). Estimates, not targets: they say whether ≥ 1.0x is in
    reach here at all, and what keeps it out of reach."""
    s5_total = s5_cpu.children + s5_cpu.seaweed
    hashing = s5_cpu.seaweed + sha_s
    details = {
        "s5cmd_run_cpu_s": s5_total,
        "seaweedfs_cpu_s": s5_cpu.seaweed,
        "sha256_cpu_s": sha_s,
        "emulator_cpu_s": emulator_s,
    }
    rows = [
        Measurement(
            metric=f"ceiling vs {s5_name}: a downloader that only hashes (CPU model)",
            ours=s5_total / hashing, unit="x", details=details,
        ),
    ]  # fmt: skip
    if emulator_s is not None:
        rows.append(Measurement(
            metric=f"ceiling vs {s5_name}: one that hashes and keeps the queue and receipts on"
            " the emulator (CPU model)",
            ours=s5_total / (hashing + emulator_s), unit="x", details=details,
        ))  # fmt: skip
    # Moving bytes is not free: the same model with the bytes moved at s5cmd's own cost
    # (the least measured here) and SHA-256 on top, what a downloader that verifies as s5cmd
    # moves would reach.
    rows.append(Measurement(
        metric=f"ceiling vs {s5_name}: one that moves the bytes at {s5_name}'s cost and also"
        " hashes them (CPU model)",
        ours=s5_total / (s5_total + sha_s + (emulator_s or 0.0)), unit="x", details=details,
    ))  # fmt: skip
    return rows


def by_sha_dir(files: list[Path], digests: dict[Path, str], directory: Path) -> list[Path]:
    """Hard links named by content hash, so `s5cmd cp dir/*` writes `media/{sub}/{sha}`."""
    directory.mkdir(parents=True, exist_ok=True)
    linked = []
    for path in files:
        target = directory / digests[path]
        if not target.exists():
            os.link(path, target)
        linked.append(target)
    return linked


def stage_objects(
    ctx: BenchContext, stack: AgentStack, files: list[Path], digests: dict[Path, str]
) -> str:
    """Put this run's objects under a fresh user (unique keys), announce them; the user."""
    sub = "b" + uuid.uuid4().hex
    linked = ctx.once("by-sha", lambda: by_sha_dir(files, digests, ctx.work_dir / "by-sha"))
    s5cmd_upload(stack.s3, linked, bucket=BUCKET, prefix=f"media/{sub}")
    stack.announce(files, digests, sub)
    return sub


@dataclass
class AgentRun:
    elapsed: float
    files: int
    bytes: int
    peak_rss: int
    parts_fetched: int
    detail: dict[str, Any]


def run_agent(
    stack: AgentStack,
    *,
    library: Path,
    expect: int,
    workers: int = 16,
    max_concurrency: int = 16,
    part_size: int = 8 * 1024 * 1024,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    warm: int = 0,
) -> AgentRun:
    """Run the agent in a subprocess until `expect` files are placed. `warm`: bytes the
    child writes and deletes (`warm_memory`) after its start-up, just before the clock
    starts (from the bench process, the pages would go back to the host during the
    child's second of imports)."""
    job = {
        "emulator_url": stack.emulator_url,
        "dynamodb_url": stack.dynamodb_url,
        "region": stack.region,
        "table": stack.table,
        "queue_url": stack.queue_url,
        "s3_url": stack.s3.url,
        "library": str(library),
        "expect": expect,
        "workers": workers,
        "max_concurrency": max_concurrency,
        "part_size": part_size,
        "warm_bytes": warm,
        **(extra or {}),
    }
    job_file = library.parent / f"job-{uuid.uuid4().hex[:8]}.json"
    library.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job), encoding="utf-8")
    argv = [sys.executable, "-m", "bench.b1_agent", str(job_file)]
    profile = os.environ.get("BENCH_AGENT_PYSPY")
    if profile:
        # Development aid: sample the agent with py-spy (folded stacks); RSS is then py-spy's.
        # BENCH_AGENT_PYSPY_GIL=1 samples only the thread holding the GIL (CPU, not waits);
        # BENCH_AGENT_PYSPY_CPU=1 every thread the OS runs (C work without the GIL too:
        # hashing, copies, system calls).
        out_file = f"{profile}-{uuid.uuid4().hex[:6]}.txt"
        mode = (["--gil"] if os.environ.get("BENCH_AGENT_PYSPY_GIL")
                else ["--threads"] if os.environ.get("BENCH_AGENT_PYSPY_CPU")
                else ["--threads", "--idle"])  # fmt: skip
        argv = ["py-spy", "record", "--format", "raw", *mode, "-r", "100",
                "-o", out_file, "--", *argv]  # fmt: skip
    run = run_measured(
        argv,
        env=env or stack.s3.env(),
        cwd=Path(__file__).resolve().parent.parent,
    ).check()
    answer = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("{")][-1])
    return AgentRun(
        elapsed=answer["elapsed"],
        files=answer["files"],
        bytes=answer["bytes"],
        peak_rss=run.peak_rss,
        parts_fetched=answer["parts_fetched"],
        detail={**answer, "process_s": run.elapsed},
    )


def agent_settings_record(ctx: BenchContext, workers: int, concurrency: int, part: int) -> None:
    ctx.record_setting(
        "agent", {"workers": workers, "ranged_gets_in_flight": concurrency, "part_size": part}
    )


def library_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".mobile-backup" not in p.parts]


@scenario("B1", "agent receives photos from the queue vs s5cmd / rclone downloads")
def photos(ctx: BenchContext) -> list[Measurement]:
    count = 100 if ctx.quick else 1000
    ctx.record_setting("files", f"{count} x 1-5 MB (mean 3 MB)")
    files = ctx.once(
        "files",
        lambda: make_files(ctx.work_dir / "files", count, min_size=MB, max_size=5 * MB, seed=1),
    )
    digests = ctx.once("digests", lambda: digests_of(files))
    endpoint = Endpoint.from_seaweed(ctx.seaweed())
    stack = ctx.once("stack", lambda: AgentStack.provision(ctx, endpoint))
    workers, concurrency = 16, 16
    agent_settings_record(ctx, workers, concurrency, 8 * 1024 * 1024)

    sub = stage_objects(ctx, stack, files, digests)
    out = ctx.work_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    size = total_size(files)  # each tool's page cache: warmed before it (`warm_memory`)

    def measured(on: AgentStack, library: Path, dynalite: int | None) -> tuple[AgentRun, CpuMeter]:
        with CpuMeter(seaweed=ctx.seaweed().pid, dynalite=dynalite) as meter:
            run = run_agent(
                on, library=library, expect=count, workers=workers, max_concurrency=concurrency,
                warm=size,
            )  # fmt: skip
        if len(library_files(library)) != count:
            raise RuntimeError(f"the agent did not place every file in {library.name}")
        return run, meter

    ours, cpu = measured(stack, out / "agent", None)
    # The same run with the ledger on dynalite (the queue stays on moto): how much of the
    # emulator's CPU per photo is moto's DynamoDB rather than the ledger's calls themselves.
    stack_d = ctx.once(
        "stack-dynalite", lambda: AgentStack.provision(ctx, endpoint, ledger_on_dynalite=True)
    )
    stage_objects(ctx, stack_d, files, digests)
    ours_d, cpu_d = measured(stack_d, out / "agent-dynalite", ctx.dynalite().pid)
    prefix = f"media/{sub}"
    s5_trial, rc_trial = (
        download_trial(tool, endpoint, bucket=BUCKET, prefix=prefix, dest=out / "sweep")
        for tool in (s5cmd_download, rclone_copy_down)
    )
    s5_best = best_setting(ctx, "s5cmd", S5CMD_SWEEP_FILES, s5_trial)
    rc_best = best_setting(ctx, "rclone", RCLONE_SWEEP, rc_trial)
    warm_memory(out, size)
    with CpuMeter(seaweed=ctx.seaweed().pid) as s5_cpu:
        s5 = s5cmd_download(endpoint, bucket=BUCKET, prefix=prefix, dest=out / "s5cmd", **s5_best)
    warm_memory(out, size)
    rc = rclone_copy_down(endpoint, bucket=BUCKET, prefix=prefix, dest=out / "rclone", **rc_best)
    warm_memory(out, size)
    with CpuMeter(seaweed=ctx.seaweed().pid) as floor_cpu:
        floor = plain_floor_download(
            endpoint, bucket=BUCKET, prefix=f"media/{sub}", dest=out / "floor", threads=workers
        )
    warm_memory(out, size)
    with CpuMeter(seaweed=ctx.seaweed().pid) as crt_cpu:
        crt = crt_floor_download(
            endpoint, bucket=BUCKET, prefix=f"media/{sub}", dest=out / "crt", in_flight=workers
        )
    for peer in (s5, rc, floor, crt):
        if peer.files != count:
            raise RuntimeError(f"{peer.tool} fetched {peer.files} of {count} files")
        ctx.record_tool(peer.tool, peer.version)
        ctx.record_setting(peer.tool, peer.settings)
    shutil.rmtree(out, ignore_errors=True)
    ours_mb_s = ours.bytes / MB / ours.elapsed
    ceilings = ceiling_rows(
        s5_cpu=s5_cpu, s5_name="s5cmd", sha_s=sha256_cpu_s(files), emulator_s=cpu.own
    )
    return [
        Measurement(
            metric=f"{count} photos: agent vs s5cmd", ours=ours_mb_s, unit="MB/s",
            peer=s5.mb_per_s, peer_name=s5.name, target=Target.ratio_at_least(1.0),
            details={"files_per_s": count / ours.elapsed, "agent_peak_rss": ours.peak_rss},
        ),
        Measurement(
            metric=f"{count} photos: agent vs rclone", ours=ours_mb_s, unit="MB/s",
            peer=rc.mb_per_s, peer_name=rc.name, target=Target.ratio_at_least(1.0),
        ),
        Measurement(
            metric=f"{count} photos: agent vs the floor (plain GETs, no queue or ledger)",
            ours=ours_mb_s, unit="MB/s", peer=floor.mb_per_s, peer_name=floor.name,
            target=Target.ratio_at_least(0.9),
        ),
        Measurement(
            metric=f"{count} photos, ledger on dynalite: agent vs the floor",
            ours=ours_d.bytes / MB / ours_d.elapsed, unit="MB/s", peer=floor.mb_per_s,
            peer_name=floor.name, target=Target.ratio_at_least(0.9),
            details={"files_per_s": count / ours_d.elapsed},
        ),
        Measurement(
            metric="agent files/s (end to end)", ours=count / ours.elapsed, unit="files/s",
            peer=s5.files / s5.elapsed, peer_name=s5.name, target=None,
        ),
        # Where the time goes: CPU of each process per file during the agent's run, beside
        # s5cmd's run. The emulator (SQS + DynamoDB) runs in this process; a share near 1
        # core means it is what binds the run, not the agent.
        Measurement(
            metric="CPU per file: the agent (vs s5cmd)", ours=ours.detail["cpu_s"] / count * 1e3,
            unit="ms", peer=s5_cpu.children / count * 1e3, peer_name=f"{s5.name}'s run",
            target=Target.ratio_at_most(2.5),
            details={
                "with_start_up_ms": cpu.children / count * 1e3,
                "system_ms": ours.detail["cpu_system_s"] / count * 1e3,
                "switches_per_file": (
                    ours.detail["switches_voluntary"] + ours.detail["switches_forced"]
                ) / count,
            },
        ),
        # The floor's own CPU (its process, start-up included: one process for the run):
        # what a GET + SHA-256 + fsync costs in Python here; the agent's excess over it is
        # the queue, the receipts, the tags, the state file and the hand-offs.
        # The floors' own CPU for the transfer (start-up left out, as the agent's): what a
        # GET + SHA-256 + fsync costs in Python here, and with awscrt moving the bytes (the
        # lever issue 34 names). The agent's excess over the first is the queue, the
        # receipts, the tags, the state file and the hand-offs.
        Measurement(
            metric="CPU per file: the agent (vs the boto3 floor)",
            ours=ours.detail["cpu_s"] / count * 1e3, unit="ms",
            peer=(floor.work_cpu_s or 0) / count * 1e3, peer_name=floor.name, target=None,
            details={"floor_process_ms": floor_cpu.children / count * 1e3},
        ),
        Measurement(
            metric="CPU per file: the floor through awscrt (vs the boto3 floor)",
            ours=(crt.work_cpu_s or 0) / count * 1e3, unit="ms",
            peer=(floor.work_cpu_s or 0) / count * 1e3, peer_name=floor.name, target=None,
            details={"mb_per_s": crt.mb_per_s, "process_ms": crt_cpu.children / count * 1e3},
        ),
        *(
            Measurement(
                metric=f"AWS calls per file: {operation}", ours=n / count, unit="calls",
            )
            for operation, n in sorted(ours.detail["aws_calls"].items())
        ),
        Measurement(
            metric="CPU per file: the emulator (SQS, ledger)", ours=cpu.own / count * 1e3,
            unit="ms", details={"share_of_a_core": cpu.own / cpu.elapsed},
        ),
        Measurement(
            metric="CPU per file: the emulator, ledger on dynalite (moto's SQS + dynalite)",
            ours=(cpu_d.own + cpu_d.dynalite) / count * 1e3, unit="ms",
            details={
                "moto_sqs_ms": cpu_d.own / count * 1e3,
                "dynalite_ms": cpu_d.dynalite / count * 1e3,
                "moto_ledger_ms_estimate": (cpu.own - cpu_d.own) / count * 1e3,
                "agent_cpu_ms": ours_d.detail["cpu_s"] / count * 1e3,
            },
        ),
        Measurement(
            metric="CPU per file: SeaweedFS (S3), the agent's run vs s5cmd's",
            ours=cpu.seaweed / count * 1e3, unit="ms", peer=s5_cpu.seaweed / count * 1e3,
            peer_name=f"{s5.name}'s run", details={"share_of_a_core": cpu.seaweed / cpu.elapsed},
        ),
        Measurement(
            metric="emulator busy during the agent's run", ours=cpu.own / cpu.elapsed,
            unit="cores",
        ),
        *ceilings,
        # The floor row's target (0.9x) read against the model: the same ceilings as a
        # share of the floor's measured speed (s5cmd's MB/s over the floor's, this run).
        *(
            Measurement(
                metric=row.metric.replace("ceiling vs s5cmd", "ceiling vs the floor"),
                ours=row.ours * s5.mb_per_s / floor.mb_per_s, unit="x",
                details={"ceiling_vs_s5cmd": row.ours,
                         "floor_vs_s5cmd": floor.mb_per_s / s5.mb_per_s},
            )
            for row in ceilings[1:]
            if row.ours is not None
        ),
    ]  # fmt: skip


# The agent worker (subprocess) -----------------------------------------------------------
def _worker(job: dict[str, Any]) -> dict[str, Any]:
    import logging
    import resource

    from mobile_backup.agent import Agent, AgentConfig, TransferConfig
    from mobile_backup.aws import dynamodb_client, s3_client, sqs_client
    from mobile_backup.core import EMULATOR_KEY, Settings
    from mobile_backup.ledger import Ledger

    logging.basicConfig(level=logging.WARNING)
    library = Path(job["library"])
    settings = Settings.explicit(
        profile="bench", local=True, region=job["region"], aws_endpoint_url=job["emulator_url"],
        dynamodb_endpoint_url=job.get("dynamodb_url"), aws_access_key_id=EMULATOR_KEY,
        aws_secret_access_key=EMULATOR_KEY, bucket=BUCKET, table=job["table"],
        downloads_queue_url=job["queue_url"], library=library,
    )  # fmt: skip
    # The agent's own S3 client (`aws.s3_client`: its retries, pool, checksum and timeout
    # settings), pointed at SeaweedFS with the peers' credentials.
    s3 = s3_client(
        Settings.explicit(
            profile="bench", local=True, region=job["region"], aws_endpoint_url=job["s3_url"],
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        ),
        component="agent",
    )  # fmt: skip
    if job.get("fault_rate"):
        _inject_faults(s3, float(job["fault_rate"]))
    part = int(job["part_size"])
    transfer = TransferConfig(
        part_size=part, threshold=max(2 * part, 16 * 1024 * 1024),
        max_concurrency=int(job["max_concurrency"]),
    )  # fmt: skip
    sqs, db = sqs_client(settings, component="test"), dynamodb_client(settings, component="test")
    agent = Agent(
        settings=settings, s3=s3, sqs=sqs,
        ledger=Ledger(db, job["table"]), library=library, host="bench",
        wait_seconds=1,
        config=AgentConfig(
            workers=int(job["workers"]), transfer=transfer,
            # As `agent run` does at start: the ledger, not the (still hidden) message.
            reconcile_interval=3600.0 if job.get("reconcile_at_start") else None,
        ),
    )  # fmt: skip
    agent.prepare()
    calls: dict[str, int] = {}
    count_lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        with count_lock:
            calls[model.name] = calls.get(model.name, 0) + 1

    for client in (s3, sqs, db):
        client.meta.events.register("before-call.*.*", count)
    stop = threading.Event()
    expect = int(job["expect"])
    if job.get("warm_bytes"):
        warm_memory(library.parent, int(job["warm_bytes"]))
    # B7 reads this from a process it kills: when the agent's own work began (wall clock).
    print(json.dumps({"run_started_at": time.time()}), flush=True)
    started = time.perf_counter()
    cpu_started = time.process_time()
    usage_started = resource.getrusage(resource.RUSAGE_SELF)
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    kill_after = job.get("kill_after_parts")
    # Watch the state file through a connection of our own: polling through the agent's
    # would take the lock its workers need (WAL lets this reader run beside them).
    watch = sqlite3.connect(f"{agent.state.path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        while (
            agent.receipts_written < expect
            or watch.execute("SELECT COUNT(*) FROM placed").fetchone()[0] < expect
        ):
            if kill_after is not None and agent.downloader.parts_fetched >= kill_after:
                os.kill(os.getpid(), 9)  # B7: die like a crash, mid-video
            if not thread.is_alive():
                raise RuntimeError("the agent stopped before every file was placed")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        # The receipts leave their copies' tags for a quiet moment (the queue read empty):
        # that CPU is the run's too, so the CPU figures wait for the tags; the time to the
        # last placed file and its receipt (what a person waits for) does not.
        while watch.execute("SELECT COUNT(*) FROM untagged").fetchone()[0]:
            if not thread.is_alive():
                raise RuntimeError("the agent stopped before every copy was tagged")
            time.sleep(0.01)
        tagged = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        usage = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        watch.close()
        stop.set()
        thread.join()
    placed = [p for p in library.rglob("*") if p.is_file() and ".mobile-backup" not in p.parts]
    return {
        "elapsed": elapsed,
        "files": len(placed),
        "bytes": sum(p.stat().st_size for p in placed),
        "parts_fetched": agent.downloader.parts_fetched,
        "cpu_s": cpu,
        "tags_done_s": tagged,
        # Where the CPU went: the kernel's share (sockets, writes, fsync, thread hand-offs)
        # and how often a thread gave way (waits) or was made to (the GIL, the scheduler).
        "cpu_user_s": usage.ru_utime - usage_started.ru_utime,
        "cpu_system_s": usage.ru_stime - usage_started.ru_stime,
        "switches_voluntary": usage.ru_nvcsw - usage_started.ru_nvcsw,
        "switches_forced": usage.ru_nivcsw - usage_started.ru_nivcsw,
        "aws_calls": calls,
    }


def _inject_faults(s3: Any, rate: float) -> None:
    """B7: fail `rate` of S3 requests with a 500, and as many with a connection reset,
    before they reach the server (botocore's retries and ours must absorb them)."""
    import random

    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.exceptions import ConnectionClosedError

    rng = random.Random(7)

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"

    def maybe_fail(request: Any, **_: Any) -> Any:
        roll = rng.random()
        if roll < rate:
            return AWSResponse(request.url, 500, HTTPHeaders(), _Raw())
        if roll < 2 * rate:
            raise ConnectionClosedError(endpoint_url=request.url)
        return None

    s3.meta.events.register("before-send.s3", maybe_fail)


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
