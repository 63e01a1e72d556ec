"""`free-up`: delete from this device only what a PC has verified."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mobile_backup.commands._common import (
    FREE_UP_SCHEMA,
    JsonOpt,
    err,
    human,
    load_profile,
    out,
    print_json,
    safe,
    state,
)
from mobile_backup.core import MobileBackupError

if TYPE_CHECKING:
    from mobile_backup.client import FreeItem


def free_up(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Folders or files (e.g. the phone's DCIM folder)."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would go and why the rest stays.")
    ] = False,
    keep_days: Annotated[
        float, typer.Option(min=0, help="Keep anything modified in the last N days.")
    ] = 0,
    permanently: Annotated[
        bool, typer.Option("--permanently", help="Delete instead of moving to the trash.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete from this device the photos and videos a PC holds and has re-verified.

    Each file is hashed again now; it goes only if the ledger has a PC's receipt for exactly
    these bytes and that PC's audit has found it since. Everything else stays, with the
    reason. Files go to the trash unless --permanently. Nothing is deleted if the ledger
    cannot be reached.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mobile_backup.client import (
        FREE,
        NoFilesError,
        UploadSession,
        discover,
        free_planned,
        plan_free_up,
    )

    cfg = load_profile()
    try:
        scan = discover(paths)
    except NoFilesError as exc:
        if any(not p.expanduser().exists() for p in paths):
            raise  # a path that is not there: one line, exit 1
        out.print(f"Nothing to free: {safe(exc)}.")
        return
    with (
        UploadSession(cfg) as session,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=as_json or state.quiet,
        ) as progress,
    ):
        task = progress.add_task("checking", total=len(scan.files))
        try:
            plan = plan_free_up(
                session.api,
                paths,
                journal=session.journal,
                keep_days=keep_days,
                on_file=lambda _p: progress.advance(task),
                scan=scan,
            )
        except MobileBackupError as exc:
            raise MobileBackupError(f"{exc}; nothing was deleted") from exc
    eligible = [i for i in plan if i.action == FREE]
    size = sum(i.size for i in eligible)
    freed = []
    if eligible and not dry_run:
        if not yes and not as_json:
            _print_plan(plan)
            if not typer.confirm(
                f"{'Delete' if permanently else 'Move'} {len(eligible)} "
                f"file{'s' if len(eligible) != 1 else ''} ({human(size)})"
                f"{'' if permanently else ' to the trash'}?"
            ):
                out.print("Nothing was deleted.")
                raise typer.Exit(1)
        elif not yes:
            raise MobileBackupError("free-up --json deletes only with --yes (or use --dry-run)")
        freed = free_planned(plan, permanently=permanently)
    done = {f.path: f for f in freed}
    if as_json:
        print_json(
            {
                "schema": FREE_UP_SCHEMA,
                "dry_run": dry_run,
                "permanently": permanently,
                "freed_bytes": sum(f.size for f in freed if f.freed),
                "files": [
                    {
                        "path": str(i.path),
                        "size": i.size,
                        "action": i.action,
                        "reason": i.reason,
                        "done": done[i.path].freed if i.path in done else None,
                    }
                    for i in plan
                ],
            }
        )
        return
    if dry_run or not eligible or yes:
        _print_plan(plan)
    if dry_run:
        out.print(f"Would free {human(size)}: {len(eligible)} of {len(plan)} files (dry run).")
        return
    gone = [f for f in freed if f.freed]
    kept = len(plan) - len(gone)
    verb = "Deleted" if permanently else "Moved to the trash"
    out.print(
        f"{verb}: {len(gone)} file{'s' if len(gone) != 1 else ''} "
        f"({human(sum(f.size for f in gone))}); {kept} kept."
    )
    for f in freed:
        if not f.freed:
            out.print(f"  [yellow]kept[/] {safe(f.path.name)}: {safe(f.reason)}", highlight=False)


def _print_plan(plan: list[FreeItem]) -> None:
    if state.quiet:
        return
    from mobile_backup.client import FREE

    for item in plan:
        if item.action == FREE:
            line = f"  [green]can go[/] {safe(item.path.name)}: {safe(item.reason)}"
            out.print(line, highlight=False)
    by_reason: dict[str, list[str]] = {}
    for i in plan:
        if i.action != FREE:
            by_reason.setdefault(i.reason, []).append(i.path.name)
    for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        out.print(f"  [yellow]stays[/] {_named(names)}: {safe(reason)}", highlight=False)


NAMED = 3  # files a "stays" line names before it only counts


def _named(names: list[str]) -> str:
    """The files a line is about: named when few, counted (with the first few) when many."""
    if len(names) <= NAMED:
        return ", ".join(safe(n) for n in names)
    return f"{len(names)} files ({', '.join(safe(n) for n in names[:NAMED])}, …)"
