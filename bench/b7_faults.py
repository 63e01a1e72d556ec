"""B7: a fault run — 1% of S3 requests answered 500 and 1% reset, and the agent killed
(SIGKILL, mid-video) then restarted — against a clean run of the same video in the same
invocation. Target: completion time ≤ 1.2x clean; no completed part fetched twice.

Faults are injected inside the agent's process on its S3 client (botocore `before-send`
hook): they exercise the same retry paths as a flaky network, but not a reset in the middle
of a response body. The kill happens after a quarter of the parts; the restart resumes from
the journal. "Parts fetched twice" = parts fetched by both processes - parts in the video.
A last row gives the least a fault run can take here: the clean run plus SHA-256 of the
parts done before the kill (a hash cannot resume from a saved state, so the restarted agent
reads them back and hashes them again); the target leaves the rest for the faults' retries,
the last few MiB of each part the kill cut off (the agent notes a part's progress every
4 MiB; the details give what the restart kept of them), and the restart.

Like is compared with like: both sides count the agent's own work only, from `Agent.run`
starting to the last receipt in the ledger, without Python's start-up (about a second, as
long as the whole quick clean run). The fault run is the killed process's work (its
`Agent.run` start to its death) plus the restarted one's. The whole-process wall clocks
(start-ups included: two for the fault run, one for the clean run) are in the details.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import BenchContext, Measurement, Target, make_file, scenario
from bench._peers import Endpoint
from bench.b1_agent import (
    AgentStack,
    agent_settings_record,
    digests_of,
    library_files,
    run_agent,
    sha256_cpu_s,
    stage_objects,
)
from mobile_backup.agent import StateDB, TransferConfig

MiB = 1024 * 1024


@scenario("B7", "fault run (1% 5xx + 1% resets, agent killed mid-video) vs clean run")
def faults(ctx: BenchContext) -> list[Measurement]:
    size = 256 * MiB if ctx.quick else 1024 * MiB
    part = 8 * MiB
    # The parts the agent really fetches: it grows a long video's parts (`part_size_for`),
    # so the kill lands after a quarter of them and a refetch is counted against them.
    planned = TransferConfig(part_size=part, max_concurrency=8).part_size_for(size)
    parts = -(-size // planned)
    ctx.record_setting("video", f"{size // MiB} MiB, {parts} parts of {planned // MiB} MiB")
    ctx.record_setting("faults", "1% HTTP 500 + 1% connection reset per S3 request; SIGKILL")
    files = ctx.once("files", lambda: [make_file(ctx.work_dir / "files" / "v7", size, seed=7)])
    digests = ctx.once("digests", lambda: digests_of(files))
    endpoint = Endpoint.from_seaweed(ctx.seaweed())
    stack = ctx.once("stack", lambda: AgentStack.provision(ctx, endpoint))
    agent_settings_record(ctx, 4, 8, part)
    out = ctx.work_dir / "out"
    shutil.rmtree(out, ignore_errors=True)

    stage_objects(ctx, stack, files, digests)
    # Both runs start alike, on memory the host backs (`warm_memory`).
    clean = run_agent(stack, library=out / "clean", expect=1, workers=4, max_concurrency=8,
                      part_size=part, warm=size)  # fmt: skip

    # The fault run: first process dies after a quarter of the parts, second one finishes.
    stage_objects(ctx, stack, files, digests)
    library = out / "faulty"
    job = {
        "emulator_url": stack.emulator_url, "region": stack.region, "table": stack.table,
        "queue_url": stack.queue_url, "s3_url": stack.s3.url, "library": str(library),
        "expect": 1, "workers": 4, "max_concurrency": 8, "part_size": part,
        "fault_rate": 0.01, "kill_after_parts": parts // 4, "warm_bytes": size,
    }  # fmt: skip
    library.mkdir(parents=True, exist_ok=True)
    job_file = library.parent / "b7-job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    started = time.perf_counter()
    killed = subprocess.run(
        [sys.executable, "-m", "bench.b1_agent", str(job_file)],
        env=stack.s3.env(), cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    died_at = time.time()
    first_process = time.perf_counter() - started
    first_elapsed = died_at - _run_started_at(killed.stdout)
    if killed.returncode != -9:
        raise RuntimeError(f"the first agent was not killed: {killed.returncode} {killed.stderr}")
    journaled, kept = _journaled(library)
    # The killed agent's message stays invisible for the queue's timeout; the restarted
    # agent finds the video through the ledger at start (as `agent run` does) and resumes.
    second = run_agent(stack, library=library, expect=1, workers=4, max_concurrency=8,
                       part_size=part, warm=size,
                       extra={"fault_rate": 0.01, "reconcile_at_start": True})  # fmt: skip
    if [p.stat().st_size for p in library_files(library)] != [size]:
        raise RuntimeError("the fault run did not place the video")
    shutil.rmtree(out, ignore_errors=True)
    fault_total = first_elapsed + second.elapsed
    refetched = max(0, journaled + second.parts_fetched - parts)
    # What resuming cannot avoid: SHA-256 cannot carry on from a saved state, so the
    # restarted agent hashes again the parts the killed one finished (read back from disk).
    rehash_s = sha256_cpu_s(files) * min(journaled, parts) / parts
    return [
        Measurement(
            metric="completion time, fault run vs clean", ours=fault_total, unit="s",
            peer=clean.elapsed, peer_name="clean run", target=Target.ratio_at_most(1.2),
            details={"first_process_work_s": first_elapsed,
                     "second_process_work_s": second.elapsed,
                     "parts_before_kill": journaled,
                     "kept_of_cut_parts_mib": kept / MiB,
                     "wall_with_startups_fault_s": first_process + second.detail["process_s"],
                     "wall_with_startup_clean_s": clean.detail["process_s"],
                     "wall_ratio": (first_process + second.detail["process_s"])
                     / clean.detail["process_s"]},
        ),
        Measurement(
            metric="least fault run vs clean: re-hashing the parts done before the kill",
            ours=(clean.elapsed + rehash_s) / clean.elapsed, unit="x",
            details={"rehash_s": rehash_s, "parts_before_kill": journaled},
        ),
        Measurement(
            metric="completed parts fetched twice", ours=float(refetched), unit="parts",
            target=Target.at_most(0, "parts"),
            details={"bytes_refetched": refetched * planned},
        ),
    ]  # fmt: skip


def _run_started_at(stdout: str) -> float:
    for line in stdout.splitlines():
        if line.startswith("{") and "run_started_at" in line:
            return float(json.loads(line)["run_started_at"])
    raise RuntimeError("the killed agent never reported that it started")


def _journaled(library: Path) -> tuple[int, int]:
    """Parts the killed agent finished, and bytes it noted of the parts it was fetching
    (read as the restarted agent reads them: `StateDB.kept_of_parts`)."""
    path = library / ".mobile-backup" / "agent.sqlite3"
    conn = sqlite3.connect(path)
    try:
        parts = int(conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0])
    finally:
        conn.close()
    state = StateDB(path, readonly=True)
    try:
        kept = sum(sum(state.kept_of_parts(name).values()) for name in state.resumable())
    finally:
        state.close()
    return parts, kept
