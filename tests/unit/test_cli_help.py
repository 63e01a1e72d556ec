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
        assert not re.search(r"<(bool>|list\[)", text), (path, text)
        assert all(len(line) <= 80 for line in text.splitlines()), (path, text)
        command = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
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
