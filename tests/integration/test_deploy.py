"""`mobile-backup deploy`, `deploy --delete` and `users add`, as far as the emulator goes.

Real on the emulator: the credentials check (STS), the artifacts bucket with its guardrails,
the upload of the Lambda zip and of the prepared template, the profile, and the household
members (Cognito). Stubbed: CloudFormation, whose emulation cannot run a SAM template; its
responses are replayed with botocore's Stubber (see tests/unit/test_deploy_stack.py). The
stack's outputs are the names of a stack provisioned from the same template on the emulator,
so the profile `deploy` writes is proven against resources that exist.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from mobile_backup.aws import AccessDeniedError, dynamodb_client, sqs_client
from mobile_backup.cli import app, main
from mobile_backup.client import Invite, read_invite
from mobile_backup.commands import deploy as deploy_cmd
from mobile_backup.core import (
    EMULATOR_KEY,
    InvalidInputError,
    load_settings,
    read_profiles,
    write_profile,
)
from mobile_backup.deploy import (
    ArtifactStore,
    DeployError,
    _artifact,
    add_member,
    artifacts_bucket_name,
)
from mobile_backup.ledger import Ledger
from mobile_backup.local import LocalResources, local_settings, profile_values

ACCOUNT = "123456789012"  # the emulator's account
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def emulator_client(endpoint: str, service: str, region: str = "us-east-1") -> Any:
    make: Any = boto3.client  # any service: the overloads want a literal
    return make(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=EMULATOR_KEY,
        aws_secret_access_key=EMULATOR_KEY,
    )


# The artifacts bucket -----------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_artifacts_bucket_is_private_encrypted_and_tls_only(
    emulator: Any, tmp_path: Path, region: str
) -> None:
    s3 = emulator_client(emulator.endpoint_url, "s3", region)
    bucket = artifacts_bucket_name(f"t{region.replace('-', '')}", ACCOUNT, region)
    store = ArtifactStore(s3=s3, bucket=bucket, region=region)
    assert store.ensure() is True
    assert store.ensure() is False  # re-applying the settings is harmless
    if region != "us-east-1":
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == region
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert len(block) == 4
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # The emulator speaks plain HTTP, so the TLS-only policy is left off here (see below).
    assert not store.tls_only
    (expiry,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert expiry["Expiration"] == {"Days": 90}

    artifact = tmp_path / "lambda.zip"
    artifact.write_bytes(b"zip bytes")
    assert store.upload_file(artifact, "lambda/abc.zip") is True
    assert store.upload_file(artifact, "lambda/abc.zip") is False  # content-addressed
    url = store.upload_template({"Resources": {"R": {"Type": "T"}}}, "templates/t.json")
    assert url == f"https://{bucket}.s3.{region}.amazonaws.com/templates/t.json"
    body = s3.get_object(Bucket=bucket, Key="templates/t.json")["Body"].read()
    assert json.loads(body) == {"Resources": {"R": {"Type": "T"}}}

    assert store.empty_and_delete() == 2
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert store.empty_and_delete() == 0  # already gone is fine


def test_the_tls_only_policy_refuses_plain_http(emulator: Any) -> None:
    """The emulator enforces bucket policies: with the policy on, its plain HTTP is refused."""
    s3 = emulator_client(emulator.endpoint_url, "s3")
    store = ArtifactStore(s3=s3, bucket="tls-only-check", region="us-east-1", tls_only=True)
    assert ArtifactStore(s3=s3, bucket="x", region="us-east-1").tls_only is False
    store.ensure()
    policy = json.loads(s3.get_bucket_policy(Bucket=store.bucket)["Policy"])
    (deny,) = policy["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    with pytest.raises(AccessDeniedError, match="403"):
        store.upload_template({"Resources": {}}, "templates/t.json")


def test_a_bucket_name_taken_by_another_account_is_a_deploy_error() -> None:
    """S3 answers 403 to HEAD on someone else's bucket (stubbed: the emulator has one account)."""
    s3 = boto3.client(
        "s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        store = ArtifactStore(s3=s3, bucket="taken", region="eu-west-1")
        with pytest.raises(DeployError, match="belongs to another AWS account"):
            store.ensure()


# deploy, end to end through the CLI ---------------------------------------------------------


class FakeSession:
    """A boto3 session whose STS and S3 are the emulator and whose CloudFormation (and, when
    given, Lambda: the emulator has no account settings) are stubbed."""

    def __init__(
        self,
        endpoint: str,
        cloudformation: Any,
        region: str = "us-east-1",
        lambda_client: Any = None,
    ) -> None:
        self.region_name = region
        self._endpoint = endpoint
        self._cfn = cloudformation
        self._lambda = lambda_client

    def client(self, service: str) -> Any:
        if service == "cloudformation":
            return self._cfn
        if service == "lambda" and self._lambda is not None:
            return self._lambda
        return emulator_client(self._endpoint, service, self.region_name)


def fake_pip(command: Sequence[str]) -> None:
    """Stands in for pip's download of the Lambda wheels (the network)."""
    target = Path(command[command.index("--target") + 1])
    (target / "fakedep").mkdir()
    (target / "fakedep" / "__init__.py").write_text("", encoding="utf-8")


@pytest.fixture
def cfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def outputs_of(resources: LocalResources) -> dict[str, str]:
    """What the real stack's Outputs would hold, for the resources on the emulator."""
    return {
        "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
        "Region": resources.region,
        "UserPoolId": resources.user_pool_id,
        "UserPoolClientId": resources.client_id,
        "BucketName": resources.bucket,
        "TableName": resources.table,
        "EventsQueueUrl": resources.events_queue_url,
        "DownloadsQueueUrl": resources.downloads_queue_url,
        "DownloadsDLQUrl": resources.downloads_dlq_url,
        "AgentPolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/mb-AgentPolicy-X",
        "DashboardName": "mb-us-east-1",
    }


def stack(status: str, stack_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "Stacks": [
            {"StackName": "mb", "StackId": stack_id, "CreationTime": NOW, "StackStatus": status}
            | extra
        ]
    }


def stack_events(stack_id: str, *statuses: tuple[str, str]) -> dict[str, Any]:
    return {
        "StackEvents": [
            {
                "StackId": stack_id,
                "EventId": f"{logical}-{status}",
                "StackName": "mb",
                "LogicalResourceId": logical,
                "ResourceType": "AWS::CloudFormation::Stack" if logical == "mb" else "T",
                "Timestamp": NOW,
                "ResourceStatus": status,
            }
            for logical, status in reversed(statuses)
        ]
    }


def test_deploy_uploads_creates_the_stack_and_writes_the_profile_clients_use(
    emulator: Any,
    resources: LocalResources,
    cfn: tuple[Any, Stubber],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, stubber = cfn
    stack_id = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/mb/1"
    change_set = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/c/1"
    bucket = artifacts_bucket_name("mb", ACCOUNT, "us-east-1")
    for _ in range(2):  # a new stack: no concurrency chosen before, nothing to update
        stubber.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id mb does not exist",
        )
    stubber.add_response(
        "create_change_set",
        {"Id": change_set, "StackId": stack_id},
        {
            "StackName": "mb",
            "ChangeSetName": ANY,
            "ChangeSetType": "CREATE",
            "TemplateURL": ANY,
            "Parameters": [
                {"ParameterKey": "AlarmEmail", "ParameterValue": "owner@example.com"},
                {"ParameterKey": "MonthlyBudget", "ParameterValue": "15"},
                {"ParameterKey": "ReservedConcurrency", "ParameterValue": "20"},
            ],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            "Tags": [{"Key": "app", "Value": "mobile-backup"}, {"Key": "stack", "Value": "mb"}],
            "Description": ANY,
        },
    )
    stubber.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource"}] * 40},
        {"ChangeSetName": change_set},
    )
    stubber.add_response(
        "describe_stack_events",
        stack_events(stack_id, ("mb", "REVIEW_IN_PROGRESS")),
        {"StackName": stack_id},
    )
    stubber.add_response("execute_change_set", {}, {"ChangeSetName": change_set})
    stubber.add_response(
        "describe_stack_events",
        stack_events(
            stack_id,
            ("mb", "REVIEW_IN_PROGRESS"),
            ("LedgerTable", "CREATE_COMPLETE"),
            ("mb", "CREATE_COMPLETE"),
        ),
        {"StackName": stack_id},
    )
    outputs = outputs_of(resources)
    stubber.add_response(
        "describe_stacks",
        stack(
            "CREATE_COMPLETE",
            stack_id,
            Outputs=[{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        ),
        {"StackName": stack_id},
    )
    # Then the household's invite link goes into Cognito's invitation e-mail: a second update
    # that sets only the InviteLink parameter, once the API and the app client exist.
    link = Invite(
        name="home",
        api_url=outputs["ApiUrl"],
        region="us-east-1",
        user_pool_id=resources.user_pool_id,
        client_id=resources.client_id,
    ).link
    given = [
        {"ParameterKey": "AlarmEmail", "ParameterValue": "owner@example.com"},
        {"ParameterKey": "MonthlyBudget", "ParameterValue": "15"},
        {"ParameterKey": "ReservedConcurrency", "ParameterValue": "20"},
    ]
    created = stack(
        "CREATE_COMPLETE",
        stack_id,
        Parameters=[*given, {"ParameterKey": "InviteLink", "ParameterValue": ""}],
        Outputs=[{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
    )
    for _ in range(2):  # is the link there yet; the update's own look at the stack
        stubber.add_response("describe_stacks", created, {"StackName": "mb"})
    update = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/c/2"
    stubber.add_response(
        "create_change_set",
        {"Id": update, "StackId": stack_id},
        {
            "StackName": "mb",
            "ChangeSetName": ANY,
            "ChangeSetType": "UPDATE",
            "TemplateURL": ANY,
            "Parameters": [*given, {"ParameterKey": "InviteLink", "ParameterValue": link}],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            "Tags": [{"Key": "app", "Value": "mobile-backup"}, {"Key": "stack", "Value": "mb"}],
            "Description": ANY,
        },
    )
    stubber.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource"}]},
        {"ChangeSetName": update},
    )
    done = stack_events(stack_id, ("mb", "CREATE_COMPLETE"))
    stubber.add_response("describe_stack_events", done, {"StackName": stack_id})
    stubber.add_response("execute_change_set", {}, {"ChangeSetName": update})
    stubber.add_response(
        "describe_stack_events",
        stack_events(stack_id, ("mb", "CREATE_COMPLETE"), ("mb", "UPDATE_COMPLETE")),
        {"StackName": stack_id},
    )
    stubber.add_response(
        "describe_stacks",
        stack(
            "UPDATE_COMPLETE",
            stack_id,
            Outputs=[{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        ),
        {"StackName": stack_id},
    )
    lambda_client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    quota = Stubber(lambda_client)
    quota.add_response("get_account_settings", {"AccountLimit": {"ConcurrentExecutions": 1000}}, {})
    quota.activate()
    session = FakeSession(emulator.endpoint_url, client, lambda_client=lambda_client)
    monkeypatch.setattr(deploy_cmd, "_boto_session", lambda profile, region: session)
    monkeypatch.setattr(_artifact, "run_pip", fake_pip)

    result = CliRunner().invoke(
        app,
        [
            "--profile",
            "home",
            "deploy",
            "--stack-name",
            "mb",
            "--alarm-email",
            "owner@example.com",
            "--monthly-budget",
            "15",
            "--agent-aws-profile",
            "pc-agent",
        ],
    )
    assert result.exit_code == 0, result.output
    quota.assert_no_pending_responses()
    assert "Lambda: each function reserves (and is capped at) 20" in result.output
    assert "Stack mb is UPDATE_COMPLETE" in result.output
    # What the e-mail carries is public only, and a member's app reads it.
    mailed = read_invite(link)
    assert (mailed.api_url, mailed.user_pool_id, mailed.email) == (
        outputs["ApiUrl"],
        resources.user_pool_id,
        None,
    )
    assert "Lambda package:" in result.output
    assert "subscription confirmation" in result.output
    assert outputs["AgentPolicyArn"] in result.output

    # The zip and the prepared template are in the artifacts bucket, pointing at each other.
    s3 = emulator_client(emulator.endpoint_url, "s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    (template_key,) = [k for k in keys if k.startswith("templates/")]
    (zip_key,) = [k for k in keys if k.startswith("lambda/")]
    uploaded = json.loads(s3.get_object(Bucket=bucket, Key=template_key)["Body"].read())
    functions = [
        r for r in uploaded["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert {json.dumps(f["Properties"]["CodeUri"]) for f in functions} == {
        json.dumps({"Bucket": bucket, "Key": zip_key})
    }

    # The profile is what every component reads.
    assert read_profiles()["home"]["stack_name"] == "mb"
    settings = load_settings("home")
    assert not settings.local
    assert settings.api_url == outputs["ApiUrl"]
    assert (settings.user_pool_id, settings.client_id) == (
        resources.user_pool_id,
        resources.client_id,
    )
    assert (settings.bucket, settings.table) == (resources.bucket, resources.table)
    assert settings.downloads_queue_url == resources.downloads_queue_url
    assert settings.events_queue_url == resources.events_queue_url
    assert settings.region == "us-east-1"
    assert settings.aws_profile == "pc-agent"
    assert settings.issuer.endswith(f"/{resources.user_pool_id}")

    # And those names address the real resources: the agent's queue and the ledger.
    monkeypatch.setenv("MOBILE_BACKUP_AWS_ENDPOINT_URL", emulator.endpoint_url)
    reach = load_settings("home", aws_profile=None).model_copy(update={"aws_profile": None})
    attributes = sqs_client(reach, component="test").get_queue_attributes(
        QueueUrl=reach.require("downloads_queue_url"), AttributeNames=["QueueArn"]
    )
    assert attributes["Attributes"]["QueueArn"].endswith(
        resources.downloads_queue_url.split("/")[-1]
    )
    assert (
        Ledger(dynamodb_client(reach, component="test"), reach.require("table")).get(
            "nobody", "0" * 64
        )
        is None
    )


def test_deploy_without_a_region_says_how_to_choose_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(SystemExit) as caught:
        main(["deploy"])
    assert caught.value.code == 1
    assert "no AWS region chosen: pass --region" in capsys.readouterr().err


def test_deploy_refuses_a_stack_name_that_cannot_name_buckets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["deploy", "--stack-name", "My_Backup", "--region", "eu-west-1"])
    assert caught.value.code == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps at the terminal width
    assert err.startswith("error: stack name 'My_Backup' must be 1-25 lowercase letters")


def test_delete_asks_first_then_removes_the_stack_and_the_artifacts(
    emulator: Any, cfn: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = cfn
    stack_id = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/mbdel/1"
    store = ArtifactStore(
        s3=emulator_client(emulator.endpoint_url, "s3"),
        bucket=artifacts_bucket_name("mbdel", ACCOUNT, "us-east-1"),
        region="us-east-1",
    )
    store.ensure()
    store.upload_template({"Resources": {}}, "templates/t.json")
    write_profile("home", {"stack_name": "mbdel", "region": "us-east-1"})
    session = FakeSession(emulator.endpoint_url, client)
    monkeypatch.setattr(deploy_cmd, "_boto_session", lambda profile, region: session)
    retained = [
        {
            "LogicalResourceId": lid,
            "PhysicalResourceId": phys,
            "ResourceType": kind,
            "LastUpdatedTimestamp": NOW,
            "ResourceStatus": "CREATE_COMPLETE",
        }
        for lid, phys, kind in (
            ("MediaBucket", "mbdel-media-123456789012", "AWS::S3::Bucket"),
            ("LedgerTable", "mbdel-ledger", "AWS::DynamoDB::Table"),
            ("ApiFunction", "mbdel-ApiFunction-X", "AWS::Lambda::Function"),
        )
    ]

    def prelude() -> None:
        stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE", stack_id))
        stubber.add_response("list_stack_resources", {"StackResourceSummaries": retained})

    # Answering "no" changes nothing.
    prelude()
    declined = CliRunner().invoke(app, ["--profile", "home", "deploy", "--delete"], input="n\n")
    assert declined.exit_code == 1
    assert "Delete stack mbdel" in declined.output
    assert store.exists("templates/t.json")

    prelude()
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE", stack_id))
    stubber.add_response("describe_stack_events", stack_events(stack_id))
    stubber.add_response("delete_stack", {}, {"StackName": stack_id})
    stubber.add_response(
        "describe_stack_events", stack_events(stack_id, ("mbdel", "DELETE_COMPLETE"))
    )
    stubber.add_response("describe_stacks", stack("DELETE_COMPLETE", stack_id))
    result = CliRunner().invoke(app, ["--profile", "home", "deploy", "--delete", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Stack mbdel deleted" in result.output
    assert "mbdel-media-123456789012" in result.output
    assert "mbdel-ledger" in result.output
    assert "mbdel-ApiFunction-X" not in result.output  # not retained, so not listed
    s3 = emulator_client(emulator.endpoint_url, "s3")
    assert store.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


# users add ------------------------------------------------------------------------------


@pytest.fixture
def household(resources: LocalResources) -> LocalResources:
    """A profile `home` pointing at a stack on the emulator."""
    write_profile("home", profile_values(local_settings(resources, api_url=None, library=None)))
    return resources


def _sign_in(resources: LocalResources, email: str, password: str) -> dict[str, Any]:
    idp = emulator_client(resources.endpoint_url, "cognito-idp", resources.region)
    result: dict[str, Any] = idp.initiate_auth(
        ClientId=resources.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]
    return result


def test_users_add_with_a_password_creates_a_member_who_can_sign_in(
    household: LocalResources,
) -> None:
    result = CliRunner().invoke(
        app,
        ["--profile", "home", "users", "add", "ann@example.com", "--password-stdin"],
        input="Correct-Horse-9\n",
    )
    assert result.exit_code == 0, result.output
    assert "Added ann@example.com" in result.output
    tokens = _sign_in(household, "ann@example.com", "Correct-Horse-9")
    payload = tokens["AccessToken"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] in result.output  # the id printed is the member's folder


def test_users_add_without_a_password_lets_cognito_mail_one(
    household: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployment (not the local stack, which sends no mail): Cognito e-mails the password.
    # The owner's own credentials, from the environment, as on AWS.
    values = profile_values(local_settings(household, api_url=None, library=None))
    values = {
        k: v for k, v in values.items() if not k.startswith("aws_") or k == "aws_endpoint_url"
    }
    write_profile("aws", {**values, "local": False})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "owner-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "owner-secret")
    result = CliRunner().invoke(app, ["--profile", "aws", "users", "add", "bob@example.com"])
    assert result.exit_code == 0, result.output
    assert "must choose a password at their first sign-in" in result.output
    assert "FORCE_CHANGE_PASSWORD" not in result.output
    assert "e-mailed them a temporary password" in result.output
    assert "Temporary password" not in result.output


def test_users_add_on_the_local_stack_prints_the_temporary_password(
    household: LocalResources,
) -> None:
    result = CliRunner().invoke(app, ["--profile", "home", "users", "add", "cat@example.com"])
    assert result.exit_code == 0, result.output
    assert "e-mailed" not in result.output  # the local stack sends no e-mail
    temp = re.search(r"Temporary password: (\S+)", result.output)
    assert temp, result.output
    idp = emulator_client(household.endpoint_url, "cognito-idp", household.region)
    first = idp.initiate_auth(
        ClientId=household.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "cat@example.com", "PASSWORD": temp.group(1)},
    )
    assert first["ChallengeName"] == "NEW_PASSWORD_REQUIRED"  # it works, as a first step


def test_adding_a_member_twice_is_one_readable_error(
    household: LocalResources, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        CliRunner().invoke(app, ["--profile", "home", "users", "add", "c@example.com"]).exit_code
        == 0
    )
    with pytest.raises(SystemExit) as caught:
        main(["--profile", "home", "users", "add", "c@example.com"])
    assert caught.value.code == 1
    assert capsys.readouterr().err.strip() == "error: c@example.com is already a member"


def test_a_refused_password_leaves_no_half_made_member(household: LocalResources) -> None:
    result = CliRunner().invoke(
        app,
        ["--profile", "home", "users", "add", "dan@example.com", "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code == 1
    assert result.exception is not None
    assert getattr(result.exception, "code", "") == "invalid_password"
    idp = emulator_client(household.endpoint_url, "cognito-idp", household.region)
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=household.user_pool_id, Username="dan@example.com")
    # The CLI checks the rules first; when the pool itself refuses (a stricter policy than
    # the client knows), the user it had just created is taken back.
    with pytest.raises(InvalidInputError) as refused:
        add_member(idp, user_pool_id=household.user_pool_id, email="eve@example.com", password="x")
    assert refused.value.code == "invalid_password"
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=household.user_pool_id, Username="eve@example.com")
