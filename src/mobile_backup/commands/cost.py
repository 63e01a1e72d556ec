"""`cost`: what the stack costs a month, itemised by service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mobile_backup.commands._common import api_client, err, human, load_profile, out

if TYPE_CHECKING:
    from mobile_backup.deploy import Estimate


def cost(
    photos: Annotated[float, typer.Option(min=0, help="Photos a month (household).")] = 1000,
    videos: Annotated[float, typer.Option(min=0, help="Videos a month (household).")] = 20,
    photo_mb: Annotated[float, typer.Option(min=0, help="Mean photo size, MB.")] = 3.0,
    video_mb: Annotated[float, typer.Option(min=0, help="Mean video size, MB.")] = 150.0,
    members: Annotated[int, typer.Option(min=1, help="Household members (Cognito users).")] = 4,
    retention_days: Annotated[
        float, typer.Option(min=0, help="Days kept in the cloud after the PC has a file.")
    ] = 30,
    pc_delay_days: Annotated[
        float, typer.Option(min=0, help="Mean days before the PC collects a file.")
    ] = 1.0,
    region: Annotated[
        str | None, typer.Option(help="Price table region (default: the profile's, us-east-1).")
    ] = None,
    from_ledger: Annotated[
        bool,
        typer.Option(
            "--from-ledger",
            help="Take counts and sizes from your last 30 days of uploads (signed-in user).",
        ),
    ] = False,
    snapstart: Annotated[
        bool,
        typer.Option("--snapstart", help="Price Lambda SnapStart too (deploy --snapstart)."),
    ] = False,
    detail: Annotated[bool, typer.Option("--detail", help="Show every priced item.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Estimate the monthly AWS bill, itemised by service, from a usage profile or the ledger."""
    from mobile_backup.core import utcnow
    from mobile_backup.deploy import Usage, estimate, prices_age_warning, usage_from_records

    cfg = load_profile()
    usage = Usage(
        photos_per_month=photos,
        videos_per_month=videos,
        photo_mb=photo_mb,
        video_mb=video_mb,
        users=members,
        retention_days=retention_days,
        pc_delay_days=pc_delay_days,
        snapstart=snapstart,
    )
    if from_ledger:
        api = api_client(cfg)
        try:
            with err.status("reading the ledger…"):
                records = api.iter_files()
        finally:
            api.close()
        usage = usage_from_records(records, now=utcnow(), base=usage)
    result = estimate(usage, region or (cfg.region if not cfg.local else "us-east-1"))
    warning = prices_age_warning(utcnow())
    if as_json:
        out.print_json(data={**_estimate_json(result), "prices_warning": warning})
        return
    _print_estimate(result, detail=detail)
    if warning:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _estimate_json(result: Estimate) -> dict[str, Any]:
    from dataclasses import asdict

    from mobile_backup.deploy import PRICE_SOURCE, PRICES_AS_OF, SEED_ESTIMATE

    return {
        "region": result.prices.region,
        "prices_as_of": PRICES_AS_OF,
        "price_source": PRICE_SOURCE,
        "usage": asdict(result.usage),
        "lines": [asdict(line) for line in result.lines],
        "by_service": {k: {"list": v[0], "billed": v[1]} for k, v in result.by_service().items()},
        "list_total": result.list_total,
        "billed_total": result.billed_total,
        "seed_estimate": list(SEED_ESTIMATE),
    }


def _count(n: float, noun: str) -> str:
    """`1 photo`, `1,000 photos`, `2.5 days`: the noun agrees with the number shown."""
    shown = f"{n:,.0f}" if float(n).is_integer() or n >= 100 else f"{n:,.1f}"
    return f"{shown} {noun}" if shown == "1" else f"{shown} {noun}s"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.005 or value == 0 else "<$0.01"


def _print_estimate(result: Estimate, *, detail: bool) -> None:
    from mobile_backup.deploy import PRICE_SOURCE, PRICES_AS_OF, SEED_ESTIMATE

    u = result.usage
    out.print(
        f"[bold]{_count(u.photos_per_month, 'photo')}[/] (mean {u.photo_mb:.1f} MB) and "
        f"[bold]{_count(u.videos_per_month, 'video')}[/] (mean {u.video_mb:.0f} MB) a month "
        f"= {human(u.gb_uploaded * 1e9)}; {_count(u.users, 'member')}; kept "
        f"{_count(u.retention_days, 'day')} after the PC has them [dim]({u.source})[/]"
    )
    table = Table(title=f"Monthly estimate, {result.prices.region}", title_justify="left")
    table.add_column("service")
    if detail:
        table.add_column("item")
        table.add_column("quantity", justify="right")
    table.add_column("list price", justify="right")
    table.add_column("billed (free tiers)", justify="right")
    if detail:
        for line in result.lines:
            table.add_row(
                line.service,
                line.item,
                f"{line.quantity:,.{0 if line.quantity >= 100 else 2}f} {line.unit}",
                _usd(line.list_usd),
                _usd(line.billed_usd),
            )
    else:
        for service, (listed, billed) in result.by_service().items():
            table.add_row(service, _usd(listed), _usd(billed))
    table.add_section()
    total = ["[bold]total[/]"] + ([""] * 2 if detail else [])
    table.add_row(
        *total, f"[bold]{_usd(result.list_total)}[/]", f"[bold]{_usd(result.billed_total)}[/]"
    )
    out.print(table)
    low, high = SEED_ESTIMATE
    out.print(f"The project's original estimate: ${low:.0f} to ${high:.0f} a month.")
    transfer = result.by_service().get("Data transfer out", (0.0, 0.0))[0]
    if result.list_total > 0:
        out.print(
            f"Data transfer to the PC is {transfer / result.list_total:.0%} of the list-price "
            "total: the first 100 GB a month are free, every GB after costs "
            f"${result.prices.transfer_out_gb:.2f}."
        )
    out.print(f"[dim]List prices as of {PRICES_AS_OF}, {result.prices.region}: {PRICE_SOURCE}.[/]")
