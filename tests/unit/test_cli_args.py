"""Global options anywhere on the command line, as with the aws CLI."""

from __future__ import annotations

import pytest

from mobile_backup.cli import hoist_global_options


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["upload", "x.jpg", "--profile", "local"], ["--profile", "local", "upload", "x.jpg"]),
        (["agent", "run", "-v", "-p", "home"], ["-v", "-p", "home", "agent", "run"]),
        (["status", "--profile=local"], ["--profile=local", "status"]),
        (["--profile", "a", "status"], ["--profile", "a", "status"]),
        # After `--` everything is an argument, even a file named like an option.
        (["upload", "--", "-v", "--profile"], ["upload", "--", "-v", "--profile"]),
        # A trailing `--profile` without a value is left for the parser to complain about.
        (["status", "--profile"], ["status", "--profile"]),
    ],
)
def test_profile_and_verbose_move_before_the_subcommand(
    given: list[str], expected: list[str]
) -> None:
    assert hoist_global_options(given) == expected
