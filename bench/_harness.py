"""The benchmark harness: scenario registry, runner, report writer and measuring helpers.

A scenario is a function `(BenchContext) -> list[Measurement]` registered with `@scenario`.
It does ONE run and returns one `Measurement` per row of the report (our figure, optionally
a peer's figure measured in the same run, and a `Target`). The runner calls it once as a
warm-up (discarded), then `runs` times, and reports per row the median (and min/max) of our
figure, of the peer's, and of the per-run ratio ours/peer. Rows that miss their target are
printed as MISS; a scenario that raises is printed as ERROR. Nothing is hidden.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from testkit.dynalite import DynaliteServer
    from testkit.seaweed import SeaweedServer

    from mobile_backup.local import EmulatorServer

__all__ = [
    "MB",
    "MIB",
    "BenchContext",
    "Measurement",
    "RssSampler",
    "Scenario",
    "ScenarioResult",
    "Stopwatch",
    "Target",
    "make_file",
    "make_files",
    "mb_per_s",
    "quiet_logs",
    "registry",
    "run_measured",
    "run_scenarios",
    "scenario",
    "total_size",
    "write_report",
]

logger = logging.getLogger(__name__)

MB = 1_000_000
MIB = 1 << 20
# The shared SeaweedFS server that `BenchContext.seaweed()` starts has this bucket.
SEAWEED_BUCKET = "bench"
T = TypeVar("T")


# -- what a scenario returns -----------------------------------------------------------------


class TargetKind(Enum):
    RATIO_AT_LEAST = "ratio_at_least"
    RATIO_AT_MOST = "ratio_at_most"
    AT_MOST = "at_most"
    AT_LEAST = "at_least"


@dataclass(frozen=True)
class Target:
    """What a row must reach. Ratios are ours / peer (median of the per-run ratios).

    Use the constructors: `Target.ratio_at_least(1.0)` (throughput vs a peer),
    `Target.ratio_at_most(1.2)` (time vs a baseline), `Target.at_most(0.5, "s")`,
    `Target.at_least(100, "req/s")`.
    """

    kind: TargetKind
    value: float
    unit: str = ""

    @classmethod
    def ratio_at_least(cls, value: float) -> Target:
        return cls(TargetKind.RATIO_AT_LEAST, value)

    @classmethod
    def ratio_at_most(cls, value: float) -> Target:
        return cls(TargetKind.RATIO_AT_MOST, value)

    @classmethod
    def at_most(cls, value: float, unit: str = "") -> Target:
        return cls(TargetKind.AT_MOST, value, unit)

    @classmethod
    def at_least(cls, value: float, unit: str = "") -> Target:
        return cls(TargetKind.AT_LEAST, value, unit)

    @property
    def is_ratio(self) -> bool:
        return self.kind in (TargetKind.RATIO_AT_LEAST, TargetKind.RATIO_AT_MOST)

    def describe(self, peer: str | None = None) -> str:
        sign = "≥" if self.kind in (TargetKind.RATIO_AT_LEAST, TargetKind.AT_LEAST) else "≤"
        if self.is_ratio:
            return f"{sign} {_fmt(self.value)}x" + (f" {peer}" if peer else "")
        return f"{sign} {_fmt(self.value)}{' ' + self.unit if self.unit else ''}"

    def met(self, ours: float | None, ratio: float | None) -> bool | None:
        """True/False, or None when the figure it needs is missing."""
        value = ratio if self.is_ratio else ours
        if value is None:
            return None
        if self.kind in (TargetKind.RATIO_AT_LEAST, TargetKind.AT_LEAST):
            return value >= self.value
        return value <= self.value


@dataclass(frozen=True)
class Measurement:
    """One row of one run: our figure, optionally a peer's from the same run, and a target.

    `metric` names the row and must be the same string in every run (e.g.
    "photos upload, 1000 x 1-5 MB"); `unit` is the figure's unit ("MB/s", "s", "calls/file").
    `peer` is the peer's figure in the same unit, `peer_name` says who ("s5cmd 2.3.0").
    `details` holds extra numbers for the JSON (e.g. bytes, peak RSS) and is not aggregated.
    """

    metric: str
    ours: float | None
    unit: str
    peer: float | None = None
    peer_name: str | None = None
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.peer == 0:
            return None
        return self.ours / self.peer


# -- the registry ----------------------------------------------------------------------------

ScenarioFn = Callable[["BenchContext"], list[Measurement]]


@dataclass(frozen=True)
class Scenario:
    """A registered benchmark: `name` ("B3"), `title`, and the function doing one run."""

    name: str
    title: str
    fn: ScenarioFn
    module: str


registry: dict[str, Scenario] = {}


def scenario(name: str, title: str) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register `fn` as scenario `name` (e.g. "B3"); names are unique and case-insensitive."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        key = name.upper()
        existing = registry.get(key)
        if existing is not None and existing.fn is not fn:
            raise ValueError(
                f"scenario {key} is registered twice ({existing.module}, {fn.__module__})"
            )
        registry[key] = Scenario(name=key, title=title, fn=fn, module=fn.__module__)
        return fn

    return register


# -- the context a scenario runs in ----------------------------------------------------------


class BenchContext:
    """What a scenario gets: a work dir, shared servers, memo, and places to record settings.

    - `work_dir`: this scenario's scratch directory (kept across its runs, removed after).
    - `quick`: True with `--quick`; use a smaller workload (and say so in a setting).
    - `run`: 0 for the warm-up, then 1..N; `warmup` is True for run 0.
    - `seaweed()`: the invocation's shared SeaweedFS server (started on first use) with
      bucket `bench`; `emulator()`: the shared moto server (started on first use).
    - `once(key, factory)`: compute something once per scenario (e.g. generated files).
    - `record_setting(name, value)`, `record_tool(name, version)`: land in the report.
    - `unique(prefix)`: a key prefix no other run used, so runs never collide.
    """

    def __init__(self, *, scenario: Scenario, work_dir: Path, quick: bool, shared: SharedServers):
        self.scenario = scenario
        self.work_dir = work_dir
        self.quick = quick
        self.run = 0
        self.settings: dict[str, Any] = {}
        self.tools: dict[str, str] = {}
        self._shared = shared
        self._memo: dict[str, Any] = {}

    @property
    def warmup(self) -> bool:
        return self.run == 0

    def seaweed(self) -> SeaweedServer:
        server = self._shared.seaweed()
        self.record_tool("seaweedfs", self._shared.weed_version())
        return server

    def emulator(self) -> EmulatorServer:
        return self._shared.emulator()

    def dynalite(self) -> DynaliteServer:
        """A second DynamoDB (dynalite, Node) for the ledger, started on first use."""
        return self._shared.dynalite()

    def once(self, key: str, factory: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = factory()
        value: T = self._memo[key]
        return value

    def record_setting(self, name: str, value: Any) -> None:
        self.settings[name] = value

    def record_tool(self, name: str, version: str) -> None:
        self.tools[name] = version

    def unique(self, prefix: str = "") -> str:
        return f"{prefix}{self.scenario.name.lower()}-r{self.run}-{os.urandom(4).hex()}"

    def log(self, message: str) -> None:
        """Progress for the person watching (stderr, not the report)."""
        print(f"  [{self.scenario.name} run {self.run}] {message}", file=sys.stderr, flush=True)


class SharedServers:
    """Servers started at most once per invocation and stopped at its end."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._seaweed: SeaweedServer | None = None
        self._emulator: EmulatorServer | None = None
        self._dynalite: DynaliteServer | None = None
        self._weed_version: str | None = None

    def seaweed(self) -> SeaweedServer:
        if self._seaweed is None:
            from testkit.seaweed import SeaweedServer

            server = SeaweedServer(data_dir=self._root / "seaweed", buckets=[SEAWEED_BUCKET])
            server.start()
            self._seaweed = server
        return self._seaweed

    def weed_version(self) -> str:
        if self._weed_version is None:
            from testkit.seaweed import find_weed

            out = subprocess.run(
                [str(find_weed()), "version"], capture_output=True, text=True, check=False
            ).stdout
            # "version 8000GB 4.48 pypi linux amd64"
            parts = out.split()
            self._weed_version = parts[2] if len(parts) > 2 else out.strip()
        return self._weed_version

    def emulator(self) -> EmulatorServer:
        if self._emulator is None:
            from mobile_backup.local import EmulatorServer

            server = EmulatorServer(port=0)
            server.start()
            self._emulator = server
        return self._emulator

    def dynalite(self) -> DynaliteServer:
        if self._dynalite is None:
            from testkit.dynalite import DynaliteServer

            self._dynalite = DynaliteServer().start()
        return self._dynalite

    def close(self) -> None:
        for server in (self._seaweed, self._emulator, self._dynalite):
            if server is not None:
                server.stop()
        self._seaweed = self._emulator = self._dynalite = None


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    median: float
    min: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat | None:
        present = [v for v in values if v is not None]
        if not present:
            return None
        return cls(statistics.median(present), min(present), max(present), tuple(present))

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "max": self.max, "values": self.values}


