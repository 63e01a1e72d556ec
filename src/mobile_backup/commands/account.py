"""Signing in and out, and what the ledger says about your files."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from mobile_backup.commands._common import (
    STATUS_SCHEMA,
    JsonOpt,
    api_client,
    err,
    human,
    load_profile,
    out,
    print_json,
    safe,
)
from mobile_backup.core import InvalidInputError


def login(
    email: Annotated[str | None, typer.Option(help="Your account e-mail.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Sign in to the deployment; the session is kept and refreshed automatically.

    A new member signs in with the temporary password they were given and is then asked
    to choose their own (with --password-stdin: the next line of standard input).
    """
    from mobile_backup.client import Authenticator, NewPasswordRequiredError
    from mobile_backup.core import password_rules

    cfg = load_profile()
    email = email or typer.prompt("E-mail")
    password = _read_password("Password: ", password_stdin)
    auth = Authenticator(settings=cfg)
    try:
        auth.login(email, password)
    except NewPasswordRequiredError:
        if not password_stdin:
            err.print(f"This is a temporary password. Choose your own ({password_rules()}).")
        new = _read_password("New password: ", password_stdin)
        if not password_stdin and getpass.getpass("New password again: ") != new:
            raise InvalidInputError("the two new passwords differ; nothing was changed") from None
        auth.login(email, password, new_password=new)
        out.print("Your new password is set.")
    out.print(f"Signed in as [bold]{safe(email)}[/] (profile {safe(cfg.profile)}).")


def _read_password(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def logout() -> None:
    """Forget the stored session of this profile."""
    from mobile_backup.client import Authenticator

    cfg = load_profile()
    if Authenticator(settings=cfg).logout():
        out.print(f"Signed out of profile {safe(cfg.profile)}.")
    else:
        out.print(f"Profile {safe(cfg.profile)} had no stored session.")


def status(
    limit: Annotated[int, typer.Option(min=1, help="Most recent files to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """What the ledger knows: how many files are pending, in the cloud, on the PC, failed."""
    cfg = load_profile()
    api = api_client(cfg)
    try:
        with err.status("reading the ledger…"):
            files = api.iter_files()
    finally:
        api.close()
    counts: dict[str, int] = dict.fromkeys(("pending", "uploaded", "downloaded", "failed"), 0)
    for f in files:
        counts[str(f.status)] = counts.get(str(f.status), 0) + 1
    recent = sorted(files, key=lambda f: f.created_at, reverse=True)[:limit]
    if as_json:
        print_json(
            {
                "schema": STATUS_SCHEMA,
                "profile": cfg.profile,
                "total": len(files),
                "counts": counts,
                "files": [
                    {
                        "filename": f.filename,
                        "sha256": f.sha256,
                        "size": f.size,
                        "status": str(f.status),
                        "taken_at": f.taken_at.isoformat() if f.taken_at else None,
                        "created_at": f.created_at.isoformat(),
                        "failed_reason": f.failed_reason,
                        "receipt": f.receipt.model_dump(mode="json") if f.receipt else None,
                    }
                    for f in recent
                ],
            }
        )
        return
    out.print(
        f"{len(files)} files: "
        + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("pending", "uploaded", "downloaded", "failed")
        )
    )
    table = Table()
    for col in ("file", "size", "status", "on your PC"):
        table.add_column(col)
    for f in recent:
        receipt = f"{f.receipt.host}: {f.receipt.path}" if f.receipt else (f.failed_reason or "—")
        table.add_row(safe(f.filename), human(f.size), str(f.status), safe(receipt))
    if files:
        out.print(table)
