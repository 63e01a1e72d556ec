"""Crash-consistency torture: SIGKILL the client and the agent at random instants, over and
over, then prove that nothing was lost, nothing is on disk twice and nothing is partial.

The idea is Kopia's robustness suite applied to invariants 1, 2 and 4 of DESIGN.md. On the
local stack (emulator, HTTP API and ingest poller in this process) with the agent and the
CLI as separate processes, each round:

1. writes a random mix of new source files (small JPEGs, now and then a multipart video,
   copies of earlier contents under new names, earlier names with new contents);
2. starts `mobile-backup upload` on the whole source tree (so a killed upload resumes);
3. kills the client, the agent or both with SIGKILL, either after a random delay or at a
   random *crash point*: a named instant in the code (`mobile_backup.instrument.crash_point`) that
   the process, armed through `MOBILE_BACKUP_CRASH_AT`, reaches and dies at by itself;
4. restarts what was killed (the next round's upload, a new agent).

At the end it uploads once more without faults, waits for the pipeline to drain, stops and
restarts the agent cleanly, and checks against the source files: every content present in
the library exactly once and byte-identical, no other file outside the agent's hidden dir,
staging empty, the ledger and the library agree (a receipt for every content, pointing at
the right bytes), `agent reconcile` finds nothing to do, and the dead-letter queue holds
nothing unexplained.

Seeded: the schedule (files, targets, delays, crash points) comes from the seed alone, and
a failing run prints the seed and its schedule; `--seed N` replays it.

    make torture                                  # the long run (1,000 kill points)
    .venv/bin/python -m bench.torture --kill-points 20 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
CLI = [sys.executable, "-m", "mobile_backup"]
HIDDEN = ".mobile-backup"
# Client options that make a 17 MiB video a 4-part multipart upload, and agent options that
# make it a ranged, journaled, resumable download: both sides' part machinery is in reach.
CLIENT_ARGS = ["--part-size", "5", "--multipart-threshold", "6", "--parallel", "4"]
AGENT_ARGS = ["--workers", "3", "--part-size", "4", "--poll-seconds", "1", "--reconcile-every", "0"]
VIDEO_SIZE = (16 * MiB + 1, 18 * MiB)
QUEUE_VISIBILITY = 3  # seconds before a killed agent's messages come back
DRAIN_STALL = 45.0  # seconds without progress before the drain gives up


# The schedule ----------------------------------------------------------------------------
@dataclass(slots=True)
class Kill:
    """One planned SIGKILL: who, and either after how long or at which crash point."""

    round: int
    target: str  # "client" | "agent"
    delay: float | None = None
    point: str | None = None
    nth: int = 1
    hit: bool = False
    note: str = ""

    def describe(self) -> str:
        how = f"at {self.point}#{self.nth}" if self.point else f"after {self.delay:.2f} s"
        return f"r{self.round} {self.target} {how}{' ✓' if self.hit else ''}{self.note}"


@dataclass(slots=True)
class SourceFile:
    path: Path
    sha256: str
    kind: str  # photo | video | duplicate | same-name


@dataclass(slots=True)
class TortureReport:
    """What a run did and found; `ok` only when every check passed."""

    seed: int
    kill_points: int = 0
    kills_by: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    files: int = 0
    contents: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dlq_explained: int = 0
    seconds: float = 0.0
    schedule: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.partial or self.problems)

    def summary(self) -> str:
        return (
            f"seed {self.seed}: {self.kill_points} kill points "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.kills_by.items()))}) in "
            f"{self.rounds} rounds, {self.files} files ({self.contents} contents): "
            f"{len(self.lost)} lost, {len(self.duplicated)} duplicated, "
            f"{len(self.partial)} partial, {len(self.problems)} other problems, "
            f"{self.dlq_explained} dead-lettered by redelivery; {self.seconds:.0f} s"
        )

    def failure_text(self) -> str:
        lines = [self.summary(), f"replay: python -m bench.torture --seed {self.seed} "
                 f"--kill-points {self.kill_points}"]  # fmt: skip
        for title, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("partial or stray", self.partial),
            ("problems", self.problems),
        ):
            lines += [f"{title}: {item}" for item in items]
        lines.append("schedule: " + "; ".join(self.schedule))
        return "\n".join(lines)


# Processes -------------------------------------------------------------------------------
class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, armed: str | None):
        self.armed = armed
        self.log = log
        run_env = dict(env)
        if armed:
            run_env["MOBILE_BACKUP_CRASH_AT"] = armed
        else:
            run_env.pop("MOBILE_BACKUP_CRASH_AT", None)
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(args)}   [armed: {armed}]\n".encode())
            out.flush()
            self.popen = subprocess.Popen(args, env=run_env, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> bool:
        """SIGKILL; True when the process was still alive to be killed."""
        if not self.alive():
            return False
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)
        return True

    @property
    def killed(self) -> bool:
        return self.popen.returncode == -signal.SIGKILL

    def tail(self, lines: int = 8) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return " | ".join(text[-lines:])


# The harness -----------------------------------------------------------------------------
class Torture:
    """One seeded run; `run()` returns the report (it raises only on harness errors)."""

    def __init__(
        self,
        *,
        workdir: Path,
        seed: int,
        kill_points: int,
        log: Callable[[str], None] = print,
    ) -> None:
        self.workdir = workdir
        self.seed = seed
        self.kill_points = kill_points
        self.say = log
        self.rng = random.Random(seed)
        self.source = workdir / "source"
        self.library = workdir / "library"
        self.logs = workdir / "logs"
        self.files: list[SourceFile] = []
        self.kills: list[Kill] = []
        self.report = TortureReport(seed=seed)
        self.agent: Proc | None = None
        self.agent_kill: Kill | None = None
        self._stack: Any = None
        self._env: dict[str, str] = {}
        from mobile_backup.instrument import crash_points

        self.points = crash_points()

    # Set-up ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stack_running(self) -> Iterator[Any]:
        from mobile_backup.aws import sqs_client
        from mobile_backup.client import Authenticator
        from mobile_backup.core import write_profile
        from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values

        stack = LocalStack(library=self.library, run_agent=False, poll_seconds=1)
        stack.start()
        try:
            Authenticator(settings=stack.settings).login(stack.email, stack.password)
            write_profile(LOCAL_PROFILE, profile_values(stack.settings))
            sqs_client(stack.settings, component="test").set_queue_attributes(
                QueueUrl=stack.settings.require("downloads_queue_url"),
                Attributes={"VisibilityTimeout": str(QUEUE_VISIBILITY)},
            )
            self._stack = stack
            yield stack
        finally:
            self._stack = None
            stack.stop()

    def _agent_env(self) -> dict[str, str]:
        from mobile_backup.local import agent_environment

        return {
            **os.environ,
            **agent_environment(self._stack.settings, self.library),
            "COLUMNS": "200",
        }

    def _client_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["COLUMNS"] = "200"
        return env

    # Source files ------------------------------------------------------------------------
    def _photo(self) -> bytes:
        from PIL import Image

        side = self.rng.randint(48, 320)
        image = Image.frombytes("RGB", (side, side), self.rng.randbytes(side * side * 3))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self.rng.randint(70, 95))
        return buf.getvalue()

    def _video(self) -> bytes:
        size = self.rng.randint(*VIDEO_SIZE)
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        return head + self.rng.randbytes(size - len(head))

    def _write_round(self, number: int) -> None:
        folder = self.source / f"round-{number:04d}"
        folder.mkdir(parents=True)
        count = self.rng.randint(2, 4)
        for i in range(count):
            roll = self.rng.random()
            if number % 7 == 3 and i == 0:
                kind, name, data = "video", f"VID_{number:04d}.mp4", self._video()
            elif roll < 0.15 and self.files:
                earlier = self.rng.choice(self.files)
                kind = "duplicate"
                name = f"COPY_{number:04d}_{i}{earlier.path.suffix}"
                data = earlier.path.read_bytes()
            elif roll < 0.27 and (others := self._earlier_photos(folder)):
                # An earlier round's name (another folder), never a path of this round:
                # the same name with other bytes must reach the library as a second file.
                kind, name = "same-name", self.rng.choice(others).path.name
                if (folder / name).exists():
                    kind, name = "photo", f"IMG_{number:04d}_{i}.jpg"
                data = self._photo()
            else:
                kind, name = "photo", f"IMG_{number:04d}_{i}.jpg"
                data = self._photo()
            path = folder / name
            assert not path.exists(), f"the harness would overwrite {path}"
            path.write_bytes(data)
            self.files.append(SourceFile(path, hashlib.sha256(data).hexdigest(), kind))

    def _earlier_photos(self, folder: Path) -> list[SourceFile]:
        return [f for f in self.files if f.path.parent != folder and f.kind != "video"]

    # Rounds ------------------------------------------------------------------------------
    def _plan(self, number: int) -> list[Kill]:
        roll = self.rng.random()
        targets = ["client"] if roll < 0.4 else ["agent"] if roll < 0.8 else ["client", "agent"]
        kills = []
        for target in targets:
            if self.rng.random() < 0.5:
                kills.append(Kill(number, target, point=self.rng.choice(self.points[target]),
                                  nth=self.rng.randint(1, 3)))  # fmt: skip
            else:
                kills.append(Kill(number, target, delay=round(self.rng.uniform(0.05, 3.0), 2)))
        return kills

    def _start_agent(self, kill: Kill | None) -> None:
        armed = f"{kill.point}:{kill.nth}" if kill and kill.point else None
        self.agent = Proc(
            [*CLI, "agent", "run", *AGENT_ARGS],
            self._agent_env(),
            self.logs / "agent.log",
            armed,
        )
        self.agent_kill = kill if armed else None

    def _check_agent(self) -> None:
        """Count an armed agent that died at its crash point; restart a dead agent."""
        agent = self.agent
        if agent is None or agent.alive():
            return
        if agent.killed and self.agent_kill is not None and not self.agent_kill.hit:
            self._hit(self.agent_kill)
        elif not agent.killed:
            self.report.problems.append(
                f"agent exited by itself with {agent.popen.returncode}: {agent.tail()}"
            )
        self.agent = None
        self.agent_kill = None

    def _hit(self, kill: Kill) -> None:
        kill.hit = True
        self.report.kill_points += 1
        key = f"{kill.target}@{'point' if kill.point else 'delay'}"
        self.report.kills_by[key] = self.report.kills_by.get(key, 0) + 1

    def _round(self, number: int) -> None:
        self._write_round(number)
        kills = self._plan(number)
        self.kills += kills
        by_target = {k.target: k for k in kills}
        self._check_agent()
        agent_kill = by_target.get("agent")
        if agent_kill is not None and agent_kill.point is not None:
            # Re-arm: the running agent is killed now (an unplanned but real kill at a random
            # instant of its work) and a new one starts armed for this round's point.
            if self.agent is not None and self.agent.kill():
                extra = Kill(number, "agent", delay=0.0, note=" (re-arm)")
                self.kills.append(extra)
                self._hit(extra)
            self.agent = None
            self._start_agent(agent_kill)
        elif self.agent is None:
            self._start_agent(None)
        client_kill = by_target.get("client")
        armed = (
            f"{client_kill.point}:{client_kill.nth}"
            if client_kill is not None and client_kill.point
            else None
        )
        client = Proc(
            [*CLI, "--profile", "local", "upload", str(self.source), *CLIENT_ARGS],
            self._client_env(),
            self.logs / "client.log",
            armed,
        )
        started = time.monotonic()
        delayed = sorted((k for k in kills if k.delay is not None), key=lambda k: k.delay or 0)
        for kill in delayed:
            time.sleep(max(0.0, started + (kill.delay or 0) - time.monotonic()))
            proc = client if kill.target == "client" else self.agent
            if proc is not None and proc.kill():
                self._hit(kill)
                if kill.target == "agent":
                    self.agent = None
                    self.agent_kill = None
        try:
            client.popen.wait(180)
        except subprocess.TimeoutExpired:
            client.kill()
            self.report.problems.append(f"round {number}: the upload hung: {client.tail()}")
        if client.killed:
            if client_kill is not None and client_kill.point and not client_kill.hit:
                self._hit(client_kill)
        elif client.popen.returncode != 0:
            self.report.problems.append(
                f"round {number}: upload exited {client.popen.returncode}: {client.tail()}"
            )
        self._check_agent()

    # Final checks ------------------------------------------------------------------------
    def _finish(self) -> None:
        if self.agent is not None and self.agent_kill is not None and self.agent.alive():
            if self.agent.kill():  # armed but never reached its point: disarm it for the end
                extra = Kill(self.report.rounds, "agent", delay=0.0, note=" (disarm)")
                self.kills.append(extra)
                self._hit(extra)
            self.agent = None
        self._check_agent()
        if self.agent is None:
            self._start_agent(None)
        final = subprocess.run(
            [*CLI, "--profile", "local", "upload", str(self.source), *CLIENT_ARGS],
            env=self._client_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if final.returncode != 0 or " 0 failed" not in final.stdout:
            self.report.problems.append(
                f"the clean final upload did not succeed ({final.returncode}): "
                f"{final.stdout[-600:]} {final.stderr[-600:]}"
            )
        self._drain()
        assert self.agent is not None
        self.agent.popen.send_signal(signal.SIGTERM)
        try:
            code = self.agent.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            code = None
        if code != 0:
            self.report.problems.append(f"the agent did not stop cleanly ({code})")
        # A clean restart empties staging of anything a crash left behind.
        self._start_agent(None)
        deadline = time.monotonic() + 60
        while "agent on" not in self._agent_file_log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.agent.popen.send_signal(signal.SIGTERM)
        self.agent.popen.wait(60)
        self.agent = None
        staging = self.library / HIDDEN / "staging"
        left = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
        if left:
            self.report.problems.append(f"staging not empty after a clean restart: {left}")
        self._check_library()
        self._check_reconcile()

    def _agent_file_log(self) -> str:
        path = self.library / HIDDEN / "logs" / "agent.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _ledger_records(self) -> dict[str, Any]:
        from mobile_backup.aws import dynamodb_client
        from mobile_backup.ledger import Ledger

        s = self._stack.settings
        ledger = Ledger(dynamodb_client(s, component="test"), s.require("table"))
        records: dict[str, Any] = {}
        cursor = None
        while True:
            page, cursor = ledger.list_files(self._stack.user_sub, limit=100, cursor=cursor)
            records.update({r.sha256: r for r in page})
            if cursor is None:
                return records

    def _dead_letters(self) -> list[dict[str, Any]]:
        from mobile_backup.aws import sqs_client

        s = self._stack.settings
        sqs = sqs_client(s, component="test")
        url = s.require("downloads_queue_url")
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        dlq_arn = json.loads(attrs["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        dlq = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[-1])["QueueUrl"]
        found: list[dict[str, Any]] = []
        while True:
            resp = sqs.receive_message(
                QueueUrl=dlq,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            batch = resp.get("Messages", [])
            if not batch:
                return found
            for m in batch:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])

    def _drain(self) -> None:
        """Wait until the ledger holds a receipt for every content.

        A message dead-lettered because killed agents received it `maxReceiveCount` times is
        explained (it carries a known content): it is sent back to the downloads queue, as
        `agent redrive` would. Anything else stuck is reported as lost by the final checks.
        """
        from mobile_backup.aws import sqs_client

        expected = {f.sha256 for f in self.files}
        last_progress = time.monotonic()
        best = -1
        while True:
            self._check_agent()
            if self.agent is None:
                self._start_agent(None)
            records = self._ledger_records()
            done = sum(1 for h in expected if h in records and records[h].receipt is not None)
            if done == len(expected):
                return
            if done > best:
                best, last_progress = done, time.monotonic()
            for body in self._dead_letters():
                if body.get("sha256") in expected:
                    self.report.dlq_explained += 1
                    sqs_client(self._stack.settings, component="test").send_message(
                        QueueUrl=self._stack.settings.require("downloads_queue_url"),
                        MessageBody=json.dumps(body),
                    )
                else:
                    self.report.problems.append(f"unexplained dead letter: {body}")
                last_progress = time.monotonic()
            if time.monotonic() - last_progress > DRAIN_STALL:
                return
            time.sleep(0.3)

    def _check_library(self) -> None:
        expected = {f.sha256 for f in self.files}
        found: Counter[str] = Counter()
        where: dict[str, list[str]] = {}
        for path in sorted(self.library.rglob("*")):
            relative = path.relative_to(self.library)
            if relative.parts[0] == HIDDEN or not path.is_file():
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[digest] += 1
            where.setdefault(digest, []).append(relative.as_posix())
            if digest not in expected:
                self.report.partial.append(f"{relative} ({path.stat().st_size} bytes)")
        for digest in sorted(expected - set(found)):
            names = [f.path.relative_to(self.source).as_posix() for f in self.files
                     if f.sha256 == digest]  # fmt: skip
            self.report.lost.append(f"{digest[:12]} ({', '.join(names)})")
        for digest, n in sorted(found.items()):
            if n > 1 and digest in expected:
                self.report.duplicated.append(f"{digest[:12]} x{n}: {where[digest]}")
        records = self._ledger_records()
        for digest in sorted(expected):
            record = records.get(digest)
            if record is None:
                self.report.problems.append(f"{digest[:12]}: not in the ledger")
                continue
            if record.receipt is None:
                self.report.problems.append(f"{digest[:12]}: no receipt ({record.status})")
                continue
            placed = self.library / record.receipt.path
            if not placed.is_file() or hashlib.sha256(placed.read_bytes()).hexdigest() != digest:
                self.report.problems.append(
                    f"{digest[:12]}: the receipt names {record.receipt.path}, which does not "
                    "hold these bytes"
                )
        for body in self._dead_letters():
            self.report.problems.append(f"dead letter left after the drain: {body}")
        self._check_tags(records)

    def _check_tags(self, records: dict[str, Any]) -> None:
        """Every received content's cloud copy is tagged `downloaded`, or noted in the state
        file for the agent's next quiet moment: no crash leaves a copy kept forever."""
        from mobile_backup.agent import StateDB
        from mobile_backup.aws import s3_client
        from mobile_backup.core import STATE_TAG, ObjectState, object_key

        s = self._stack.settings
        s3 = s3_client(s, component="test")
        state = StateDB(self.library / HIDDEN / "agent.sqlite3", readonly=True)
        try:
            noted = {key for _, key, _ in state.untagged(state.untagged_count())}
        finally:
            state.close()
        tagged = {"Key": STATE_TAG, "Value": ObjectState.DOWNLOADED}
        for digest, record in sorted(records.items()):
            if record.receipt is None:
                continue
            key = object_key(self._stack.user_sub, digest)
            tags = s3.get_object_tagging(Bucket=s.require("bucket"), Key=key)["TagSet"]
            if tagged not in tags and key not in noted:
                self.report.problems.append(
                    f"{digest[:12]}: received, but its cloud copy is neither tagged nor noted"
                )

    def _check_reconcile(self) -> None:
        run = subprocess.run(
            [*CLI, "agent", "reconcile", "--json"],
            env=self._agent_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            self.report.problems.append(f"reconcile printed no JSON ({run.returncode}): "
                                        f"{run.stdout[-400:]} {run.stderr[-400:]}")  # fmt: skip
            return
        fetched = {k: v for k, v in report.get("outcomes", {}).items() if v}
        if run.returncode != 0 or not report.get("ok") or fetched or report.get("findings"):
            self.report.problems.append(f"reconcile found work to do: {report}")

    # Entry point -------------------------------------------------------------------------
    def run(self) -> TortureReport:
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.source.mkdir(parents=True, exist_ok=True)
        with self._stack_running():
            try:
                number = 0
                while self.report.kill_points < self.kill_points and number < 4 * self.kill_points:
                    self._round(number)
                    number += 1
                    self.report.rounds = number
                    if number % 10 == 0:
                        self.say(f"  round {number}: {self.report.kill_points} kill points")
                self._finish()
            finally:
                if self.agent is not None:
                    self.agent.kill()
        self.report.files = len(self.files)
        self.report.contents = len({f.sha256 for f in self.files})
        self.report.seconds = time.monotonic() - started
        self.report.schedule = [k.describe() for k in self.kills]
        if self.report.kill_points < self.kill_points:
            self.report.problems.append(
                f"only {self.report.kill_points} of {self.kill_points} kill points landed"
            )
        return self.report


def run_torture(*, workdir: Path, seed: int, kill_points: int,
                log: Callable[[str], None] = print) -> TortureReport:  # fmt: skip
    """One seeded torture run in `workdir` (which must be empty or new)."""
    return Torture(workdir=workdir, seed=seed, kill_points=kill_points, log=log).run()


def _markdown(reports: list[TortureReport]) -> str:
    rows = [
        "| seed | kill points | rounds | files | lost | duplicated | partial | other | "
        "dead-lettered (explained) | time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        rows.append(
            f"| {r.seed} | {r.kill_points} | {r.rounds} | {r.files} | {len(r.lost)} | "
            f"{len(r.duplicated)} | {len(r.partial)} | {len(r.problems)} | {r.dlq_explained} "
            f"| {r.seconds:.0f} s |"
        )
    total = sum(r.kill_points for r in reports)
    bad = sum(len(r.lost) + len(r.duplicated) + len(r.partial) for r in reports)
    rows.append(f"\n{total} kill points in all; {bad} files lost, duplicated or partial.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-points", type=int, default=1000, help="SIGKILLs in all")
    parser.add_argument("--per-run", type=int, default=25, help="kill points per seeded run")
    parser.add_argument("--seed", type=int, default=None, help="replay one run with this seed")
    parser.add_argument("--out", type=Path, default=Path("bench/results/torture.md"))
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this folder and keep it (logs, files)"
    )
    args = parser.parse_args(argv)
    reports: list[TortureReport] = []
    seeds = [args.seed] if args.seed is not None else None
    remaining = args.kill_points
    index = 0
    with contextlib.ExitStack() as cleanup:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = str(args.keep.resolve())
        else:
            tmp = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="mobile-backup-torture-")
            )
        # Never the user's own config, tokens or journal.
        os.environ["MOBILE_BACKUP_CONFIG_FILE"] = str(Path(tmp) / "home" / "config.toml")
        os.environ["MOBILE_BACKUP_STATE_DIR"] = str(Path(tmp) / "home" / "state")
        while remaining > 0:
            seed = seeds[0] if seeds else 1000 + index
            points = args.kill_points if seeds else min(args.per_run, remaining)
            print(f"seed {seed}: {points} kill points …", flush=True)
            report = run_torture(workdir=Path(tmp) / f"run-{index}", seed=seed,
                                 kill_points=points)  # fmt: skip
            print(report.summary() if report.ok else report.failure_text(), flush=True)
            reports.append(report)
            remaining -= report.kill_points if report.kill_points else points
            index += 1
            if seeds:
                break
    table = _markdown(reports)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Crash-consistency torture (`make torture`)\n\n" + table + "\n", encoding="utf-8"
    )
    (args.out.with_suffix(".json")).write_text(
        json.dumps([asdict(r) | {"ok": r.ok} for r in reports], indent=2), encoding="utf-8"
    )
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
