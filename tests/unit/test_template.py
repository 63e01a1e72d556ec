"""infra/template.yaml: it lints clean, it parses, and it keeps the design's invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

import mobile_backup.local
from mobile_backup.core import AWAITING_INDEX, Settings
from mobile_backup.local import TemplateError, load_template, resolve
from mobile_backup.local._template import default_template_path

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource["Properties"]


def lint(path: Path) -> list[str]:
    """cfn-lint's errors and warnings, as `RULE: message` lines."""
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id}: {m.message}" for m in matches if m.rule.id[0] in "EW"]


# cfn-lint ------------------------------------------------------------------------------


def test_template_is_cfn_lint_clean() -> None:
    assert lint(TEMPLATE_PATH) == []


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("VisibilityTimeout: 300", "VisibilityTimeout: 99999"),  # above SQS's maximum
        ("BillingMode: PAY_PER_REQUEST", "BillingMode: PAY_AS_YOU_GO"),
        ("MinimumLength: 10", "MinimumLenght: 10"),
    ],
)
def test_cfn_lint_flags_a_broken_copy(tmp_path: Path, good: str, bad: str) -> None:
    """The lint test above would catch a mistake: the same check fails on a broken copy."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert good in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(good, bad), encoding="utf-8")
    assert any(line.startswith("E") for line in lint(broken))


# Parsing -------------------------------------------------------------------------------


def test_default_path_is_the_repository_template() -> None:
    assert default_template_path() == TEMPLATE_PATH


def test_short_tags_become_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        """
Resources:
  R:
    Type: Test
    Properties:
      A: !Ref Param
      B: !Sub "${AWS::StackName}-x"
      C: !Sub ["${Name}-y", {Name: !Ref Param}]
      D: !GetAtt Queue.Arn
      E: !GetAtt [Queue, Arn]
      F: !Join ["-", [a, !Ref Param]]
      G: !If [Cond, 1, 2]
      H: !Select [0, !Split [",", "a,b"]]
      I: !GetAtt Db.Endpoint.Address
