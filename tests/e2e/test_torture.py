"""Crash-consistency torture, CI-sized: 20 SIGKILLs of the client and the agent at random
instants and crash points, then every invariant checked against the source files.

The long run is `make torture` (1,000 kill points); both use `bench/torture.py`. A failure
prints the seed and the kill schedule; `TORTURE_SEED=N make test` (or
`python -m bench.torture --seed N --kill-points 20`) replays it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench.torture import run_torture

from mobile_backup.instrument import crash_points

pytestmark = pytest.mark.e2e


def test_crash_points_are_found_in_both_processes() -> None:
    points = crash_points()
    # The harness draws from what the code really has; both sides must have some.
    assert {"agent", "client"} <= set(points)
    assert "agent.placed" in points["agent"]
    assert "client.part_journaled" in points["client"]


def test_twenty_random_kills_lose_nothing_duplicate_nothing_leave_nothing_partial(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("TORTURE_SEED", "20"))
    report = run_torture(workdir=tmp_path / "torture", seed=seed, kill_points=20)
    assert report.ok, report.failure_text()
    assert report.kill_points >= 20
    # Both processes were really killed, both ways, or the run proved less than it says.
    killed = {key.split("@")[0] for key in report.kills_by}
    assert killed == {"client", "agent"}, report.kills_by
    assert any(key.endswith("@point") for key in report.kills_by), report.kills_by
    assert report.contents >= 20
