"""`deploy` (and `deploy --delete`), `users add` and `cost`: running on the owner's AWS account."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mobile_backup.commands._common import (
    USERS_SCHEMA,
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
from mobile_backup.core import ConfigError, InvalidInputError, read_profiles

if TYPE_CHECKING:
    from mobile_backup.deploy import Estimate, StackEvent

DEFAULT_STACK = "mobile-backup"
DEFAULT_PROFILE = "default"

users_app = typer.Typer(help="Household members: who may back up to this deployment.")


def _profile_name() -> str:
    return state.profile or DEFAULT_PROFILE


def _boto_session(aws_profile: str | None, region: str | None) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=aws_profile, region_name=region)
    except ProfileNotFound as exc:
        raise ConfigError(
            f"no AWS profile named {aws_profile!r} (see `aws configure list-profiles`)"
        ) from exc
    if not session.region_name:
        raise ConfigError(
            "no AWS region chosen: pass --region (e.g. --region eu-west-1), or set one with "
            "`aws configure` / AWS_DEFAULT_REGION"
        )
    return session


def _event_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


class _StackProgress:
    """Draws CloudFormation's events as a bar of resources done, plus failures as they come."""

    def __init__(self, progress: Progress, description: str) -> None:
        self._p = progress
        self._task = progress.add_task(description, total=None)
        self._done: set[str] = set()

    def plan(self, changes: int) -> None:
        self._p.update(self._task, total=changes)

    def event(self, event: StackEvent) -> None:
        if event.failed and event.reason and "cancelled" not in event.reason.lower():
            self._p.console.print(
                f"[red]✗[/] {event.logical_id} ({event.resource_type}): {event.reason}",
                highlight=False,
            )
        if event.is_stack:
            self._p.update(self._task, description=f"stack {event.status}")
            return
        if event.status.endswith("_COMPLETE") and event.logical_id not in self._done:
            self._done.add(event.logical_id)
            self._p.update(self._task, completed=len(self._done))
        self._p.update(
            self._task, description=f"{event.logical_id} {event.status.lower().replace('_', ' ')}"
        )


def deploy(
    stack_name: Annotated[
        str | None,
        typer.Option(
            help=f"CloudFormation stack name (default: the profile's, or {DEFAULT_STACK})."
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: the profile's, or your AWS config's).")
    ] = None,
    aws_profile: Annotated[
        str | None, typer.Option(help="AWS credentials profile to deploy with (default chain).")
    ] = None,
    alarm_email: Annotated[
        str | None, typer.Option(help="Who gets alarm and budget mails (confirm AWS's mail).")
    ] = None,
    monthly_budget: Annotated[
        int | None, typer.Option(min=1, help="Monthly budget in USD (template default 10).")
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days a copy stays in the cloud after the PC verified it (30)."),
    ] = None,
    pc_offline_alarm_hours: Annotated[
        int | None,
        typer.Option(
            min=1, max=312, help="Alarm when a file has waited this long for the PC (48)."
        ),
    ] = None,
    agent_aws_profile: Annotated[
        str | None,
        typer.Option(help="AWS profile the PC agent signs with (one bound to AgentPolicy)."),
    ] = None,
    build_dir: Annotated[
        Path | None, typer.Option(help="Where to build the Lambda package (default: a temp dir).")
    ] = None,
    delete: Annotated[
        bool, typer.Option("--delete", help="Tear the stack down (your data is kept).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting.")] = False,
) -> None:
    """Deploy (or update) the stack in your AWS account and write the profile that uses it.

    Builds the Lambda package (only the `lambda` extra's dependencies, for the runtime's
    platform), uploads it, creates or updates the stack through a CloudFormation change set
    and writes the profile selected with --profile (default: `default`).
    """
    profile_name = _profile_name()
    existing = read_profiles().get(profile_name, {})
    stack = stack_name or str(existing.get("stack_name") or DEFAULT_STACK)
    region = region or (str(existing["region"]) if existing.get("region") else None)

    from mobile_backup.deploy import check_stack_name

    check_stack_name(stack)
    session = _boto_session(aws_profile, region)
    if delete:
        _delete(session, stack, yes=yes, profile_name=profile_name)
        return
    parameters = {
        name: str(value)
        for name, value in (
            ("AlarmEmail", alarm_email),
            ("MonthlyBudget", monthly_budget),
            ("RetentionDays", retention_days),
            ("PcOfflineAlarmHours", pc_offline_alarm_hours),
        )
        if value is not None
    }
    if build_dir is not None:
        _deploy(session, stack, parameters, build_dir, profile_name, agent_aws_profile)
    else:
        with tempfile.TemporaryDirectory(prefix="mobile-backup-build-") as tmp:
            _deploy(session, stack, parameters, Path(tmp), profile_name, agent_aws_profile)


def _account(session: Any) -> str:
    from mobile_backup.deploy._errors import translate

    with translate("checking your AWS credentials"):
        return str(session.client("sts").get_caller_identity()["Account"])