@dataclass(frozen=True)
class Row:
    """One metric aggregated over the measured runs."""

    metric: str
    unit: str
    ours: Stat | None
    peer: Stat | None
    ratio: Stat | None
    peer_name: str | None
    target: Target | None
    details: list[dict[str, Any]]

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(
            self.ours.median if self.ours else None, self.ratio.median if self.ratio else None
        )

    @property
    def verdict(self) -> str:
        met = self.met
        if self.target is None:
            return "INFO"
        if met is None:
            return "MISS (no figure)"
        return "MET" if met else "MISS"


@dataclass
class ScenarioResult:
    name: str
    title: str
    runs: int
    rows: list[Row] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    load: tuple[float, float] | None = None
    """The 1-minute load average during the scenario: (mean, max) of one sample a second."""

    @property
    def status(self) -> str:
        if self.error is not None:
            return "ERROR"
        if any(row.met is False or (row.target and row.met is None) for row in self.rows):
            return "MISS"
        return "OK"


def aggregate(runs: list[list[Measurement]]) -> list[Row]:
    """Rows in first-run order; every run must report the same metrics."""
    order = [m.metric for m in runs[0]]
    by_metric: dict[str, list[Measurement]] = {name: [] for name in order}
    for number, measured in enumerate(runs, start=1):
        names = [m.metric for m in measured]
        if sorted(names) != sorted(order):
            raise ValueError(f"run {number} reported metrics {names}, the first run {order}")
        for m in measured:
            by_metric[m.metric].append(m)
    rows = []
    for name in order:
        ms = by_metric[name]
        first = ms[0]
        rows.append(
            Row(
                metric=name,
                unit=first.unit,
                ours=Stat.of([m.ours for m in ms]),
                peer=Stat.of([m.peer for m in ms]),
                ratio=Stat.of([m.ratio() for m in ms]),
                peer_name=first.peer_name,
                target=first.target,
                details=[m.details for m in ms],
            )
        )
    return rows


