"""Every `--help` reads at 80 columns: no flag name cut, no type jargon, nothing copied."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from click.testing import CliRunner

from mobile_backup.agent._template import FIELDS
from mobile_backup.cli import app
from mobile_backup.commands.agent import PATH_TEMPLATE_HELP


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(group, "commands", {}).items():  # Typer's groups are its own
        yield from commands(sub, (*path, name))


def test_every_help_renders_whole_at_80_columns() -> None:
    root: Any = typer.main.get_command(app)
    runner = CliRunner()
    seen = 0
    for path in commands(root):
        result = runner.invoke(root, [*path, "--help"], terminal_width=80)
        assert result.exit_code == 0, (path, result.output)
        text = result.output
        assert "…" not in text, (path, text)
        # A group's list of commands: each summary whole, not cut with "...".
        summaries = text.split("Commands:")[1].splitlines() if "Commands:" in text else []
        assert not [line for line in summaries if line.endswith("...")], (path, text)
        assert not re.search(r"<(bool>|list\[)", text), (path, text)
        assert all(len(line) <= 80 for line in text.splitlines()), (path, text)
        command = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            if param.param_type_name == "argument":  # one style: PATH, EMAIL, NAME
                assert param.metavar, (path, param.name)
                assert param.metavar.isupper(), (path, param.name)
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--"):
                    assert flag in text, (path, flag, text)
        seen += 1
    assert seen >= 20  # every command and group, not just the root


def test_uninstall_does_not_offer_install_s_options() -> None:
    root: Any = typer.main.get_command(app)
    result = CliRunner().invoke(root, ["agent", "uninstall", "--help"])
    assert "--stop / --no-stop" in result.output
    assert "--start" not in result.output


def test_the_path_template_help_names_every_field() -> None:
    named = set(re.findall(r"\{(\w+)\}", PATH_TEMPLATE_HELP))
    assert named == set(FIELDS)


def test_a_group_run_bare_shows_its_help_and_exits_0() -> None:
    """Help that was asked for by running a group alone is not a usage error (exit 2 is kept
    for those)."""
    root: Any = typer.main.get_command(app)
    groups = [p for p in commands(root) if hasattr(_command(root, p), "commands")]
    assert () in groups
    assert len(groups) >= 5
    for path in groups:
        result = CliRunner().invoke(root, list(path), terminal_width=80)
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith("Usage: "), (path, result.output)
        assert "Commands:" in result.output
    wrong = CliRunner().invoke(root, ["agent", "nosuch"])
    assert wrong.exit_code == 2


def _command(root: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        root = root.commands[name]
    return root
