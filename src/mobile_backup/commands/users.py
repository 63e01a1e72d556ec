"""`users add|list|remove`: the household members of a deployment."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from mobile_backup.commands._common import (
    USERS_SCHEMA,
    JsonOpt,
    err,
    load_profile,
    out,
    print_json,
    safe,
)
from mobile_backup.core import ConfigError, InvalidInputError, Settings

app = typer.Typer(help="Household members: who may back up to this deployment.")


@app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The member's e-mail (their sign-in name).")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a permanent password from standard input instead of Cognito e-mailing "
            "a temporary one.",
        ),
    ] = False,
) -> None:
    """Add a household member to the deployment selected with --profile.

    On AWS, Cognito e-mails them a temporary password; on the local stack (which sends no
    e-mail) a temporary password is printed here. Either way they choose their own at their
    first sign-in, in the app or with `mobile-backup login`.
    """
    from mobile_backup.core import cognito_client, password_problem, temporary_password
    from mobile_backup.deploy import add_member

    cfg = load_profile()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise ConfigError("--password-stdin: standard input had no password")
    if password is not None and (problem := password_problem(password)):
        raise InvalidInputError(problem, code="invalid_password")
    temporary = temporary_password() if password is None and cfg.local else None
    member = add_member(
        cognito_client(cfg),
        user_pool_id=cfg.require("user_pool_id"),
        email=email,
        password=password,
        temporary_password=temporary,
    )
    out.print(f"Added [bold]{safe(member.email)}[/] (id {member.sub}, {member.status}).")
    if temporary is not None:
        out.print(
            f"Temporary password: [bold]{temporary}[/] (the local stack sends no e-mail: hand "
            "it over; they choose their own at their first sign-in)."
        )
    elif password is None:
        out.print("Cognito has e-mailed them a temporary password; they choose their own at login.")


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the household members of the deployment selected with --profile."""
    from mobile_backup.core import cognito_client
    from mobile_backup.deploy import list_members

    cfg = load_profile()
    members = list_members(cognito_client(cfg), user_pool_id=cfg.require("user_pool_id"))
    folders = _folders(cfg)
    if as_json:
        print_json(
            {
                "schema": USERS_SCHEMA,
                "profile": cfg.profile,
                "members": [
                    {
                        "email": m.email,
                        "id": m.sub,
                        "folder": folders.get(m.sub),
                        "status": m.status,
                        "created": m.created,
                    }
                    for m in members
                ],
            }
        )
        return
    if not members:
        out.print("No members yet: add one with `mobile-backup users add EMAIL`.")
        return
    table = Table()
    for column in ("e-mail", "library folder", "status", "added"):
        table.add_column(column)
    for m in members:
        status = "must choose a password" if m.status == "FORCE_CHANGE_PASSWORD" else m.status
        folder = folders.get(m.sub) or "(named at their first upload)"
        table.add_row(safe(m.email), safe(folder), status.lower(), (m.created or "")[:10])
    out.print(table)


def _folders(cfg: Settings) -> dict[str, str]:
    """Each member's library folder, by id, as the ledger gave it (empty if unreachable)."""
    from mobile_backup.core import Ledger, MobileBackupError, dynamodb_client

    if not cfg.table:
        return {}
    try:
        return Ledger(dynamodb_client(cfg), cfg.table).members()
    except MobileBackupError as exc:
        err.print(f"[yellow]note:[/] library folders unknown: {safe(exc)}")
        return {}


@app.command("remove")
def users_remove(
    email: Annotated[str, typer.Argument(help="The member's e-mail.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Remove a member: they can no longer sign in. Their files stay (library and ledger).

    Their current session ends within 15 minutes (access tokens cannot be revoked early).
    """
    from mobile_backup.core import cognito_client
    from mobile_backup.deploy import remove_member

    cfg = load_profile()
    if not yes and not typer.confirm(f"Remove {email} from profile {cfg.profile!r}?"):
        raise typer.Exit(1)
    remove_member(cognito_client(cfg), user_pool_id=cfg.require("user_pool_id"), email=email)
    out.print(f"Removed {safe(email)}; their backed-up files stay where they are.")
