"""B4: latency from "upload complete" (the client's `on_done`) to "file fsynced in the
library" (the agent's placement record, written after fsync, verification and rename), on
the local stack as `local up` runs it: HTTP API + ingest poller + agent in this process, the
emulator in a child process of its own, the uploads from a third (as `mobile-backup upload`
is one).

Two shapes, on the same stack: files uploaded one after another (a phone trickling photos
in), and a burst of as many in one `upload` call (a member picking 200 photos at once: the
engine sends them in parallel and every S3 event arrives together). 200 of each (50 with
--quick). p50 and p99 of the per-file latency; target p99 < 1 s for both. There is no peer:
the seed's promise was "< 30 s".

What binds a burst is CPU: every file's presign, S3 write, event, ingest, ledger writes and
delivery run on this host's cores. The scenario reports the CPU per file of the stack's two
processes, and the least time those two cores need to work through the whole burst (its
CPU ÷ the cores). A p99 near that figure is CPU-bound, not waiting on our code's pacing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._harness import (
    BenchContext,
    Measurement,
    Target,
    cpu_seconds,
    make_files,
    run_measured,
    scenario,
)

# The uploader: `mobile-backup upload`'s engine in its own interpreter, printing the wall-clock
# time each file's upload completed (its `on_done`).
UPLOADER_CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from mobile_backup.client import ApiClient, Uploader

job = json.loads(sys.stdin.read())
LOCK = threading.Lock()


class Clock:
    def on_queued(self, **_): ...
    def on_progress(self, **_): ...
    def on_resumed(self, **_): ...
    def on_done(self, *, result):
        if result.sha256:
            line = json.dumps({"sha256": result.sha256, "at": time.time()}) + "\n"
            with LOCK:  # the engine's threads finish files at once: one line each
                sys.stdout.write(line)
                sys.stdout.flush()


api = ApiClient(base_url=job["api_url"], token=lambda force_refresh=False: job["token"])
uploader = Uploader(api=api, subscribers=[Clock()], device="bench")
try:
    files = [Path(p) for p in job["files"]]
    if job["one_at_a_time"]:
        for path in files:
            uploader.upload([path])
    else:
        uploader.upload(files)  # one command, the engine's own parallelism
finally:
    api.close()
"""


def _upload(
    api_url: str, token: str, files: list[Path], *, one_at_a_time: bool
) -> dict[str, float]:
    """Upload `files` from a child process; when each one's upload completed."""
    job = {"api_url": api_url, "token": token, "files": [str(p) for p in files],
           "one_at_a_time": one_at_a_time}  # fmt: skip
    run = run_measured(
        [sys.executable, "-c", UPLOADER_CHILD], stdin=json.dumps(job), timeout=600
    ).check()
    done = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if len(done) != len(files):
        raise RuntimeError(f"the uploader finished {len(done)} of {len(files)} files")
    return {d["sha256"]: d["at"] for d in done}


@scenario("B4", "latency: upload complete -> file fsynced in the library (local stack)")
def latency(ctx: BenchContext) -> list[Measurement]:
    from mobile_backup.client import Authenticator, TokenStore
    from mobile_backup.local import LocalStack
    from mobile_backup.local._poller import CONCURRENCY

    count = 50 if ctx.quick else 200
    ctx.record_setting("files", f"{count} x 100-400 KB one at a time, then {count} in one call")
    ctx.record_setting(
        "stack",
        f"LocalStack as `local up` runs it (emulator in its own process), ingest {CONCURRENCY} "
        "batches at once, long-poll 1 s",
    )
    ctx.record_setting("uploader", "its own process, as `mobile-backup upload` is")
    serial, burst = (
        make_files(
            ctx.work_dir / f"files-{shape}-{ctx.run}", count, min_size=100_000,
            max_size=400_000, seed=100 + 7 * ctx.run + i, suffix=".jpg",
        )
        for i, shape in enumerate(("serial", "burst"))
    )  # fmt: skip
    with tempfile.TemporaryDirectory(dir=ctx.work_dir) as tmp:
        library = Path(tmp) / "library"
        with LocalStack(library=library, poll_seconds=1, emulator_process=True) as stack:
            emulator_pid = stack.emulator_pid
            assert emulator_pid is not None
            auth = Authenticator(settings=stack.settings, store=TokenStore(Path(tmp) / "s.json"))
            auth.login(stack.email, stack.password)
            api_url, token = stack.settings.require("api_url"), auth.access_token()
            shapes: dict[str, list[float]] = {}
            stack_cpu: dict[str, tuple[float, float]] = {}
            for shape, files in (("serial", serial), ("burst", burst)):
                before = time.process_time(), cpu_seconds(emulator_pid)
                done_at = _upload(api_url, token, files, one_at_a_time=shape == "serial")
                placed = _wait_placed(library, set(done_at), timeout=300)
                stack_cpu[shape] = (
                    (time.process_time() - before[0]) / len(files),  # API, ingest, agent
                    (cpu_seconds(emulator_pid) - before[1]) / len(files),
                )
                shapes[shape] = sorted(placed[sha] - done_at[sha] for sha in done_at)
    within = Target.at_most
    out: list[Measurement] = []
    for shape, latencies in shapes.items():
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        out += [
            Measurement(metric=f"{shape}: p50 upload → fsynced", ours=p50, unit="s",
                        target=within(0.5, "s")),
            Measurement(metric=f"{shape}: p99 upload → fsynced", ours=p99, unit="s",
                        target=within(1.0, "s")),
            Measurement(metric=f"{shape}: max upload → fsynced", ours=latencies[-1], unit="s",
                        target=within(30.0, "s")),
            Measurement(metric=f"{shape}: CPU per file, API + ingest + agent", unit="ms",
                        ours=stack_cpu[shape][0] * 1e3),
            Measurement(metric=f"{shape}: CPU per file, the emulator (AWS side)", unit="ms",
                        ours=stack_cpu[shape][1] * 1e3),
        ]  # fmt: skip
        if shape == "burst":  # the least time the host's cores need for the stack's work
            cores = os.cpu_count() or 1
            floor = sum(stack_cpu[shape]) * len(latencies) / cores
            out.append(Measurement(metric=f"burst: the stack's CPU for it ÷ {cores} cores",
                                   ours=floor, unit="s"))  # fmt: skip
    return out


def _wait_placed(library: Path, shas: set[str], *, timeout: float) -> dict[str, float]:
    db = library / ".mobile-backup" / "agent.sqlite3"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
            try:
                rows = conn.execute("SELECT sha256, placed_at FROM placed").fetchall()
            finally:
                conn.close()
            got = {sha: datetime.fromisoformat(at).astimezone(UTC).timestamp() for sha, at in rows}
            if shas <= set(got):
                return got
        time.sleep(0.2)
    raise RuntimeError("not every upload reached the library in time")
