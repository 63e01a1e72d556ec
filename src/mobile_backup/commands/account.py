"""Signing in and out, and what the ledger says about your files."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

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
    state,
)
from mobile_backup.core import InvalidInputError

if TYPE_CHECKING:
    from mobile_backup.client import Authenticator
    from mobile_backup.core.wire import FileView


def login(
    email: Annotated[str | None, typer.Option(help="Your account e-mail.")] = None,
    invite: Annotated[
        str | None,
        typer.Option(
            help="The invite link you were sent: sets this computer up for the household's "
            "deployment (a profile of its own), then signs you in.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password (then a new one, then an authenticator code, when "
            "asked) from standard input, one per line.",
        ),
    ] = False,
    forgot: Annotated[
        bool,
        typer.Option(
            "--forgot-password",
            help="Forgot your password: a code is e-mailed to you, then you choose a new one.",
        ),
    ] = False,
) -> None:
    """Sign in to the deployment; the session is kept and refreshed automatically.

    A new member starts with the invite link they were sent (--invite) and the temporary
    password they were given, and is then asked to choose their own. Where the deployment
    asks for a second factor, the code of an authenticator app is asked for (and, the first
    time, the app is set up). A forgotten password: --forgot-password e-mails a code, then
    asks for a new one.
    """
    from mobile_backup.client import (
        Authenticator,
        MfaRequiredError,
        join_profile,
        read_invite,
    )
    from mobile_backup.commands import mfa

    if invite is not None:
        joined = read_invite(invite)
        state.profile = join_profile(joined, wanted=state.profile)
        out.print(
            f"Joined [bold]{safe(joined.name)}[/] (API {safe(joined.api_url)}) as profile "
            f"[bold]{safe(state.profile)}[/]."
        )
        email = email or joined.email
    cfg = load_profile()
    email = email or typer.prompt("E-mail")
    auth = Authenticator(settings=cfg)
    try:
        if forgot:
            _reset_password(auth, email, from_stdin=password_stdin)
        else:
            _sign_in(auth, email, from_stdin=password_stdin)
    except MfaRequiredError as needed:
        mfa.answer(auth, needed, from_stdin=password_stdin)
    out.print(f"Signed in as [bold]{safe(email)}[/] (profile {safe(cfg.profile)}).")


def _sign_in(auth: Authenticator, email: str, *, from_stdin: bool) -> None:
    """The password (and the member's own, at the first sign-in); a second factor raises
    MfaRequiredError for the caller to answer."""
    from mobile_backup.client import MfaRequiredError, NewPasswordRequiredError
    from mobile_backup.core import password_rules

    password = _read_password("Password: ", from_stdin)
    try:
        auth.login(email, password)
        return
    except NewPasswordRequiredError:
        if not from_stdin:
            err.print(f"This is a temporary password. Choose your own ({password_rules()}).")
    try:
        _choose_password(
            lambda new: auth.login(email, password, new_password=new), from_stdin=from_stdin
        )
    except MfaRequiredError:
        out.print("Your new password is set.")  # a second factor comes next
        raise
    out.print("Your new password is set.")


NEW_PASSWORD_TRIES = 3


def _reset_password(auth: Authenticator, email: str, *, from_stdin: bool) -> None:
    """The e-mailed code, then a new password (checked as at the first sign-in)."""
    from mobile_backup.client import MfaRequiredError
    from mobile_backup.core import password_rules

    sent = auth.begin_password_reset(email)
    if sent.local_code is not None:
        out.print(
            f"The local stack sends no e-mail; its code is {sent.local_code}", highlight=False
        )
    else:
        out.print(
            f"If {safe(email)} has an account here, a code is on its way to "
            f"{safe(sent.destination or 'that address')}.",
            highlight=False,
        )
    code = sys.stdin.readline().strip() if from_stdin else typer.prompt("Code from the e-mail")
    if not from_stdin:
        err.print(f"Choose a new password ({password_rules()}).", highlight=False)
    try:
        _choose_password(
            lambda new: auth.finish_password_reset(email, code, new), from_stdin=from_stdin
        )
    except MfaRequiredError:
        out.print("Your new password is set.")
        raise
    out.print("Your new password is set.")


def _choose_password(apply: Callable[[str], object], *, from_stdin: bool) -> None:
    """Ask for the member's own password until one meets the rules (checked here before
    the pool is asked, and before "again"), up to three times; standard input gives one
    try per line."""
    from mobile_backup.client import LoginError
    from mobile_backup.core import password_problem

    pending: str | None = None  # why the last one was refused
    for _ in range(NEW_PASSWORD_TRIES):
        if pending and not from_stdin:
            err.print(f"{pending}: try again.", highlight=False)
        new = _read_password("New password: ", from_stdin)
        if from_stdin:
            if not new:  # standard input has no more lines
                raise InvalidInputError(
                    f"{pending or 'standard input gave no new password'}; nothing was changed "
                    "(run login again)"
                )
            if pending:
                err.print(f"{pending}: trying the next line.", highlight=False)
        pending = password_problem(new)
        if pending is None and not from_stdin and getpass.getpass("New password again: ") != new:
            pending = "the two new passwords differ"
        if pending is None:
            try:
                apply(new)
                return
            except LoginError as exc:
                if exc.code != "weak_password":
                    raise
                pending = str(exc)
    raise InvalidInputError(f"{pending}; nothing was changed (run login again)")


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
    limit: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="Files to list, the most recent first (by their latest step: sent, in the "
            "cloud, on a PC).",
        ),
    ] = 20,
    all_files: Annotated[
        bool, typer.Option("--all", help="List every file (reads the whole ledger).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """What the ledger knows: how many files are pending, in the cloud, on the PC, failed,
    and the most recent few (`--limit`, or `--all`); it says how many it did not list."""
    cfg = load_profile()
    api = api_client(cfg)
    try:
        with err.status("reading the ledger…"):
            if all_files:
                recent = sorted(api.iter_files(), key=lambda f: f.created_at, reverse=True)
                counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
                for f in recent:
                    counts[str(f.status)] = counts.get(str(f.status), 0) + 1
                total = len(recent)
            else:
                summary = api.summary(recent=limit)
                counts = {str(k): v for k, v in summary.counts.items()}
                total, recent = summary.total, summary.recent
    finally:
        api.close()
    left_out = total - len(recent)
    if as_json:
        print_json(
            {
                "schema": STATUS_SCHEMA,
                "profile": cfg.profile,
                "total": total,
                "counts": counts,
                "shown": len(recent),
                "left_out": left_out,
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
                        "receipts": {pc: r.model_dump(mode="json") for pc, r in f.receipts.items()},
                        "owner_name": f.owner_name,
                    }
                    for f in recent
                ],
            }
        )
        return
    # The app's words for the same states (app/_receipts.py): the cloud, then your PC.
    parts = [
        f"{counts[key]} {words}"
        for key, words in (
            ("downloaded", "on your PC"),
            ("uploaded", "in the cloud, waiting for your PC"),
            ("pending", "not in the cloud yet (upload not finished)"),
            ("failed", "failed"),
        )
        if counts[key]
    ]
    names = {f.owner_name for f in recent if f.owner_name}
    who = f" of {safe(names.pop())}" if len(names) == 1 else ""
    out.print(f"{total} files{who}" + (f": {', '.join(parts)}" if parts else ""))
    table = Table()
    for col in ("file", "size", "in the cloud", "on your PC"):
        table.add_column(col)
    for f in recent:
        cloud, pc = _steps(f)
        table.add_row(safe(f.filename), human(f.size), cloud, safe(pc))
    if recent:
        out.print(table)
    if left_out:
        out.print(
            f"Showing the {len(recent)} most recent of {total} files; "
            f"{left_out} not listed (--limit N for more, --all for every one)."
        )


STATUSES = ("pending", "uploaded", "downloaded", "failed")


def _steps(record: FileView) -> tuple[str, str]:
    """The two receipts of one file, in the app's words."""
    from mobile_backup.core import FileStatus

    if record.status == FileStatus.FAILED:
        return f"[red]failed[/]: {safe(record.failed_reason or 'unknown reason')}", "—"
    if record.status == FileStatus.PENDING:
        return "not yet", "—"
    if len(record.receipts) > 1:  # several PCs: each says for itself
        return "✓", "\n".join(f"✓ {pc}: {r.path}" for pc, r in sorted(record.receipts.items()))
    if record.receipt is not None:
        return "✓", f"✓ {record.receipt.host}: {record.receipt.path}"
    return "✓", "waiting for your PC…"
