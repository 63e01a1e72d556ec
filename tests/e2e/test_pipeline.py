"""The whole local pipeline, as a user drives it: real processes, real HTTP, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from mobile_backup.core import sha256_file
from mobile_backup.local import run_demo
from mobile_backup.local._samples import make_samples

CLI = [sys.executable, "-m", "mobile_backup"]


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["COLUMNS"] = "200"
    return env


def test_demo_delivers_every_sample_verified_and_filed_by_capture_date(tmp_path: Path) -> None:
    report = run_demo(library=tmp_path / "library", workdir=tmp_path / "work", timeout=60)
    assert report.ok, [r for r in report.rows if not r.verified]
    assert len(report.rows) == 6
    samples = {s.path.name: s for s in make_samples(tmp_path / "again")}
    for row in report.rows:
        assert row.verified, row
        assert row.placed_at is not None
        placed = tmp_path / "library" / row.placed_at
        assert placed.is_file()
        assert sha256_file(placed) == sha256_file(samples[row.name].path)
        # Filed under the member's name, not their id.
        assert row.placed_at.split("/")[0] == "demo"
        # The capture time (EXIF, the video's header, else the date in the screenshot's
        # name) decides the folder, not the upload time; and it is the file's own time.
        taken = samples[row.name].taken_at or datetime(2024, 2, 29)
        assert row.placed_at.split("/")[1:3] == [f"{taken:%Y}", f"{taken:%m}"], row
        if row.name.endswith(".mp4"):
            assert placed.stat().st_mtime == taken.timestamp()
        else:  # a wall-clock time: shown unchanged in this PC's time zone
            wall = taken.replace(tzinfo=None)
            assert datetime.fromtimestamp(placed.stat().st_mtime) == wall
    # Nothing but the placed files (and the agent's own hidden dir) is in the library.
    files = [p for p in (tmp_path / "library").rglob("*") if p.is_file()]
    visible = [p for p in files if ".mobile-backup" not in p.parts]
    assert len(visible) == 6


def test_demo_command_exits_zero_with_a_summary_table(cli_env: dict[str, str]) -> None:
    result = _cli("demo", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "All 6 files verified" in result.stdout
    assert "IMG_2000.jpg" in result.stdout
    assert "Traceback" not in result.stderr
    report = json.loads(_cli("demo", "--json", env=cli_env).stdout)  # stdout: the JSON only
    assert (report["schema"], report["ok"], report["library"]) == (
        "mobile-backup/demo/1",
        True,
        None,
    )
    assert report["upload"]["schema"] == "mobile-backup/upload/1"
    assert report["upload"]["uploaded"] == len(report["files"]) == 6
    assert all(f["verified"] and f["placed_at"] for f in report["files"])


def test_local_up_serves_other_commands_through_the_local_profile(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    config = Path(cli_env["MOBILE_BACKUP_CONFIG_FILE"])
    stack = subprocess.Popen(
        [*CLI, "local", "up", "--library", str(library)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (
            config.exists() and "local" in tomllib.loads(config.read_text()).get("profiles", {})
        ):
            assert stack.poll() is None, stack.communicate()
            assert time.monotonic() < deadline, "local up did not write the profile"
            time.sleep(0.2)
        # `local up` signs in before it writes the profile (atomically): once the profile is
        # there, so is the session.

        roll = tmp_path / "roll"
        make_samples(roll, photos=3)
        first = _cli("--profile", "local", "upload", str(roll), env=cli_env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "5 uploaded, 0 already backed up, 0 failed" in first.stdout

        again = _cli("--profile", "local", "upload", str(roll), env=cli_env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "0 uploaded, 5 already backed up, 0 failed" in again.stdout

        deadline = time.monotonic() + 60
        while True:
            status = _cli("--profile", "local", "status", env=cli_env)
            assert status.returncode == 0, status.stderr
            if "5 files of demo: 5 on your PC" in status.stdout:
                break
            assert time.monotonic() < deadline, status.stdout
            time.sleep(0.3)
        placed = sorted(
            p.name for p in library.rglob("*") if p.is_file() and ".mobile-backup" not in p.parts
        )
        assert placed == sorted(p.name for p in roll.iterdir())

        # A name that looks like Rich markup, uploaded with -v: printed as itself, and the
        # verbose log shows each request without the presigned URL's credentials.
        odd = tmp_path / "odd"
        odd.mkdir()
        (odd / "IMG [red]x[bold].jpg").write_bytes((roll / "IMG_2000.jpg").read_bytes() + b"odd")
        verbose = _cli("-v", "--profile", "local", "upload", str(odd), env=cli_env)
        assert verbose.returncode == 0, verbose.stdout + verbose.stderr
        assert "1 uploaded" in verbose.stdout
        logged = verbose.stdout + verbose.stderr
        assert "X-Amz-Signature=REDACTED" in logged  # the request was logged, redacted
        assert not re.search(r"X-Amz-(Signature|Credential|Security-Token)=(?!REDACTED)", logged)
        listed = _cli("--profile", "local", "status", env=cli_env)
        assert listed.returncode == 0, listed.stderr
        assert "IMG [red]x[bold].jpg" in listed.stdout

        # --json, for scripts: one document on stdout, in the README's schema.
        again = _cli("upload", str(odd), "--json", "--profile", "local", env=cli_env)
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        assert report["schema"] == "mobile-backup/upload/1"
        assert (report["uploaded"], report["already_backed_up"], report["failed"]) == (0, 1, 0)
        (entry,) = report["files"]
        assert set(entry) == {"path", "status", "size", "sha256", "reason"}
        assert entry["status"] == "already_backed_up"
        assert entry["path"].endswith("IMG [red]x[bold].jpg")
        state = json.loads(_cli("status", "--json", "-p", "local", env=cli_env).stdout)
        assert state["schema"] == "mobile-backup/status/1"
        assert state["total"] == 6
        assert state["counts"]["downloaded"] + state["counts"]["uploaded"] == 6
        assert {f["filename"] for f in state["files"]} >= {"IMG [red]x[bold].jpg"}
        assert all(f["sha256"] and f["status"] for f in state["files"])

        # Issue 9's folder: every file is backed up or listed with its reason, and only a
        # real failure would make the exit status non-zero.
        hostile = tmp_path / "hostile"
        hostile.mkdir()
        jpeg = (roll / "IMG_2000.jpg").read_bytes()
        for i, name in enumerate(["nul", "x.jpg.", "y.jpg ", ".hidden.jpg", "..\\..\\evil.jpg"]):
            (hostile / name).write_bytes(jpeg + f"hostile {i}".encode())
        (hostile / ".trashed-1700000000-old.jpg").write_bytes(jpeg + b"trashed")
        (hostile / "notes.txt").write_text("a note, not a photo")
        (hostile / "IMG_copy.jpg").write_bytes((hostile / "nul").read_bytes())

        # --dry-run: says what would happen, sends and reserves nothing.
        dry = _cli("upload", str(hostile), "--dry-run", "--json", "-p", "local", env=cli_env)
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["schema"] == "mobile-backup/dry-run/1"
        assert (plan["would_upload"], plan["already_backed_up"], plan["skipped"]) == (3, 1, 4)
        by_name = {Path(f["path"]).name: (f["status"], f["reason"]) for f in plan["files"]}
        assert by_name == {
            "IMG_copy.jpg": ("would_upload", None),
            "nul": ("already_backed_up", "same content as IMG_copy.jpg"),
            "x.jpg.": ("would_upload", None),
            "y.jpg ": ("would_upload", None),
            ".hidden.jpg": ("skipped", "hidden"),
            "..\\..\\evil.jpg": ("skipped", "hidden"),
            ".trashed-1700000000-old.jpg": (
                "skipped",
                "in the phone's trash or still being written",
            ),
            "notes.txt": ("skipped", "not a photo or video"),
        }
        assert sorted(by_name) == sorted(p.name for p in hostile.iterdir())  # all of them
        unchanged = json.loads(_cli("status", "--json", "-p", "local", env=cli_env).stdout)
        assert unchanged["total"] == 6  # nothing was reserved
        text = _cli("upload", str(hostile), "--dry-run", "-p", "local", env=cli_env)
        assert "dry run, nothing sent: 3 to upload" in text.stdout, text.stdout
        # One vocabulary with the real run below: a copy is "already backed up" there too.
        assert "1 already backed up (1 of them a copy of another file here)" in text.stdout

        sent = _cli("-p", "local", "upload", str(hostile), env=cli_env)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "3 uploaded, 1 already backed up, 0 failed, 4 skipped" in sent.stdout
        assert "skipped 2 hidden:" in sent.stdout
        assert "skipped 1 not a photo or video: notes.txt" in sent.stdout
        quiet = _cli("upload", str(hostile), "-q", "-p", "local", env=cli_env)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

        deadline = time.monotonic() + 60
        while True:  # everything on the PC before the stack stops
            state = json.loads(_cli("status", "--json", "-p", "local", env=cli_env).stdout)
            if state["counts"]["downloaded"] == 9:
                break
            assert time.monotonic() < deadline, state["counts"]
            time.sleep(0.3)
    finally:
        stack.send_signal(signal.SIGINT)
        out, err = stack.communicate(timeout=60)
    assert stack.returncode == 0, err
    assert "Local stack stopped." in out
    assert "Traceback" not in err
    # `local up` shows what the PC side does: one line per file received.
    assert out.count("received ") == 9, out

    # The stack is down now: the upload says what is probably wrong (issue 31, item 8).
    (roll / "IMG_9999.jpg").write_bytes((roll / "IMG_2000.jpg").read_bytes() + b"later")
    down = _cli("-p", "local", "upload", str(roll / "IMG_9999.jpg"), env=cli_env)
    assert down.returncode == 1, down.stdout
    assert "0 uploaded, 0 already backed up, 1 failed — nothing sent" in down.stdout
    assert "(0 bytes/s)" not in down.stdout
    assert "cannot reach the API at http://127.0.0.1:" in down.stdout
    assert (
        "(connection refused): is the local stack running? Start it with "
        "`mobile-backup local up`" in down.stdout
    ), down.stdout

    # Issue 31, item 9: each step is said while it happens (a line each when not on a
    # terminal), and a restart on the same library keeps its ports and demo password.
    assert "starting the AWS emulator" in err
    assert "creating the stack's resources from the template" in err
    first = tomllib.loads(config.read_text())["profiles"]["local"]
    first_password = re.search(r"demo password\s+(\S+)", out)
    assert first_password is not None, out
    restarted = subprocess.Popen(
        [*CLI, "local", "up", "--library", str(library)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert restarted.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "profile written" not in seen:  # the whole table, then the profile
            assert time.monotonic() < deadline, seen
            seen += restarted.stdout.readline()
        second = tomllib.loads(config.read_text())["profiles"]["local"]
        assert (second["api_url"], second["aws_endpoint_url"]) == (
            first["api_url"],
            first["aws_endpoint_url"],
        )
    finally:
        restarted.send_signal(signal.SIGINT)
        rest, _ = restarted.communicate(timeout=60)
    password = re.search(r"demo password\s+(\S+)", seen + rest)
    assert password is not None
    assert password.group(1) == first_password.group(1)


def test_cli_errors_are_one_readable_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [
        (("local", "up", "--library", str(a_file)), "is a file; choose another folder"),
        (("demo", "--library", str(a_file)), "is a file; choose another folder"),
        (("agent", "install", "--dest", str(a_file)), "--dest takes a folder"),
        (("--profile", "nowhere", "status"), "no profile named 'nowhere'"),
        (("status", "--profile", "nowhere"), "no profile named 'nowhere'"),  # as with `aws`
        (("status", "-v", "--profile=nowhere"), "no profile named 'nowhere'"),
        (("upload", str(tmp_path / "missing.jpg")), "no such file or folder"),
        (("upload", str(tmp_path / "x[/b]")), "x[/b]"),
        (("status",), "setting 'api_url' is not configured"),
        (("--log-file", str(a_file / "x.log"), "cost"), "--log-file: cannot write"),
    ]
    for args, expected in cases:
        result = _cli(*args, env=cli_env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (args, result.stderr)
        assert expected in lines[0]
        assert "Traceback" not in result.stderr


def test_cli_help_explains_every_command(cli_env: dict[str, str]) -> None:
    result = _cli("--help", env=cli_env)
    assert result.returncode == 0
    for command in ("local", "demo", "login", "upload", "status", "agent"):
        assert command in result.stdout
    # Shell completion: the script installs, and completing really completes.
    script = _cli("--show-completion", "bash", env=cli_env)
    assert script.returncode == 0
    assert "_mobile_backup_completion" in script.stdout
    words = {**cli_env, "_MOBILE_BACKUP_COMPLETE": "complete_bash", "COMP_CWORD": "2",
             "COMP_WORDS": "mobile-backup agent re"}  # fmt: skip
    completed = subprocess.run(CLI, env=words, capture_output=True, text=True, check=False)
    assert completed.stdout.split() == ["reconcile", "register", "redrive"], completed
    # `-h` is `--help`, at every level.
    for args in (("-h",), ("agent", "run", "-h"), ("users", "add", "-h")):
        short = _cli(*args, env=cli_env)
        assert short.returncode == 0, short.stderr
        assert short.stdout == _cli(*args[:-1], "--help", env=cli_env).stdout
    bad = _cli("no-such-command", env=cli_env)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_errors_name_the_profiles_and_the_exact_command_to_run(cli_env: dict[str, str]) -> None:
    from mobile_backup.core import write_profile

    config = Path(cli_env["MOBILE_BACKUP_CONFIG_FILE"])
    values: dict[str, object] = {
        "api_url": "http://127.0.0.1:9",
        "user_pool_id": "us-east-1_x",
        "client_id": "c",
    }
    write_profile("home", values, config)
    # The only profile is the one used (issue 31, item 10): no --profile needed.
    only = _cli("status", env=cli_env)
    assert only.returncode == 1
    assert "run `mobile-backup --profile home login`" in " ".join(only.stderr.split())
    write_profile("work", values, config)  # two: no guessing, and the way out is named
    no_profile = _cli("status", env=cli_env)
    assert no_profile.returncode == 1
    assert (
        "profiles configured: home, work; choose one with --profile NAME or make it the "
        "default with `mobile-backup profiles default NAME`"
    ) in " ".join(no_profile.stderr.split())
    not_signed_in = _cli("status", "--profile", "home", env=cli_env)
    assert not_signed_in.returncode == 1
    assert "run `mobile-backup --profile home login`" in " ".join(not_signed_in.stderr.split())


def test_agent_install_without_starting_says_how_to_start_it_and_about_logging_out(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    units = tmp_path / "units"
    units.mkdir()
    library = tmp_path / "Photos library"
    result = _cli(
        "agent", "install", "--no-start", "--dest", str(units), "--library", str(library),
        env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Installed systemd service: {units / 'mobile-backup-agent.service'}"
    assert lines[1:4] == [
        "Not started (--no-start). To start it, run:",
        "  systemctl --user daemon-reload",
        "  systemctl --user enable --now mobile-backup-agent.service",
    ]
    assert lines[4].startswith("note: a user service stops when you log out")
    assert "loginctl enable-linger" in lines[4]
    unit = (units / "mobile-backup-agent.service").read_text(encoding="utf-8")
    (start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert start.endswith(f'agent run --library "{library}"'), start
