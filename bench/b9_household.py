"""B9, a family's years: one member with 50,000 files, beside a household of four with 20,000
each (5,000 and 2,000 with `--quick`), on the local stack.

The ledger is seeded straight into its table (entries as the API, the ingest and
a PC's receipt leave them, index keys included); the member's folder on "the phone" holds
the same 50,000 files (20 KB each), so a dry run finds every one backed up. Measured:

- **History, first paint**: a fresh app process signs in and reads the member's history;
  the time until the first page of the gallery is ready to draw (newest capture first, so
  it is the top of the final gallery), and the process's peak memory once every page is in.
  This is the app server's side (the Flutter paint in the browser comes after it). Then one
  poll, as the app makes every few seconds: only the entries changed since the last read.
- **`status`** and **`status --json --all`**: wall time of the CLI, start-up included.
- **Reconcile**: a PC's full pass and an incremental one with nothing changed, wall time and
  ledger entries read (the report's own count): the incremental one must read < 1 % of what
  the full one reads.
- **`upload --dry-run` of the 50,000-file folder**: warm (the journal already knows every
  file's hash and the ledger's answer, as on every run after the first: it reads only the
  ledger's changes since), and a cold first run (each run removes the upload journal first,
  as on a new PC): its wall time (the member's list of contents read, then every file
  hashed) and its hashing rate (the bytes it read and hashed over the time hashing was
  under way, batches overlapping counted once, from its `--json`) beside `sha256sum` over
  the same files (both with the files in the page cache).

Everything runs on loopback; the ledger is on dynalite (a DynamoDB implementation in Node)
and the rest of the stack on the emulator (moto), so the absolute times say what our code and
these emulators cost here, not what AWS would take.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from bench._harness import BenchContext, Measurement, Target, scenario

FILE_BYTES = 20_000
TARGET_FIRST_PAINT_S = 2.0
TARGET_APP_MB = 300.0
TARGET_STATUS_S = 2.0
TARGET_WARM_DRY_RUN_S = 15.0
TARGET_INCREMENTAL_SHARE = 0.01
TARGET_HASHING_RATIO = 0.8

APP_CHILD = r"""
import json, resource, sys, threading, time
from mobile_backup.app import AppController
from mobile_backup.core import Settings
config = json.loads(sys.argv[1])
controller = AppController(settings=Settings.explicit(**config["settings"]))
controller.sign_in(config["email"], config["password"])
history = controller.history
started = time.perf_counter()
runner = threading.Thread(target=history.refresh)
runner.start()
first = None
while runner.is_alive() or first is None:
    if first is None and history.state.entries:
        first = time.perf_counter() - started
    if not runner.is_alive() and first is None:
        first = time.perf_counter() - started
    time.sleep(0.005)