def _deploy(
    session: Any,
    stack: str,
    parameters: dict[str, str],
    build_dir: Path,
    profile_name: str,
    agent_aws_profile: str | None,
) -> None:
    from mobile_backup.deploy import (
        ArtifactStore,
        StackDeployer,
        artifacts_bucket_name,
        build_artifact,
        lambda_target,
        with_code_location,
        write_deploy_profile,
    )
    from mobile_backup.infra import load_template

    region = str(session.region_name)
    account = _account(session)
    out.print(f"Deploying stack [bold]{stack}[/] to account {account}, region {region}.")
    template = load_template()
    target = lambda_target(template)
    with err.status(
        f"building the Lambda package ({target.runtime}, {target.architecture}, {target.platform})…"
    ):
        artifact = build_artifact(build_dir, target=target)
    out.print(
        f"Lambda package: {human(artifact.zip_bytes)} zipped, {human(artifact.unzipped_bytes)} "
        f"unzipped ({', '.join(artifact.requirements)}; boto3 comes with the runtime)."
    )
    if not artifact.compiled:
        err.print(
            f"[yellow]note:[/] no python{target.python_version} here, so the package has no "
            "bytecode and each cold start compiles it (seconds, not milliseconds); install "
            f"Python {target.python_version} and deploy again to precompile.",
            highlight=False,
        )
    store = ArtifactStore(
        s3=session.client("s3"),
        bucket=artifacts_bucket_name(stack, account, region),
        region=region,
    )
    with err.status(f"uploading to s3://{store.bucket}…"):
        store.ensure()
        store.upload_file(artifact.zip_path, artifact.s3_key)
        prepared = with_code_location(template, bucket=store.bucket, key=artifact.s3_key)
        digest = hashlib.sha256(json.dumps(prepared, sort_keys=True).encode()).hexdigest()
        url = store.upload_template(prepared, f"templates/{digest[:32]}.json")
    deployer = StackDeployer(cloudformation=session.client("cloudformation"))
    with _event_progress() as progress:
        view = _StackProgress(progress, "creating the change set (SAM transform)…")
        result = deployer.deploy(
            stack_name=stack,
            template_url=url,
            parameters=parameters,
            tags={"app": "mobile-backup", "stack": stack},
            on_event=view.event,
            on_plan=view.plan,
        )
    path = write_deploy_profile(
        profile_name, result.outputs, stack_name=stack, aws_profile=agent_aws_profile
    )
    if result.changed:
        out.print(f"[bold green]Stack {stack} is {result.status}[/] ({result.planned} changes).")
    else:
        out.print(f"[bold green]Stack {stack} is up to date[/] (nothing changed).")
    _print_outputs(result.outputs, profile_name, path)
    if parameters.get("AlarmEmail"):
        out.print(
            f"AWS mailed {parameters['AlarmEmail']} a subscription confirmation: follow its "
            "link, or no alarm will reach you."
        )


def _print_outputs(outputs: dict[str, str], profile_name: str, path: Path) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    for label, key in (
        ("HTTP API", "ApiUrl"),
        ("user pool", "UserPoolId"),
        ("media bucket", "BucketName"),
        ("ledger table", "TableName"),
        ("downloads queue", "DownloadsQueueUrl"),
        ("PC agent policy", "AgentPolicyArn"),
        ("dashboard", "DashboardName"),
    ):
        if key in outputs:
            table.add_row(label, outputs[key])
    table.add_row("profile written", f"{profile_name} → {path}")
    out.print(table)
    flag = "" if profile_name == DEFAULT_PROFILE else f" --profile {profile_name}"
    out.print(
        "Next: [bold]mobile-backup"
        + flag
        + " users add you@example.com[/] · [bold]mobile-backup"
        + flag
        + " login[/] · attach the PC agent policy above to the AWS identity your PC uses, "
        "then [bold]mobile-backup" + flag + " agent run[/]"
    )


def _delete(session: Any, stack: str, *, yes: bool, profile_name: str) -> None:
    from mobile_backup.deploy import (
        ArtifactStore,
        StackDeployer,
        artifacts_bucket_name,
        retained_logical_ids,
    )
    from mobile_backup.infra import load_template

    region = str(session.region_name)
    account = _account(session)
    deployer = StackDeployer(cloudformation=session.client("cloudformation"))
    if deployer.describe(stack) is None:
        out.print(f"There is no stack {stack} in {region}; nothing to delete.")
        return
    retained = deployer.resources(stack, retained_logical_ids(load_template()))
    if not yes:
        typer.confirm(
            f"Delete stack {stack} in account {account}, region {region}? Your media bucket, "
            "ledger and user pool are kept",
            abort=True,
        )
    with _event_progress() as progress:
        view = _StackProgress(progress, f"deleting {stack}…")
        deployer.delete(stack_name=stack, on_event=view.event)
    store = ArtifactStore(
        s3=session.client("s3"), bucket=artifacts_bucket_name(stack, account, region), region=region
    )
    removed = store.empty_and_delete()
    out.print(
        f"[bold green]Stack {stack} deleted[/]; artifacts bucket removed ({removed} objects)."
    )
    if retained:
        out.print("Kept on purpose (your photos, their ledger, your members) — remove by hand:")
        for resource in retained:
            out.print(f"  {resource.resource_type}  {resource.physical_id}", highlight=False)
        out.print(
            "Deploying the same stack name again needs them gone (or a different --stack-name)."
        )
    out.print(f"The profile {safe(repr(profile_name))} still points at the deleted stack.")


@users_app.command("add")
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


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the household members of the deployment selected with --profile."""
    from mobile_backup.core import cognito_client
    from mobile_backup.deploy import list_members

    cfg = load_profile()
    members = list_members(cognito_client(cfg), user_pool_id=cfg.require("user_pool_id"))
    if as_json:
        print_json(
            {
                "schema": USERS_SCHEMA,
                "profile": cfg.profile,
                "members": [
                    {"email": m.email, "id": m.sub, "status": m.status, "created": m.created}
                    for m in members
                ],
            }
        )
        return
    if not members:
        out.print("No members yet: add one with `mobile-backup users add EMAIL`.")
        return
    table = Table()
    for column in ("e-mail", "id (their library folder)", "status", "added"):
        table.add_column(column)
    for m in members:
        status = "must choose a password" if m.status == "FORCE_CHANGE_PASSWORD" else m.status
        table.add_row(safe(m.email), m.sub, status.lower(), (m.created or "")[:10])
    out.print(table)


@users_app.command("remove")
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
