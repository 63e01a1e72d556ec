"""Free up space on the local stack, through the CLI as a person runs it: only what a PC
holds and has re-verified goes; every other file stays and says why; an unreachable ledger
deletes nothing; a kill -9 mid-way and a rerun leave exactly the eligible set removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobile_backup.core import write_profile
from mobile_backup.core._settings import CRASH_AT_ENV
from mobile_backup.local import LOCAL_PROFILE, LocalStack, profile_values
from mobile_backup.local._samples import make_samples

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "mobile_backup", "--profile", LOCAL_PROFILE]
TWO_DAYS_AGO = time.time() - 2 * 86400


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COLUMNS": "200",
        "MOBILE_BACKUP_CONFIG_FILE": str(tmp_path / "config.toml"),
        "MOBILE_BACKUP_STATE_DIR": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),  # the trash this test's files go to
    }


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def stack(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MOBILE_BACKUP_CONFIG_FILE", env["MOBILE_BACKUP_CONFIG_FILE"])
    with LocalStack(library=tmp_path / "library", poll_seconds=1) as s:
        write_profile(LOCAL_PROFILE, profile_values(s.settings))
        signed = cli(env, "login", "--email", s.email, "--password-stdin", stdin=s.password)
        assert signed.returncode == 0, signed.stderr
        yield s


def back_up(env: dict[str, str], roll: Path, count: int) -> None:
    sent = cli(env, "upload", str(roll))
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 60
    while True:
        status = json.loads(cli(env, "status", "--json").stdout)
        if status["counts"]["downloaded"] >= count:
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def audit(env: dict[str, str], stack: Any, *extra: str) -> None:
    """The PC's audit (the agent runs one with every periodic reconcile)."""
    done = cli(env, "agent", "reconcile", "--library", str(stack.library), *extra)
    assert done.returncode in (0, 1), done.stderr  # 1: it found (and reported) a missing file


def age(paths: list[Path], when: float = TWO_DAYS_AGO) -> None:
    for p in paths:
        os.utime(p, (when, when))


def plan(env: dict[str, str], roll: Path, *args: str) -> dict[str, dict[str, Any]]:
    done = cli(env, "free-up", str(roll), "--json", *args)
    assert done.returncode == 0, done.stderr
    return {Path(f["path"]).name: f for f in json.loads(done.stdout)["files"]}


def test_only_verified_files_go_and_every_other_one_says_why(
    stack: Any, env: dict[str, str], tmp_path: Path
) -> None:
    roll = tmp_path / "DCIM"
    samples = [s.path for s in make_samples(roll, photos=4)]
    age(samples)
    back_up(env, roll, len(samples))

    # Backed up, but no audit has looked since: nothing may go yet.
    before = plan(env, roll, "--dry-run")
    assert {f["action"] for f in before.values()} == {"keep"}
    assert all("not re-verified since" in f["reason"] for f in before.values()), before

    changed, fresh, lost, young = samples[0], roll / "IMG_9000.jpg", samples[1], samples[2]
    changed.write_bytes(changed.read_bytes() + b"edited after backup")
    fresh.write_bytes(samples[3].read_bytes() + b"never uploaded")
    age([changed, fresh])
    age([young], time.time() - 3600)
    # The PC's copy of one file is deleted; its audit notices (and cannot refetch it).
    placed = {p.name: p for p in stack.library.rglob("*") if p.is_file()}
    placed[lost.name].unlink()
    audit(env, stack, "--no-refetch")

    after = plan(env, roll, "--dry-run", "--keep-days", "1")
    reasons = {name: f["reason"] for name, f in after.items() if f["action"] == "keep"}
    assert reasons[changed.name] == "changed since it was backed up"
    assert reasons[fresh.name] == "not backed up yet"
    assert reasons[lost.name].startswith("missing on PC main (found by its audit on ")
    assert reasons[young.name] == "newer than 1 day"
    going = sorted(name for name, f in after.items() if f["action"] == "free")
    expected = sorted(p.name for p in samples if p not in (changed, lost, young))
    assert going == expected
    assert all(after[n]["reason"].startswith("on PC main, verified ") for n in going)
    assert all(p.exists() for p in [*samples, fresh])  # a dry run deletes nothing

    # The ledger cannot be reached: one line, nothing deleted.
    broken = {**env, "MOBILE_BACKUP_API_URL": "http://127.0.0.1:9"}
    refused = cli(broken, "free-up", str(roll), "--yes", "--permanently")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("nothing was deleted"), lines
    assert all(p.exists() for p in [*samples, fresh])

    # The real thing, to the trash: exactly the eligible files go, the rest stay.
    notes = roll / "notes.txt"  # named on the command line too: not a photo, so it stays
    notes.write_text("shopping list\n", encoding="utf-8")
    age([notes])
    freed = cli(env, "free-up", str(roll), str(notes), "--keep-days", "1", "--yes")
    assert freed.returncode == 0, freed.stderr
    assert f"Moved to the trash: {len(expected)} files (" in freed.stdout
    # Each file that stays is named (a few per reason), in words a person reads.
    assert f"stays {fresh.name}: not backed up yet" in freed.stdout
    assert f"stays {young.name}: newer than 1 day" in freed.stdout
    assert "stays notes.txt: not a photo or video" in freed.stdout
    notes.unlink()
    left = sorted(p.name for p in roll.iterdir())
    assert left == sorted({p.name for p in [*samples, fresh]} - set(expected))
    trashed = sorted(p.name for p in (tmp_path / "xdg" / "Trash" / "files").iterdir())
    assert trashed == expected


def test_a_kill_during_a_large_free_up_then_a_rerun_frees_exactly_the_eligible(
    stack: Any, env: dict[str, str], tmp_path: Path
) -> None:
    roll = tmp_path / "DCIM"
    roll.mkdir()
    for i in range(60):
        (roll / f"IMG_{i:04d}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    back_up(env, roll, 60)
    for i in range(60, 70):  # never backed up: must survive everything below
        (roll / f"IMG_{i:04d}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    age(list(roll.iterdir()))
    audit(env, stack)

    killed = subprocess.run(
        [*CLI, "free-up", str(roll), "--permanently", "--yes"],
        env={**env, CRASH_AT_ENV: "freeup.delete:25"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert killed.returncode == -9, killed.stderr
    left = {p.name for p in roll.iterdir()}
    assert len(left) == 70 - 24  # the 25th was about to go when the process died
    assert {f"IMG_{i:04d}.jpg" for i in range(60, 70)} <= left

    again = cli(env, "free-up", str(roll), "--permanently", "--yes")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in roll.iterdir()) == [f"IMG_{i:04d}.jpg" for i in range(60, 70)]
