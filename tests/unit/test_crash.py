"""Crash points: inert unless armed, and a real SIGKILL at the n-th arrival when armed."""

from __future__ import annotations

import signal
import subprocess
import sys

from mobile_backup.instrument import crash_points

SCRIPT = """
from mobile_backup.instrument import crash_point
for i in range(1, 6):
    crash_point("agent.placed")
    crash_point("client.put")
    print(i, flush=True)
"""


def _run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if spec:
        env["MOBILE_BACKUP_CRASH_AT"] = spec
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False
    )


def test_unarmed_points_do_nothing() -> None:
    run = _run(None)
    assert run.returncode == 0
    assert run.stdout.split() == ["1", "2", "3", "4", "5"]


def test_armed_point_kills_at_its_nth_arrival_and_no_sooner() -> None:
    run = _run("client.put:3")
    assert run.returncode == -signal.SIGKILL
    assert run.stdout.split() == ["1", "2"]  # the third arrival never printed


def test_points_are_read_from_the_source() -> None:
    points = crash_points()
    assert all(name.startswith(f"{component}.") for component, names in points.items()
               for name in names)  # fmt: skip
    assert "agent.acked" in points["agent"]