runner.join()
total = time.perf_counter() - started
polled = time.perf_counter()
history.refresh()  # a poll: only what changed since (nothing here)
poll = time.perf_counter() - polled
# The peak of this process's own memory: VmHWM. (ru_maxrss is not: Linux carries the
# parent's peak across the fork and exec that started this process, so it said the bench's.)
try:
    with open("/proc/self/status") as status:
        peak_kb = next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "first_paint_s": first, "all_pages_s": total, "entries": len(history.state.entries),
    "peak_mb": peak_kb / 1024, "poll_s": poll,
}))
"""


def _photo(n: int) -> bytes:
    """A distinct small "photo" (JPEG start, then deterministic filler)."""
    seed = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return b"\xff\xd8\xff\xe0" + (seed * (FILE_BYTES // len(seed) + 1))[: FILE_BYTES - 4]


def _seed(ctx: BenchContext, members: int, per_member: int, main: int) -> dict[str, Any]:
    """The stack, its ledger and the main member's phone folder, made once per bench run."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.core import Receipt, write_profile
    from mobile_backup.ledger import Ledger
    from mobile_backup.ledger._items import file_sk, receipt_map, s_, taken_key, user_pk
    from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

    home = ctx.work_dir / "b9-home"
    os.environ["MOBILE_BACKUP_CONFIG_FILE"] = str(home / "config.toml")
    os.environ["MOBILE_BACKUP_STATE_DIR"] = str(home / "state")
    # The ledger on dynalite: moto answers a query on an index by walking the whole table,
    # which would make every listing here cost O(household) instead of O(page).
    stack = LocalStack(
        library=ctx.work_dir / "b9-library",
        run_agent=False,
        emulator_process=True,
        dynamodb_endpoint_url=ctx.dynalite().endpoint_url,
    )
    stack.start()
    atexit.register(stack.stop)
    write_profile(LOCAL_PROFILE, profile_values(stack.settings))
    settings = stack.settings
    db = dynamodb_client(settings, component="test")
    table = settings.require("table")
    phone = ctx.work_dir / "b9-phone"
    phone.mkdir(parents=True, exist_ok=True)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    # The other members' entries only need their own partitions: they never sign in here.
    subs = [stack.user_sub or "", *(str(uuid.uuid4()) for _ in range(members))]
    seeded = time.perf_counter()
    n = 0
    for index, sub in enumerate(subs):
        count = main if index == 0 else per_member
        batch: list[Any] = []
        for i in range(count):
            n += 1
            data = _photo(n)
            sha = hashlib.sha256(data).hexdigest()
            name = f"IMG_{i:05d}.jpg"
            if index == 0:
                (phone / name).write_bytes(data)
            taken = start + timedelta(hours=i)
            at = taken + timedelta(days=1)
            receipt = Receipt(host="desk", path=f"demo/{taken:%Y/%m}/{name}", sha256=sha, at=at,
                              pc="main", captured_at=taken, capture_source="exif")  # fmt: skip
            item = {
                "pk": s_(user_pk(sub)), "sk": s_(file_sk(sha)), "filename": s_(name),
                "size": {"N": str(len(data))}, "content_type": s_("image/jpeg"),
                "status": s_("downloaded"), "created_at": s_(taken.isoformat()),
                "uploaded_at": s_(taken.isoformat()), "downloaded_at": s_(at.isoformat()),
                "taken_at": s_(taken.isoformat()), "taken_src": s_("exif"),
                "receipt": {"M": receipt_map(receipt)}, "receipt@main": {"M": receipt_map(receipt)},
                "gsi2pk": s_(user_pk(sub)), "gsi2sk": s_(taken_key(taken, sha)),
                "gsi3pk": s_(user_pk(sub)), "gsi3sk": s_(taken_key(at, sha)),
            }  # fmt: skip
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25:
                db.batch_write_item(RequestItems={table: batch})
                batch = []
        if batch:
            db.batch_write_item(RequestItems={table: batch})
        # The member's counts, as the first `status` after an update to a version that
        # keeps them leaves them (a whole count; every transition after it adds to them).
        counted = time.perf_counter()
        Ledger(db, table).counts(sub, now=datetime.now(UTC))
        ctx.log(f"B9: a whole count of {count} entries: {time.perf_counter() - counted:.1f} s")
    ctx.log(f"B9: seeded {n} ledger entries in {time.perf_counter() - seeded:.0f} s")
    return {"stack": stack, "phone": phone, "entries": n, "subs": subs}


def _children_cpu() -> float:
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cold_dry_run(phone: Path) -> dict[str, Any]:
    """A first dry run (the upload journal removed, as on a new PC: no hash and no answer of
    the ledger kept): wall time, the CPU its process used, and what it says it hashed
    (`--json`'s "hashed": the batches that read and hashed files)."""
    for journal in (Path(os.environ["MOBILE_BACKUP_STATE_DIR"]) / "local").glob("uploads-*"):
        journal.unlink()  # (the -wal and -shm files with it)
    cpu = _children_cpu()
    seconds, done = _cli("upload", "--dry-run", "--json", str(phone))
    hashed = json.loads(done.stdout)["hashed"]
    return {"s": seconds, "cpu": _children_cpu() - cpu, **hashed}


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    from mobile_backup.local import LOCAL_PROFILE

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mobile_backup", "--profile", LOCAL_PROFILE, *args],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"mobile-backup {' '.join(args)} failed: {done.stderr[-500:]}")
    return time.perf_counter() - started, done


