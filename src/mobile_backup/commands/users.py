"""`users add|list|remove`: the household members of a deployment."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from mobile_backup.commands._common import (
    USERS_SCHEMA,
    JsonOpt,
    deployment_name,
    err,
    load_profile,
    out,
    print_json,
    safe,
)
from mobile_backup.core import ConfigError, InvalidInputError, MobileBackupError, Settings

app = typer.Typer(help="Household members: who may back up to this deployment.")

NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="The household's name in the invite (it also names the member's profile; "
        "default: this profile's name).",
    ),
]


@app.command("add", short_help="Add a member and print their invite.")
def users_add(
    email: Annotated[
        str, typer.Argument(metavar="EMAIL", help="The member's e-mail (their sign-in name).")
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a permanent password from standard input instead of Cognito e-mailing "
            "a temporary one.",
        ),
    ] = False,
    name: NameOpt = None,
) -> None:
    """Add a household member to the deployment selected with --profile, and print their
    invite: a link (and its QR code) that points their app or CLI at this deployment.

    On AWS, Cognito e-mails them a temporary password; on the local stack (which sends no
    e-mail) a temporary password is printed here. Either way they choose their own at their
    first sign-in, in the app or with `mobile-backup login --invite LINK`.
    """
    from mobile_backup.aws import cognito_client
    from mobile_backup.core import password_problem, temporary_password
    from mobile_backup.deploy import add_member

    cfg = load_profile()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise ConfigError("--password-stdin: standard input had no password")
    if password is not None and (problem := password_problem(password)):
        raise InvalidInputError(problem, code="invalid_password")
    temporary = temporary_password() if password is None and cfg.local else None
    member = add_member(
        cognito_client(cfg, component="admin"),
        user_pool_id=cfg.require("user_pool_id"),
        email=email,
        password=password,
        temporary_password=temporary,
    )
    out.print(f"Added [bold]{safe(member.email)}[/] (id {member.sub}; {_status(member.status)}).")
    if temporary is not None:
        out.print(
            f"Temporary password: [bold]{temporary}[/] (the local stack sends no e-mail: hand "
            "it over; they choose their own at their first sign-in)."
        )
    elif password is None:
        out.print("Cognito has e-mailed them a temporary password; they choose their own at login.")
    _print_invite(cfg, member.email, name)


@app.command("invite", short_help="Send a member their invite again.")
def users_invite(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The member's e-mail.")],
    name: NameOpt = None,
) -> None:
    """Send a member their invite again: the link (and its QR code), and, if they have not
    signed in yet, a new temporary password (e-mailed by Cognito; printed on the local stack).
    """
    from mobile_backup.aws import cognito_client
    from mobile_backup.core import temporary_password
    from mobile_backup.deploy import reinvite_member

    cfg = load_profile()
    temporary = temporary_password() if cfg.local else None
    member = reinvite_member(
        cognito_client(cfg, component="admin"),
        user_pool_id=cfg.require("user_pool_id"),
        email=email,
        temporary_password=temporary,
    )
    if member.status != "FORCE_CHANGE_PASSWORD":
        out.print(f"{safe(member.email)} has signed in before: they use their own password.")
    elif temporary is not None:
        out.print(f"New temporary password: [bold]{temporary}[/] (hand it over).")
    else:
        out.print("Cognito has e-mailed them a new temporary password.")
    _print_invite(cfg, member.email, name)


def _print_invite(cfg: Settings, email: str, name: str | None) -> None:
    """The invite link, and a QR code of it for a phone's camera."""
    from mobile_backup.client import Invite
    from mobile_backup.commands.mfa import print_qr

    try:
        invite = Invite.for_deployment(cfg, email=email, name=name or deployment_name(cfg.profile))
    except MobileBackupError as exc:  # a profile without the API's settings: no link to give
        err.print(f"note: no invite printed: {safe(exc)}", highlight=False)
        return
    out.print("Their invite (send it to them; it holds no password or key):")
    out.print(invite.link, markup=False, highlight=False)
    sys.stdout.flush()
    print_qr(invite.link)
    out.print(
        "They open it on their phone (or paste it into the app's [bold]Join with an "
        "invite[/]); on a computer: [bold]mobile-backup login --invite 'LINK'[/]."
    )


@app.command("list", short_help="The members, their status and library folders.")
def users_list(as_json: JsonOpt = False) -> None:
    """List the household members of the deployment selected with --profile."""
    from mobile_backup.aws import cognito_client
    from mobile_backup.deploy import list_members

    cfg = load_profile()
    members = list_members(
        cognito_client(cfg, component="admin"), user_pool_id=cfg.require("user_pool_id")
    )
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
        folder = folders.get(m.sub) or "(named at their first upload)"
        table.add_row(safe(m.email), safe(folder), _status(m.status), (m.created or "")[:10])
    out.print(table)


_STATUS_WORDS = {
    "FORCE_CHANGE_PASSWORD": "must choose a password at their first sign-in",
    "CONFIRMED": "signed in",
    "RESET_REQUIRED": "must reset their password",
    "UNCONFIRMED": "not confirmed yet",
    "EXTERNAL_PROVIDER": "signs in elsewhere",
}


def _status(cognito_status: str) -> str:
    """Cognito's account status in words (its raw name for a status this does not know)."""
    return _STATUS_WORDS.get(cognito_status, cognito_status.lower().replace("_", " "))


def _folders(cfg: Settings) -> dict[str, str]:
    """Each member's library folder, by id, as the ledger gave it (empty if unreachable)."""
    from mobile_backup.aws import dynamodb_client
    from mobile_backup.core import MobileBackupError
    from mobile_backup.ledger import Ledger

    if not cfg.table:
        return {}
    try:
        return Ledger(dynamodb_client(cfg, component="admin"), cfg.table).members()
    except MobileBackupError as exc:
        err.print(f"[yellow]note:[/] library folders unknown: {safe(exc)}")
        return {}


@app.command("remove")
def users_remove(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The member's e-mail.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Remove a member: they can no longer sign in. Their files stay (library and ledger).

    Their current session ends within 15 minutes (access tokens cannot be revoked early).
    """
    from mobile_backup.aws import cognito_client
    from mobile_backup.deploy import remove_member

    cfg = load_profile()
    if not yes and not typer.confirm(f"Remove {email} from profile {cfg.profile!r}?"):
        out.print(f"Nothing removed: {safe(email)} is still a member.")
        return
    remove_member(
        cognito_client(cfg, component="admin"),
        user_pool_id=cfg.require("user_pool_id"),
        email=email,
    )
    out.print(f"Removed {safe(email)}; their backed-up files stay where they are.")