""",
        encoding="utf-8",
    )
    p = load_template(path)["Resources"]["R"]["Properties"]
    assert p["A"] == {"Ref": "Param"}
    assert p["B"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert p["C"] == {"Fn::Sub": ["${Name}-y", {"Name": {"Ref": "Param"}}]}
    assert p["D"] == p["E"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert p["F"] == {"Fn::Join": ["-", ["a", {"Ref": "Param"}]]}
    assert p["G"] == {"Fn::If": ["Cond", 1, 2]}
    assert p["H"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert p["I"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [("Resources: [", "not valid YAML"), ("Outputs: {}", "no Resources")],
)
def test_bad_template_files_raise_template_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=message):
        load_template(path)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")


def _resolve(value: Any) -> Any:
    return resolve(
        value,
        params={"Days": 7},
        pseudo={"AWS::StackName": "s", "AWS::Region": "eu-west-1"},
        refs={"Queue": "https://queue"},
        attrs={"Queue.Arn": "arn:q", "Db.Endpoint.Address": "db.local"},
    )


def test_resolver_evaluates_the_intrinsics_the_template_uses() -> None:
    value = {
        "Name": {"Fn::Sub": "${AWS::StackName}-media-${AWS::Region}"},
        "Vars": {"Fn::Sub": ["${X}/${Queue.Arn}/${!Literal}", {"X": {"Ref": "Days"}}]},
        "Arn": {"Fn::GetAtt": ["Queue", "Arn"]},
        "Dotted": {"Fn::GetAtt": "Db.Endpoint.Address"},
        "Joined": {"Fn::Join": [":", ["a", {"Ref": "Queue"}]]},
        "List": [{"Ref": "Days"}, "plain", 3],
        "Picked": {"Fn::Select": [1, ["a", "b"]]},
    }
    assert _resolve(value) == {
        "Name": "s-media-eu-west-1",
        "Vars": "7/arn:q/${Literal}",
        "Arn": "arn:q",
        "Dotted": "db.local",
        "Joined": "a:https://queue",
        "List": [7, "plain", 3],
        "Picked": "b",
    }


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Nope"},
        {"Fn::GetAtt": ["Queue", "QueueName"]},
        {"Fn::Sub": "${Nope}"},
        {"Fn::If": ["Cond", 1, 2]},
        {"Fn::Sub": 3},
    ],
)
def test_resolver_refuses_what_it_cannot_resolve(value: Any) -> None:
    with pytest.raises(TemplateError):
        _resolve(value)


def test_local_exports() -> None:
    exported = set(mobile_backup.local.__all__)
    assert {
        "EmulatorServer",
        "LocalResources",
        "create_user",
        "load_template",
        "provision",
    } <= exported
    assert len(exported) == len(mobile_backup.local.__all__)  # no name listed twice (ruff sorts)
    assert all(hasattr(mobile_backup.local, name) for name in exported)


# Design invariants ------------------------------------------------------------------------


def test_bucket_is_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    bucket = props(template, "MediaBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}

    policy = props(template, "MediaBucketPolicy")
    assert policy["Bucket"] == {"Ref": "MediaBucket"}
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["MediaBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${MediaBucket.Arn}/*"} in deny["Resource"]


def test_browser_uploads_are_allowed_by_cors(template: dict[str, Any]) -> None:
    (rule,) = props(template, "MediaBucket")["CorsConfiguration"]["CorsRules"]
    assert {"PUT", "GET", "HEAD"} <= set(rule["AllowedMethods"])
    assert {"content-type", "content-length", "x-amz-checksum-sha256"} <= set(
        rule["AllowedHeaders"]
    )
    assert "ETag" in rule["ExposedHeaders"]


def test_lifecycle_never_expires_a_copy_the_pc_has_not_verified(template: dict[str, Any]) -> None:
    rules = props(template, "MediaBucket")["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules)

    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in aborts] == [1]

    expiring = [r for r in rules if any(k.startswith(("Expiration", "Noncurrent")) for k in r)]
    assert len(expiring) == 1
    for rule in expiring:
        # Only objects tagged by the agent after its receipt; never by prefix alone.
        assert rule["TagFilters"] == [{"Key": "state", "Value": "downloaded"}]
        assert rule["ExpirationInDays"] == {"Ref": "RetentionDays"}
        assert "ObjectSizeGreaterThan" not in rule
    # Every other rule applies to untagged objects too, and none of them expires anything.
    for rule in rules:
        if "TagFilters" not in rule:
            assert not any(k.startswith(("Expiration", "Noncurrent")) for k in rule)

    tiering = [r for r in rules if "Transitions" in r]
    assert [t for r in tiering for t in r["Transitions"]] == [
        {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0}
    ]
    assert all("TagFilters" not in r and "Prefix" not in r for r in tiering)

    retention = template["Parameters"]["RetentionDays"]
    assert retention["Type"] == "Number"
    assert retention["MinValue"] >= 1


def test_new_objects_under_media_notify_the_events_queue(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["MediaBucket"]
    (config,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "media/"}]
    # S3 checks it may send to the queue when the notification is configured.
    assert bucket["DependsOn"] == "EventsQueuePolicy"


def test_queue_policy_admits_only_this_bucket(template: dict[str, Any]) -> None:
    policy = props(template, "EventsQueuePolicy")
    assert policy["Queues"] == [{"Ref": "EventsQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    pseudo = {"AWS::StackName": "stack", "AWS::AccountId": "111122223333", "AWS::Partition": "aws"}

    def ev(value: Any) -> Any:
        return resolve(value, params={}, pseudo=pseudo, refs={}, attrs={})

    bucket_name = ev(props(template, "MediaBucket")["BucketName"])
    assert ev(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == f"arn:aws:s3:::{bucket_name}"
    assert ev(statement["Condition"]["StringEquals"]["aws:SourceAccount"]) == "111122223333"


@pytest.mark.parametrize(
    ("queue", "dlq", "receives"),
    [("EventsQueue", "EventsDLQ", 5), ("DownloadsQueue", "DownloadsDLQ", 8)],
)
def test_both_queues_have_dead_letter_queues(
    template: dict[str, Any], queue: str, dlq: str, receives: int
) -> None:
    q = props(template, queue)
    assert q["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": receives,
    }
    assert q["SqsManagedSseEnabled"] is True
    assert props(template, dlq)["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert props(template, dlq)["SqsManagedSseEnabled"] is True


def test_queue_timings(template: dict[str, Any]) -> None:
    ingest_timeout = props(template, "IngestFunction")["Timeout"]
    assert props(template, "EventsQueue")["VisibilityTimeout"] >= 6 * ingest_timeout
    downloads = props(template, "DownloadsQueue")
    assert downloads["VisibilityTimeout"] == 300
    assert downloads["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_ledger_table_matches_the_ledger_code(template: dict[str, Any]) -> None:
    table = props(template, "LedgerTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == AWAITING_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
        "gsi1pk": "S",
        "gsi1sk": "S",
    }
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_sign_in_is_admin_created_srp_only(template: dict[str, Any]) -> None:
    pool = props(template, "UserPool")
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 10
    assert password["RequireLowercase"]
    assert password["RequireUppercase"]

    client = props(template, "UserPoolClient")
    assert client["GenerateSecret"] is False
    # USER_PASSWORD_AUTH is enabled on the local emulator only, never in the cloud.
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert (client["AccessTokenValidity"], client["TokenValidityUnits"]["AccessToken"]) == (
        1,
        "hours",
    )
    assert (client["RefreshTokenValidity"], client["TokenValidityUnits"]["RefreshToken"]) == (
        30,
        "days",
    )


def test_api_requires_a_cognito_jwt_except_for_health(template: dict[str, Any]) -> None:
    auth = props(template, "HttpApi")["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]["JwtConfiguration"]
    assert authorizer["issuer"] == {
        "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"
    }
    assert authorizer["audience"] == [{"Ref": "UserPoolClient"}]
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"].get("Auth")
        for e in props(template, "ApiFunction")["Events"].values()
    }
    assert routes == {
        ("POST", "/v1/uploads"): None,
        ("GET", "/v1/files"): None,
        ("GET", "/v1/health"): {"Authorizer": "NONE"},
    }


def test_ingest_reports_partial_batch_failures(template: dict[str, Any]) -> None:
    (event,) = props(template, "IngestFunction")["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_function_environment_names_are_settings(template: dict[str, Any]) -> None:
    """Every MOBILE_BACKUP_* variable a function gets is a field Settings reads."""
    names = [
        name
        for function in ("ApiFunction", "IngestFunction")
        for name in props(template, function)["Environment"]["Variables"]
    ]
    prefix = Settings.model_config["env_prefix"]
    assert names
    for name in names:
        assert name.startswith(prefix)
        assert name.removeprefix(prefix).lower() in Settings.model_fields


def test_outputs_name_every_resource_a_client_needs(template: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "BucketName",
        "TableName",
        "EventsQueueUrl",
        "DownloadsQueueUrl",
        "DownloadsDLQUrl",
        "Region",
    } <= set(template["Outputs"])
