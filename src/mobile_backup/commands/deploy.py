"""`deploy` and `deploy --delete`: the stack on the owner's AWS account."""

from __future__ import annotations

import enum
import hashlib
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mobile_backup.commands._common import (
    deployment_name,
    err,
    human,
    out,
    safe,
    state,
)
from mobile_backup.core import read_profiles

if TYPE_CHECKING:
    from mobile_backup.deploy import StackEvent

DEFAULT_STACK = "mobile-backup"


class MfaChoice(enum.StrEnum):
    """The template's Mfa parameter."""

    off = "off"
    optional = "optional"
    required = "required"


DEFAULT_PROFILE = "default"


def _profile_name() -> str:
    return state.profile or DEFAULT_PROFILE


def _boto_session(aws_profile: str | None, region: str | None) -> Any:
    from mobile_backup.aws import admin_session

    return admin_session(aws_profile, region)


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
    snapstart: Annotated[
        bool | None,
        typer.Option(
            "--snapstart/--no-snapstart",
            help="Restore the functions from a snapshot (Lambda SnapStart): cold starts skip "
            "~0.6 s of set-up, for about $3 a month (default: off, or as last deployed).",
        ),
    ] = None,
    mfa: Annotated[
        MfaChoice | None,
        typer.Option(
            help="A second factor at sign-in, an authenticator app's codes: off, optional "
            "(each member may turn it on with `mobile-backup mfa setup`) or required "
            "(default: off, or as last deployed).",
            case_sensitive=False,
        ),
    ] = None,
    access_logs: Annotated[
        bool | None,
        typer.Option(
            "--access-logs/--no-access-logs",
            help="Keep S3 access logs of the media bucket for 90 days, in a bucket of their "
            "own (default: off, or as last deployed).",
            show_default=False,
        ),
    ] = None,
    reserved_concurrency: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=100,
            help="Concurrent executions reserved for (and capping) each function, a cost "
            "guard (default: 20 where the account's quota allows, else 0).",
        ),
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
            ("SnapStart", None if snapstart is None else ("on" if snapstart else "off")),
            ("Mfa", mfa.value if mfa is not None else None),
            ("AccessLogs", None if access_logs is None else ("on" if access_logs else "off")),
            ("ReservedConcurrency", reserved_concurrency),
        )
        if value is not None
    }
    if build_dir is not None:
        _deploy(session, stack, parameters, build_dir, profile_name, agent_aws_profile)
    else:
        with tempfile.TemporaryDirectory(prefix="mobile-backup-build-") as tmp:
            _deploy(session, stack, parameters, Path(tmp), profile_name, agent_aws_profile)


def _account(session: Any) -> str:
    from mobile_backup.deploy import translate

    with translate("check your AWS credentials"):
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
    if "ReservedConcurrency" not in parameters:
        _choose_reserved_concurrency(session, stack, parameters)
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
    result = _put_invite_link_in_mail(deployer, result, url, parameters, profile_name)
    if result.changed and "TableName" in result.outputs:
        _index_existing_files(session, result.outputs["TableName"])
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


def _put_invite_link_in_mail(
    deployer: Any, result: Any, template_url: str, parameters: dict[str, str], profile_name: str
) -> Any:
    """Cognito's invitation e-mail carries the household's invite link (without the member's
    e-mail: the message is the pool's, the same for everyone). The link names the API and
    the app client, which the template cannot give the pool it depends on, so a second,
    small update sets it once the first has made them; a deployment whose link is already
    in place is not touched."""
    from mobile_backup.client import Invite
    from mobile_backup.core import load_settings

    link = Invite.for_deployment(
        load_settings(profile_name), email=None, name=deployment_name(profile_name)
    ).link
    current = deployer.describe(result.stack_name) or {}
    if any(
        p["ParameterKey"] == "InviteLink" and p.get("ParameterValue") == link
        for p in current.get("Parameters", [])
    ):
        return result
    with _event_progress() as progress:
        view = _StackProgress(progress, "putting the invite link in the invitation e-mail…")
        second = deployer.deploy(
            stack_name=result.stack_name,
            template_url=template_url,
            parameters={**parameters, "InviteLink": link},
            tags={"app": "mobile-backup", "stack": result.stack_name},
            on_event=view.event,
            on_plan=view.plan,
        )
    return replace(second, changed=True, planned=result.planned + second.planned)


def _index_existing_files(session: Any, table: str) -> None:
    """Put files recorded before the capture-time index into it (once: the entries already
    in it are skipped), so the gallery's order holds every file. A failure is a warning:
    the next deploy finishes it."""
    from mobile_backup.aws import AwsFailure
    from mobile_backup.ledger import Ledger

    try:
        with err.status("putting earlier files into the capture-time index…"):
            added = Ledger(session.client("dynamodb"), table).index_by_taken()
    except AwsFailure as exc:
        err.print(f"warning: could not index the earlier files ({exc}); deploy again to finish")
        return
    if added:
        out.print(f"Indexed {added} earlier files by capture time.")


def _choose_reserved_concurrency(session: Any, stack: str, parameters: dict[str, str]) -> None:
    """Reserve concurrency as a cost guard where the account's quota allows it; a stack that
    already has a value keeps it (CloudFormation's previous value)."""
    from mobile_backup.aws import AwsFailure
    from mobile_backup.deploy import StackDeployer, reserved_concurrency

    existing = StackDeployer(cloudformation=session.client("cloudformation")).describe(stack)
    if existing and any(
        p["ParameterKey"] == "ReservedConcurrency" for p in existing.get("Parameters", [])
    ):
        return
    try:
        chosen = reserved_concurrency(session.client("lambda"))
    except AwsFailure as exc:  # the quota is unreadable here (denied, or no such API)
        err.print(f"[yellow]note:[/] no concurrency reserved: {safe(exc)}", highlight=False)
        return
    parameters["ReservedConcurrency"] = str(chosen.per_function)
    out.print(f"Lambda: {chosen.reason}.", highlight=False)


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
