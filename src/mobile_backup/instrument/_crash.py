"""Crash points: named instants at which a torture run kills this very process.

`crash_point("agent.placed")` costs one comparison and does nothing, unless the process was
started with `MOBILE_BACKUP_CRASH_AT=agent.placed:3`: then the third time any thread reaches
that point the process dies at once with SIGKILL (no cleanup, no flush, no `finally`), the
way a power cut or the OOM killer would end it. The crash-consistency harness
(`bench/torture.py`) arms one point per process at random and checks afterwards that nothing
was lost, duplicated or left partial.

The points are found by reading the source (`crash_points()`), so the harness can never
drift from the code: a point added here is a point the harness can choose.

`MOBILE_BACKUP_CRASH_AT=agent.placed:2:hold=PATH` holds instead of killing: from the second
arrival on, each thread that reaches the point waits there until the file PATH exists. Tests
use it to stop a real process at an exact step (a batch half placed) without racing a
timer.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from mobile_backup.core import crash_spec

_lock = threading.Lock()
_hits = 0
_armed: tuple[str, int, str | None] | None = None
_loaded = False
_HOLD = ":hold="

_POINT = re.compile(r"""crash_point\(\s*["']([a-z_.]+)["']\s*\)""")


def _arm() -> tuple[str, int, str | None] | None:
    global _armed, _loaded
    if not _loaded:
        spec = crash_spec()
        if spec:
            spec, _, hold = spec.partition(_HOLD)
            name, _, count = spec.partition(":")
            _armed = (name, int(count or "1"), hold or None)
        _loaded = True
    return _armed


def crash_point(name: str) -> None:
    """Die here (SIGKILL) if this process was armed for the n-th arrival at `name` (or, if
    armed to hold, wait here from the n-th arrival on until the hold file exists)."""
    armed = _armed if _loaded else _arm()
    if armed is None or armed[0] != name:
        return
    global _hits
    with _lock:
        _hits += 1
        fire = _hits == armed[1]
        held = armed[2] is not None and _hits >= armed[1]
    if armed[2] is not None:
        release = Path(armed[2])
        while held and not release.exists():
            time.sleep(0.02)
        return
    if fire:
        import signal  # here: its import builds enums, a few ms of every Lambda cold start

        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows: the nearest thing to a kill -9 of ourselves
            os._exit(137)
        os.kill(os.getpid(), kill)


def crash_points(root: Path | None = None) -> dict[str, list[str]]:
    """Every crash point in the package's source, by component (`agent`, `client`, ...)."""
    root = root or Path(__file__).resolve().parents[1]
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if path.name == "_crash.py":
            continue
        for name in _POINT.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name.split(".", 1)[0], set()).add(name)
    return {component: sorted(names) for component, names in sorted(found.items())}
