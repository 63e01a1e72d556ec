"""Global options anywhere on the command line, as with the aws CLI."""

from __future__ import annotations

import pytest

from mobile_backup.cli import hoist_global_options
from mobile_backup.core import ConfigError


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


def _exit_of(argv: list[str]) -> int:
    from mobile_backup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    code = exited.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (ConfigError("no api_url"), 1, "error: no api_url"),
        (RuntimeError("boom"), 70, "internal error: RuntimeError: boom (run with -v for details)"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_exit_codes_are_the_documented_ones(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    line: str,
) -> None:
    """docs/cli.md "Exit codes": 1 a problem you can act on, 70 a bug, 130 interrupted; each
    one line on stderr, never a traceback."""
    import mobile_backup.commands._common as common

    def fail(*_: object, **__: object) -> None:
        raise raised

    monkeypatch.setattr(common, "load_settings", fail)
    assert _exit_of(["status"]) == code
    err = capsys.readouterr().err
    assert [text for text in err.splitlines() if text.strip()] == [line]


def test_a_command_line_the_cli_does_not_understand_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit_of(["upload", "--no-such-flag", "x.jpg"]) == 2
    assert "No such option" in capsys.readouterr().err
    assert _exit_of(["-q", "--help"]) == 0  # -q is a global option, before or after
    assert _exit_of(["status", "-q", "--help"]) == 0


def test_a_pc_name_that_cannot_be_one_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("MOBILE_BACKUP_CONFIG_FILE", f"{tmp_path}/none.toml")
    monkeypatch.setenv("COLUMNS", "200")
    assert _exit_of(["agent", "run", "--pc", "My Laptop", "--library", f"{tmp_path}/l"]) == 1
    lines = [text for text in capsys.readouterr().err.splitlines() if text.strip()]
    expected = "error: invalid setting pc_name: 'My Laptop' is not a PC name: use 1-20 of a-z"
    assert lines == [f"{expected}, 0-9 and '-'"]
    assert _exit_of(["agent", "register", "Laptop!"]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("error: 'Laptop!' is not a PC name: use 1-20 lower-case letters")