def _app_first_paint(stack: Any) -> dict[str, Any]:
    from mobile_backup.core import EMULATOR_KEY

    values = stack.settings.model_dump(mode="json", exclude_none=True)
    values["aws_secret_access_key"] = EMULATOR_KEY
    config = {"settings": values, "email": stack.email, "password": stack.password}
    done = subprocess.run(
        [sys.executable, "-c", APP_CHILD, json.dumps(config)],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _reconcile(stack: Any, sub: str, library: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A PC serving the member: a full pass, then an incremental one with nothing changed."""
    from mobile_backup.agent import build_agent
    from mobile_backup.agent._reconcile import FULLY_RECONCILED_AT, RECONCILED_AT

    agent = build_agent(stack.settings.model_copy(update={"library": library}))
    try:
        agent.prepare()
        # The PC holds one of the member's files (so it serves the member); its state file
        # knows no pass yet, as after `agent install` on a new PC.
        sample = _photo(1)
        path = PurePosixPath("demo/2021/01/IMG_00000.jpg")
        (library / path).parent.mkdir(parents=True, exist_ok=True)
        (library / path).write_bytes(sample)
        agent.state.record_placed(user_sub=sub, sha256=hashlib.sha256(sample).hexdigest(),
                                  path=path, size=len(sample), mtime_ns=-1,
                                  at=datetime.now(UTC), new_file=False)  # fmt: skip
        agent.state.set_values(**{RECONCILED_AT: None, FULLY_RECONCILED_AT: None})
        figures = []
        for full in (True, False):
            started = time.perf_counter()
            report = agent.reconciler(full=full).run()
            figures.append({"s": time.perf_counter() - started,
                            "read": report.ledger_entries_read, "ok": report.ok,
                            "problems": report.problems[:3]})  # fmt: skip
        return figures[0], figures[1]
    finally:
        agent.close()


def _sha256sum(folder: Path) -> float:
    names = sorted(p.name for p in folder.iterdir())
    started = time.perf_counter()
    for i in range(0, len(names), 2000):
        subprocess.run(["sha256sum", *names[i : i + 2000]], cwd=folder, capture_output=True,
                       check=True)  # fmt: skip
    return time.perf_counter() - started


@scenario("B9", "A family's years: 50,000 files per member")
def b9_household(ctx: BenchContext) -> list[Measurement]:
    main, members, per_member = (5_000, 4, 2_000) if ctx.quick else (50_000, 4, 20_000)
    ctx.record_setting("files of the member", main)
    ctx.record_setting("household", f"{members} more members of {per_member} files each")
    ctx.record_setting("file size (phone folder)", FILE_BYTES)
    seed = ctx.once("b9-seed", lambda: _seed(ctx, members, per_member, main))
    stack, phone = seed["stack"], seed["phone"]
    subprocess.run(
        [sys.executable, "-m", "mobile_backup", "--profile", "local", "login", "--email",
         stack.email, "--password-stdin"],
        input=stack.password + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip

    app = _app_first_paint(stack)
    status_s, status = _cli("status")
    all_s, listed = _cli("status", "--json", "--all")
    shown = json.loads(listed.stdout)["shown"]
    full, incremental = _reconcile(stack, seed["subs"][0], ctx.work_dir / f"b9-pc-{ctx.unique()}")

    # Each run's first dry run hashes every file (no journal); the next one is warm.
    cold = _cold_dry_run(phone)
    cpu = _children_cpu()
    warm_s, dry = _cli("upload", "--dry-run", "--json", str(phone))
    warm_cpu = _children_cpu() - cpu
    sum_s = _sha256sum(phone)
    mb = main * FILE_BYTES / 1e6
    warm_hashed = json.loads(dry.stdout)["hashed"]["files"] if dry.stdout else None
    ctx.log(
        f"B9: first paint {app['first_paint_s']:.2f} s, all {app['all_pages_s']:.1f} s, "
        f"{app['peak_mb']:.0f} MB; status {status_s:.2f} s; full {full}; incr {incremental}"
    )
    share = incremental["read"] / max(1, full["read"])
    return [
        Measurement("History first paint", app["first_paint_s"], "s",
                    target=Target.at_most(TARGET_FIRST_PAINT_S, "s"),
                    details={"all pages s": round(app["all_pages_s"], 2),
                             "entries": app["entries"]}),
        Measurement("app server peak memory", app["peak_mb"], "MB",
                    target=Target.at_most(TARGET_APP_MB, "MB")),
        Measurement("History poll, nothing changed (reads only what changed)", app["poll_s"],
                    "s"),
        Measurement("status", status_s, "s", target=Target.at_most(TARGET_STATUS_S, "s"),
                    details={"first line": status.stdout.splitlines()[0][:120]}),
        Measurement("status --json --all", all_s, "s", details={"files listed": shown}),
        Measurement("reconcile, full pass", full["s"], "s",
                    details={"ledger entries read": full["read"], "ok": full["ok"]}),
        Measurement("reconcile, incremental (nothing changed)", incremental["s"], "s",
                    details={"ledger entries read": incremental["read"], "ok": incremental["ok"]}),
        Measurement("incremental reads / full reads", share, "",
                    target=Target.at_most(TARGET_INCREMENTAL_SHARE)),
        Measurement("upload --dry-run, warm", warm_s, "s",
                    target=Target.at_most(TARGET_WARM_DRY_RUN_S, "s"),
                    details={"exit": dry.returncode, "files hashed": warm_hashed}),
        # The client's share: the rest is the API reading what changed (and dynalite).
        Measurement("upload --dry-run, warm: the client's own CPU", warm_cpu, "s"),
        # The first run reads the member's list of contents (45 pages at 50,000), then
        # hashes every file.
        Measurement("upload --dry-run, cold (the member's list, then hashing)", cold["s"], "s",
                    details={"client cpu s": round(cold["cpu"], 2)}),
        Measurement("upload --dry-run, cold: hashing rate", cold["bytes"] / 1e6 / cold["seconds"],
                    "MB/s", peer=mb / sum_s, peer_name="sha256sum",
                    target=Target.ratio_at_least(TARGET_HASHING_RATIO),
                    details={"files hashed": cold["files"], "hashing s": cold["seconds"],
                             "sha256sum s": round(sum_s, 2)}),
    ]  # fmt: skip