# -- the runner ------------------------------------------------------------------------------


def run_scenarios(
    scenarios: Sequence[Scenario], *, runs: int, quick: bool, keep: bool = False
) -> list[ScenarioResult]:
    """Warm-up + `runs` runs of each scenario, in order; a failing scenario does not stop
    the others (its result carries the error)."""
    root = Path(tempfile.mkdtemp(prefix="mobile-backup-bench-"))
    shared = SharedServers(root)
    results: list[ScenarioResult] = []
    try:
        for sc in scenarios:
            results.append(_run_one(sc, root=root, shared=shared, runs=runs, quick=quick))
    finally:
        shared.close()
        if keep:
            print(f"work files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return results


def _run_one(
    sc: Scenario, *, root: Path, shared: SharedServers, runs: int, quick: bool
) -> ScenarioResult:
    work = root / sc.name
    work.mkdir()
    ctx = BenchContext(scenario=sc, work_dir=work, quick=quick, shared=shared)
    result = ScenarioResult(name=sc.name, title=sc.title, runs=runs)
    print(f"{sc.name}: {sc.title}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    measured: list[list[Measurement]] = []
    sampler = LoadSampler().start()
    try:
        for number in range(runs + 1):
            ctx.run = number
            begun = time.perf_counter()
            out = sc.fn(ctx)
            if not out:
                raise ValueError("the scenario returned no measurements")
            ctx.log(
                f"{'warm-up' if number == 0 else 'done'} in {time.perf_counter() - begun:.1f} s"
            )
            if number > 0:
                measured.append(out)
        result.rows = aggregate(measured)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        logger.debug("scenario %s failed", sc.name, exc_info=True)
        print(traceback.format_exc(), file=sys.stderr)
    finally:
        result.load = sampler.stop()
        result.settings = dict(ctx.settings)
        result.tools = dict(ctx.tools)
        result.seconds = time.perf_counter() - started
        shutil.rmtree(work, ignore_errors=True)
    return result


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds process `pid` has used so far; with `tree`, its children's
    (living ones) too."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *(root.children(recursive=True) if tree else ())):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


class CpuMeter:
    """CPU seconds spent during a block by this process (`own`: the emulator and the API
    where they serve from it), by the children waited for in it (`children`: the tool
    measured, run by `run_measured`), by SeaweedFS's process tree and by dynalite's process
    (when the ledger is on it)."""

    def __init__(self, *, seaweed: int | None, dynalite: int | None = None) -> None:
        self._seaweed = seaweed
        self._dynalite = dynalite
        self.children = self.own = self.seaweed = self.dynalite = self.elapsed = 0.0
        self.host_cores: float | None = None
        """Cores the whole host kept busy during the block (from /proc/stat; None elsewhere)."""
        self._host_start: tuple[int, int] | None = None

    def _dynalite_cpu(self) -> float:
        return cpu_seconds(self._dynalite) if self._dynalite else 0.0

    def _seaweed_cpu(self) -> float:
        return cpu_seconds(self._seaweed, tree=True) if self._seaweed else 0.0

    def __enter__(self) -> CpuMeter:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._start = (
            own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, self._seaweed_cpu(),
            self._dynalite_cpu(), time.perf_counter(),
        )  # fmt: skip
        self._host_start = _host_jiffies()
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.own = own.ru_utime + own.ru_stime - self._start[0]
        self.children = kids.ru_utime + kids.ru_stime - self._start[1]
        self.seaweed = self._seaweed_cpu() - self._start[2]
        self.dynalite = self._dynalite_cpu() - self._start[3]
        self.elapsed = time.perf_counter() - self._start[4]
        end = _host_jiffies()
        if self._host_start is not None and end is not None and end[1] > self._host_start[1]:
            busy, total = end[0] - self._host_start[0], end[1] - self._host_start[1]
            self.host_cores = (os.cpu_count() or 1) * busy / total


def _host_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole host so far, in clock ticks (Linux only)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            # user nice system idle iowait irq softirq steal (guest time is within user)
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class LoadSampler:
    """The machine's 1-minute load average, sampled once a second on a thread: a figure
    taken while something else ran is only read honestly beside it."""

    def __init__(self) -> None:
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self._samples.append(os.getloadavg()[0])
            if self._stop.wait(1.0):
                return

    def stop(self) -> tuple[float, float] | None:
        self._stop.set()
        self._thread.join(5)
        if not self._samples:
            return None
        return statistics.fmean(self._samples), max(self._samples)


# -- the report ------------------------------------------------------------------------------


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(ImportError):
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / (1 << 30), 1)
    for name in ("boto3", "botocore", "s3transfer"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            info[name] = version(name)
    return info


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _fmt_stat(stat: Stat | None, unit: str) -> str:
    if stat is None:
        return "—"
    # Ratios read "1.13x"; other units are separated by a space ("85.3 MB/s").
    text = f"{_fmt(stat.median)}{unit}" if unit == "x" else f"{_fmt(stat.median)} {unit}".strip()
    if len(stat.values) > 1:
        text += f" [{_fmt(stat.min)}-{_fmt(stat.max)}]"
    return text


def render_markdown(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Run {meta['started_at']} on {meta['host']['platform']}, {meta['host']['cpus']} CPUs"
        + (f", {meta['host']['memory_gib']} GiB" if "memory_gib" in meta["host"] else "")
        + f"; Python {meta['host']['python']}; median of {meta['runs']} runs after a warm-up"
        + (" (--quick workloads)" if meta["quick"] else "")
        + ". Figures are `median [min-max]`; ratio = ours / peer, median of per-run ratios.",
        "",
    ]
    if meta["runs"] < 3:
        lines += ["**Fewer than 3 runs: not a valid result (debugging only).**", ""]
    if meta.get("hogs"):
        lines += [
            f"**Loaded PC: {meta['hogs']} CPU hog(s) (busy loops at normal priority) ran beside "
            "every scenario** (`--hogs`).",
            "",
        ]
    lines += [
        "| scenario | metric | ours | peer | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if res.error is not None:
            error = res.error.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {res.name} | {res.title} | — | — | — | — | ERROR: {error} |")
            continue
        for row in res.rows:
            peer = _fmt_stat(row.peer, row.unit)
            if row.peer is not None and row.peer_name:
                peer = f"{row.peer_name}: {peer}"
            ratio = f"{_fmt_stat(row.ratio, 'x')}" if row.ratio else "—"
            target = row.target.describe() if row.target else "—"
            lines.append(
                f"| {res.name} | {row.metric} | {_fmt_stat(row.ours, row.unit)} | {peer} "
                f"| {ratio} | {target} | {row.verdict} |"
            )
    lines += ["", "## Settings and tool versions", ""]
    for res in results:
        settings = ", ".join(f"{k}={v}" for k, v in res.settings.items()) or "—"
        tools = ", ".join(f"{k} {v}" for k, v in res.tools.items()) or "—"
        load = f"load average {res.load[0]:.1f} (max {res.load[1]:.1f})" if res.load else ""
        lines.append(
            f"- **{res.name}** {res.title} ({res.seconds:.0f} s, {load}): settings: {settings}; "
            f"tools: {tools}"
        )
    host = ", ".join(f"{k} {v}" for k, v in meta["host"].items())
    lines += ["", f"Host: {host}.", ""]
    return "\n".join(lines)


def results_json(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "scenarios": [
            {
                "name": r.name,
                "title": r.title,
                "status": r.status,
                "error": r.error,
                "seconds": round(r.seconds, 3),
                "load": list(r.load) if r.load else None,
                "settings": r.settings,
                "tools": r.tools,
                "rows": [
                    {
                        "metric": row.metric,
                        "unit": row.unit,
                        "ours": row.ours.as_dict() if row.ours else None,
                        "peer": row.peer.as_dict() if row.peer else None,
                        "peer_name": row.peer_name,
                        "ratio": row.ratio.as_dict() if row.ratio else None,
                        "target": row.target.describe() if row.target else None,
                        "met": row.met,
                        "verdict": row.verdict,
                        "details": row.details,
                    }
                    for row in r.rows
                ],
            }
            for r in results
        ],
    }


def write_report(
    results: Sequence[ScenarioResult], *, out_dir: Path, runs: int, quick: bool, started: datetime,
    hogs: int = 0,
) -> tuple[Path, Path, str]:  # fmt: skip
    """Write `latest.md` and `latest.json` under `out_dir`; returns both paths and the text."""
    meta = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "quick": quick,
        "hogs": hogs,
        "host": host_info(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_markdown(results, meta)
    md = out_dir / "latest.md"
    md.write_text(text, encoding="utf-8")
    js = out_dir / "latest.json"
    js.write_text(json.dumps(results_json(results, meta), indent=2, default=str) + "\n", "utf-8")
    return md, js, text


# -- measuring helpers -----------------------------------------------------------------------


def mb_per_s(nbytes: int, seconds: float) -> float:
    """Decimal megabytes (10^6 bytes) per second, as the targets are written."""
    return nbytes / MB / seconds if seconds > 0 else float("inf")


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.elapsed` (seconds, perf_counter)."""

    def __init__(self) -> None:
        self._start = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> Self:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start


class RssSampler:
    """Peak resident set size of a process (and its children) sampled in a thread.

    `with RssSampler(pid) as rss: ...` then `rss.peak` (bytes). `pid=None` samples this
    process, where the peak is the highest RSS seen during the block (unlike
    `ru_maxrss`, which is the lifetime peak). Sampling every `interval` s can miss a spike
    shorter than that; for a worker subprocess it is the honest figure (getrusage's
    RUSAGE_CHILDREN only reports children already waited for, and aggregates them).
    """

    def __init__(self, pid: int | None = None, *, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process(pid if pid is not None else os.getpid())
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self.peak = 0
        self.samples = 0

    def _rss_now(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._rss_now())
            self.samples += 1
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> Self:
        self.peak = self._rss_now()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class ProcessRun:
    """A finished subprocess: wall time, peak RSS (sampled), exit status and output."""

    argv: list[str]
    elapsed: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            raise RuntimeError(
                f"{Path(self.argv[0]).name} exited {self.returncode}: {self.stderr.strip()[-2000:]}"
            )
        return self


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float = 3600.0,
) -> ProcessRun:
    """Run `argv` to completion, timing it and sampling its peak RSS (children included)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        with RssSampler(proc.pid) as rss:
            try:
                if stdin is not None:
                    proc.communicate(stdin.encode(), timeout=timeout)
                else:
                    proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ProcessRun(
            argv=list(argv),
            elapsed=elapsed,
            peak_rss=rss.peak,
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


_CHUNK = 4 * MIB


def warm_memory(directory: Path, size: int) -> None:
    """Write twice `size` bytes to a scratch file in `directory` and delete it, just before
    a measured tool runs, so the memory its page cache takes is memory the host backs.

    This host is a VM whose free memory goes back to the hypervisor (virtio-balloon free
    page reporting): the first touch of such a page waits for the host, and that wait is
    charged to the guest's kernel time of whichever process touches it. Without this, the
    tool run first after a pause paid it and the next one reused the pages it had just
    freed: the agent (run first in B2) showed 0.85 s of system CPU for a 256 MiB video
    where 0.17 s is its own, 2.5x its real CPU per MB, and s5cmd (run after) none of it.
    Twice the size brought that to 0.2-0.37 s (the size alone, 0.16-0.47 s): it narrows
    the gap, it does not close it, so the spread of the CPU rows stays wide.
    """
    scratch = directory / f".warm-{uuid.uuid4().hex}"
    block = bytes(8 * MIB)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with scratch.open("wb") as out:
            for _ in range(-(-2 * size // len(block))):
                out.write(block)
    finally:
        scratch.unlink(missing_ok=True)


def make_file(path: Path, size: int, *, seed: int) -> Path:
    """Write `size` pseudo-random (incompressible, reproducible) bytes, 4 MiB at a time."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        left = size
        while left > 0:
            n = min(_CHUNK, left)
            handle.write(rng.randbytes(n))
            left -= n
    return path


def make_files(
    directory: Path,
    count: int,
    *,
    min_size: int,
    max_size: int,
    seed: int = 0,
    suffix: str = ".bin",
) -> list[Path]:
    """`count` files with sizes uniform in [min_size, max_size], named f00000{suffix}...

    Reproducible for a given seed; each file's content differs (distinct SHA-256s).
    """
    sizes = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    return [
        make_file(
            directory / f"f{i:05d}{suffix}",
            sizes.randint(min_size, max_size),
            seed=seed * 1_000_003 + i,
        )
        for i in range(count)
    ]


def total_size(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


@contextlib.contextmanager
def quiet_logs(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Silence chatty loggers during a measured block (their output costs time)."""
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)
