"""Profiles: the deployments this computer knows, and the one commands use by default."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mobile_backup.commands._common import JsonOpt, out, print_json, safe, state
from mobile_backup.core import (
    ConfigError,
    config_file_path,
    read_profiles,
    selected_profile,
    set_default_profile,
)

app = typer.Typer(
    help="The deployments this computer knows (profiles), and the one used by default.",
    short_help="The deployments this computer knows.",
)
PROFILES_SCHEMA = "mobile-backup/profiles/1"
_HIDDEN = ("secret", "password", "token")  # never printed, whatever a profile holds


def complete_profile(incomplete: str) -> list[str]:
    """Shell completion of profile names (`--profile <TAB>`)."""
    try:
        return sorted(n for n in read_profiles() if n.startswith(incomplete))
    except ConfigError:
        return []


@app.command("list", short_help="Every profile, and which one is used by default.")
def profiles_list(as_json: JsonOpt = False) -> None:
    """Every profile in the config file, which one commands use without --profile, and
    where each points."""
    profiles = read_profiles()
    chosen = selected_profile(state.profile)
    if as_json:
        print_json(
            {
                "schema": PROFILES_SCHEMA,
                "config_file": str(config_file_path()),
                "selected": chosen if chosen in profiles else None,
                "profiles": [
                    {"name": n, "local": bool(v.get("local")), "api_url": v.get("api_url")}
                    for n, v in sorted(profiles.items())
                ],
            }
        )
        return
    if not profiles:
        out.print(
            "No profiles yet: `mobile-backup local up` writes `local`, `mobile-backup deploy` "
            "one for AWS, `mobile-backup login --invite LINK` one for a household you joined."
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("", "profile", "where", "API"):
        table.add_column(column)
    for name, values in sorted(profiles.items()):
        where = "local stack" if values.get("local") else "AWS"
        table.add_row(
            "*" if name == chosen else "",
            safe(name),
            where,
            safe(str(values.get("api_url") or "—")),
        )
    out.print(table)
    out.print(f"* used when no --profile is given. File: {safe(str(config_file_path()))}")


@app.command("show", short_help="One profile's settings.")
def profiles_show(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The profile (default: the one used by default)."),
    ] = None,
) -> None:
    """One profile's settings as the config file holds them (secrets never shown)."""
    profiles = read_profiles()
    chosen = name or selected_profile(state.profile)
    if chosen not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile named {chosen!r} in {config_file_path()} (known: {known})")
    out.print(f"[bold]{safe(chosen)}[/]")
    for key, value in sorted(profiles[chosen].items()):
        shown = "(hidden)" if any(word in key for word in _HIDDEN) else str(value)
        out.print(f"  {safe(key)} = {safe(shown)}", highlight=False)


@app.command("default", short_help="Use a profile when no --profile is given.")
def profiles_default(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The profile to use by default.")],
) -> None:
    """Use NAME whenever a command is run without --profile (MOBILE_BACKUP_PROFILE still
    wins)."""
    path = set_default_profile(name)
    out.print(f"Commands now use profile [bold]{safe(name)}[/] by default ({safe(str(path))}).")
