"""infra/template.yaml: it lints clean, it parses, and it keeps the design's invariants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from cfnlint.api import ManualArgs, lint_file

from _iam import transform
from mobile_backup.api._app import create_app
from mobile_backup.core import STATE_TAG, ObjectState, Settings
from mobile_backup.core._settings import ENV_PREFIX
from mobile_backup.infra import TemplateError, default_template_path, load_template, resolve
from mobile_backup.ledger import AWAITING_INDEX, CHANGED_INDEX, TAKEN_INDEX

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    properties: dict[str, Any] = resource["Properties"]
    return properties


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
    assert default_template_path().resolve() == TEMPLATE_PATH  # the package links to it


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
    by_state = {r["TagFilters"][0]["Value"]: r for r in expiring}
    # Only objects tagged by the code's own states (`core.ObjectState`): after a PC's receipt
    # (`downloaded`, kept RetentionDays), or proven to be no photo of anyone's (the rest).
    assert set(by_state) == {s.value for s in ObjectState}
    for state, rule in by_state.items():
        assert rule["TagFilters"] == [{"Key": "state", "Value": state}]
        assert "ObjectSizeGreaterThan" not in rule
        assert "Prefix" not in rule
    assert by_state["downloaded"]["ExpirationInDays"] == {"Ref": "RetentionDays"}
    for state in set(ObjectState) - {ObjectState.DOWNLOADED}:
        assert by_state[state]["ExpirationInDays"] == 30
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
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {AWAITING_INDEX, TAKEN_INDEX, CHANGED_INDEX}
    for name, (hash_key, range_key) in (
        (AWAITING_INDEX, ("gsi1pk", "gsi1sk")),
        (TAKEN_INDEX, ("gsi2pk", "gsi2sk")),
        (CHANGED_INDEX, ("gsi3pk", "gsi3sk")),
    ):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    assert {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
        "gsi1pk": "S",
        "gsi1sk": "S",
        "gsi2pk": "S",
        "gsi2sk": "S",
        "gsi3pk": "S",
        "gsi3sk": "S",
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
    # A removed member is out within 15 minutes: access tokens cannot be revoked early.
    seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    for token in ("AccessToken", "IdToken"):
        unit = client["TokenValidityUnits"][token]
        assert client[f"{token}Validity"] * seconds[unit] <= 15 * 60
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
    # Derived from the routes the API really serves: every documented route is deployed,
    # behind the authorizer exactly when the code asks for a bearer token.
    app = create_app(
        settings=Settings(bucket="b"),
        ledger=cast(Any, object()),
        s3=cast(Any, object()),
        verifier=cast(Any, object()),
    )
    app.register_all()  # (a request registers only its own group)
    served = [*app._static_routes, *app._dynamic_routes]
    assert routes == {
        (r.method, r.path): None if r.security else {"Authorizer": "NONE"}
        for r in served
        if r.include_in_schema
    }
    assert ("POST", "/v1/files/lookup") in routes


def test_ingest_reports_partial_batch_failures(template: dict[str, Any]) -> None:
    # An explicit mapping rather than a SAM `SQS` event: that one would also attach
    # AWSLambdaSQSQueueExecutionRole, which may read every queue in the account.
    assert "Events" not in props(template, "IngestFunction")
    mapping = props(template, "IngestEventSource")
    # The published alias (what SnapStart snapshots), not $LATEST.
    assert mapping["FunctionName"] == {"Ref": "IngestFunction.Alias"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_function_environment_names_are_settings(template: dict[str, Any]) -> None:
    """Every MOBILE_BACKUP_* variable a function gets is a field Settings reads."""
    names = [
        name
        for function in ("ApiFunction", "IngestFunction")
        for name in props(template, function)["Environment"]["Variables"]
    ]
    prefix = ENV_PREFIX
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


# The template CloudFormation deploys: after the SAM transform ------------------------------


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return transform(template, AlarmEmail="owner@example.com")


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def allow_statements(transformed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every identity policy, with the resource it belongs to."""
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in transformed["Resources"].items():
        p = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in p.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"}:
            documents = [p["PolicyDocument"]]
        for document in documents:
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                if statement["Effect"] == "Allow":
                    found.append((logical_id, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_sam_transform_succeeds(transformed: dict[str, Any]) -> None:
    kinds = {r["Type"] for r in transformed["Resources"].values()}
    assert not any(kind.startswith("AWS::Serverless::") for kind in kinds)
    assert {"AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::IAM::Role"} <= kinds
    assert "Transform" not in transformed


def test_the_functions_run_the_uploaded_zip_on_the_built_target(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    from mobile_backup.deploy import lambda_target

    target = lambda_target(template)
    functions = of_type(transformed, "AWS::Lambda::Function")
    assert set(functions) == {"ApiFunction", "IngestFunction"}
    for function in functions.values():
        p = function["Properties"]
        assert p["Code"] == {"S3Bucket": "artifacts", "S3Key": "lambda/abc.zip"}
        assert (p["Runtime"], p["Architectures"]) == (target.runtime, [target.architecture])
        assert p["TracingConfig"] == {"Mode": "Active"}
        # Logs expire: each function writes to a log group of the template with a retention.
        group = p["LoggingConfig"]["LogGroup"]["Ref"]
        assert transformed["Resources"][group]["Properties"]["RetentionInDays"] == 30


def test_everything_that_stores_data_is_encrypted(transformed: dict[str, Any]) -> None:
    buckets = of_type(transformed, "AWS::S3::Bucket")
    queues = of_type(transformed, "AWS::SQS::Queue")
    tables = of_type(transformed, "AWS::DynamoDB::Table")
    # The media bucket, and the access-log bucket that `deploy --access-logs` adds.
    assert (len(buckets), len(queues), len(tables)) == (2, 4, 1)
    for bucket in buckets.values():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    for queue in queues.values():
        p = queue["Properties"]
        assert p.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in p
    for table in tables.values():
        p = table["Properties"]
        assert p["SSESpecification"] == {"SSEEnabled": True}
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_every_bucket_is_private_and_tls_only(transformed: dict[str, Any]) -> None:
    policies = of_type(transformed, "AWS::S3::BucketPolicy")
    for logical_id, bucket in of_type(transformed, "AWS::S3::Bucket").items():
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
        assert len(bucket["Properties"]["PublicAccessBlockConfiguration"]) == 4
        (policy,) = [
            p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logical_id}
        ]
        denies = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies
        assert denies[0]["Action"] in ("s3:*", ["s3:*"])
        assert {"Fn::Sub": f"${{{logical_id}.Arn}}/*"} in denies[0]["Resource"]


def test_no_policy_allows_a_wildcard_action_on_a_wildcard_resource(
    transformed: dict[str, Any],
) -> None:
    statements = allow_statements(transformed)
    assert len(statements) >= 8
    for owner, statement in statements:
        actions = as_list(statement["Action"])
        resources = as_list(statement.get("Resource", []))
        assert "*" not in actions, owner
        assert not any(a.endswith(":*") for a in actions), (owner, actions)
        assert "*" not in resources, (owner, statement)


def test_roles_get_only_the_expected_aws_managed_policies(transformed: dict[str, Any]) -> None:
    """Their contents are AWS's and invisible here: keep the list short and known."""
    allowed = {
        # logs:CreateLogGroup/CreateLogStream/PutLogEvents
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        # xray:PutTraceSegments/PutTelemetryRecords/GetSampling*
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    }
    roles = of_type(transformed, "AWS::IAM::Role")
    assert set(roles) == {"ApiFunctionRole", "IngestFunctionRole"}
    for role in roles.values():
        assert set(role["Properties"]["ManagedPolicyArns"]) <= allowed


def _actions_by_resource(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            key = str(resource)
            grants.setdefault(key, set()).update(as_list(statement["Action"]))
    return grants


def _role_statements(transformed: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for owner, s in allow_statements(transformed) if owner == role]


# Which actions each role holds is proven from the calls the code really makes, in
# tests/test_zz_iam_calls.py (a hand-copied list here would go stale with the code). What
# stays here are the safety properties no test run can show by using a grant.


def test_the_api_never_deletes_or_retags_media(transformed: dict[str, Any]) -> None:
    """The PC's verified copy is what decides a cloud copy's fate, never the phone's side."""
    api = _actions_by_resource(_role_statements(transformed, "ApiFunctionRole"))
    actions = set().union(*api.values())
    assert not any(a.startswith(("s3:Delete", "s3:PutObjectTagging", "s3:PutBucket"))
                   for a in actions)  # fmt: skip
    assert not any(a.startswith(("dynamodb:Delete", "dynamodb:Scan")) for a in actions)


def test_the_agent_cannot_write_media_or_scan_the_ledger(transformed: dict[str, Any]) -> None:
    (statements,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in of_type(transformed, "AWS::IAM::ManagedPolicy").values()
    ]
    actions = set().union(*_actions_by_resource(statements).values())
    assert "s3:PutObject" not in actions
    assert not any(a.startswith(("dynamodb:Scan", "dynamodb:Delete", "dynamodb:PutItem"))
                   for a in actions)  # fmt: skip
    assert "AgentPolicyArn" in transformed["Outputs"]


def test_listing_media_is_only_ever_granted_under_the_media_prefix(
    transformed: dict[str, Any],
) -> None:
    grants = [s for _owner, s in allow_statements(transformed)
              if "s3:ListBucket" in as_list(s["Action"])]  # fmt: skip
    assert grants, "a 403 for a missing key could never be told from a denial"
    for statement in grants:
        assert statement["Condition"] == {"StringLike": {"s3:prefix": "media/*"}}


def test_undownloaded_objects_are_never_expired_after_the_transform(
    transformed: dict[str, Any],
) -> None:
    bucket = of_type(transformed, "AWS::S3::Bucket")["MediaBucket"]
    for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]:
        if any(k.startswith(("Expiration", "Noncurrent")) for k in rule):
            assert rule["TagFilters"] in [
                [{"Key": STATE_TAG, "Value": state.value}] for state in ObjectState
            ]


def test_the_access_log_bucket_holds_logs_of_the_media_bucket_only(
    transformed: dict[str, Any],
) -> None:
    logs = of_type(transformed, "AWS::S3::Bucket")["AccessLogBucket"]
    assert logs["Condition"] == "AccessLogsOn"
    (rule,) = logs["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 90
    media = of_type(transformed, "AWS::S3::Bucket")["MediaBucket"]["Properties"]
    assert media["LoggingConfiguration"]["Fn::If"][0] == "AccessLogsOn"
    policy = of_type(transformed, "AWS::S3::BucketPolicy")["AccessLogBucketPolicy"]
    (allow,) = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert set(allow["Condition"]) == {"StringEquals", "ArnLike"}


def test_members_cannot_write_the_attributes_their_folder_is_named_from(
    template: dict[str, Any],
) -> None:
    """A member renamed herself "alice" and was given `alice-2` only because Alice had
    uploaded first: a member could take another's folder name before they arrive."""
    from mobile_backup.api._members import FOLDER_ATTRIBUTES

    client = props(template, "UserPoolClient")
    writable = set(client["WriteAttributes"])
    assert writable
    assert not writable & set(FOLDER_ATTRIBUTES)
    assert set(FOLDER_ATTRIBUTES) <= set(client["ReadAttributes"])


def test_the_alarm_topic_is_encrypted_with_a_key_alarms_and_budgets_may_use(
    template: dict[str, Any],
) -> None:
    topic = props(template, "AlarmTopic")
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = props(template, "AlarmTopicKey")
    assert key["EnableKeyRotation"] is True
    (publish,) = [s for s in key["KeyPolicy"]["Statement"] if s["Sid"] == "AlarmsAndBudgetsPublish"]
    assert set(publish["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
    }
    assert set(publish["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_mfa_and_reserved_concurrency_follow_their_parameters(template: dict[str, Any]) -> None:
    pool = props(template, "UserPool")
    assert pool["MfaConfiguration"] == {
        "Fn::If": ["MfaOn", {"Fn::If": ["MfaRequired", "ON", "OPTIONAL"]}, "OFF"]
    }
    assert pool["EnabledMfas"]["Fn::If"][1] == ["SOFTWARE_TOKEN_MFA"]
    for name in ("ApiFunction", "IngestFunction"):
        assert props(template, name)["ReservedConcurrentExecutions"] == {
            "Fn::If": [
                "HasReservedConcurrency",
                {"Ref": "ReservedConcurrency"},
                {"Ref": "AWS::NoValue"},
            ]
        }


def test_http_api_is_throttled_and_access_logged(transformed: dict[str, Any]) -> None:
    (stage,) = of_type(transformed, "AWS::ApiGatewayV2::Stage").values()
    p = stage["Properties"]
    throttle = p["DefaultRouteSettings"]
    assert 0 < throttle["ThrottlingRateLimit"] <= throttle["ThrottlingBurstLimit"] <= 1000
    logs = p["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}
    fields = json.loads(logs["Format"])
    assert {"requestId", "status", "route", "latencyMs"} <= set(fields)
    # $context only: request headers (the bearer token) never reach the log.
    assert all(v.startswith("$context.") for v in fields.values())
    assert "header" not in logs["Format"].lower()


def test_alarms_cover_every_way_backups_stall(transformed: dict[str, Any]) -> None:
    alarms = of_type(transformed, "AWS::CloudWatch::Alarm")

    def watched(alarm: dict[str, Any]) -> tuple[str, str, Any]:
        p = alarm["Properties"]
        if "Metrics" in p:
            (stat,) = [m["MetricStat"]["Metric"] for m in p["Metrics"] if "MetricStat" in m]
            return stat["Namespace"], stat["MetricName"], stat["Dimensions"][0]["Value"]
        return p["Namespace"], p["MetricName"], p["Dimensions"][0]["Value"]

    seen = {str(watched(a)) for a in alarms.values()}
    sqs, visible = "AWS/SQS", "ApproximateNumberOfMessagesVisible"
    expected = [
        (sqs, visible, {"Fn::GetAtt": ["DownloadsDLQ", "QueueName"]}),
        (sqs, visible, {"Fn::GetAtt": ["EventsDLQ", "QueueName"]}),
        (sqs, "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": ["DownloadsQueue", "QueueName"]}),
        ("AWS/Lambda", "Errors", {"Ref": "ApiFunction"}),
        ("AWS/Lambda", "Errors", {"Ref": "IngestFunction"}),
        ("AWS/ApiGateway", "5xx", {"Ref": "HttpApi"}),
        # an object no member's upload asked for (the ingest's own metric)
        ("MobileBackup", "QuarantinedObjects", "mobile-backup-ingest"),
    ]
    assert seen == {str(e) for e in expected}
    assert len(alarms) == len(expected)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    stopped = alarms["PcStoppedCollectingAlarm"]["Properties"]
    assert stopped["Threshold"] == {"Ref": "PcOfflineAlarmHours"}
    (expression,) = [m for m in stopped["Metrics"] if m.get("ReturnData")]
    assert expression["Expression"] == "age / 3600"  # seconds → hours


def test_the_pc_alarm_fires_before_sqs_forgets(template: dict[str, Any]) -> None:
    hours = template["Parameters"]["PcOfflineAlarmHours"]
    retention = props(template, "DownloadsQueue")["MessageRetentionPeriod"]
    assert hours["MaxValue"] * 3600 < retention
    assert hours["Default"] * 3600 < retention


def test_alarm_mail_and_budget_follow_the_parameters(template: dict[str, Any]) -> None:
    with_mail = transform(template, AlarmEmail="owner@example.com")
    without = transform(template)
    # The condition is CloudFormation's to evaluate; both carry it and the budget.
    for t in (with_mail, without):
        (subscription,) = of_type(t, "AWS::SNS::Subscription").values()
        assert subscription["Condition"] == "HasAlarmEmail"
        assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
        (budget,) = of_type(t, "AWS::Budgets::Budget").values()
        limit = budget["Properties"]["Budget"]["BudgetLimit"]
        assert limit == {"Amount": {"Ref": "MonthlyBudget"}, "Unit": "USD"}
        notifications = budget["Properties"]["NotificationsWithSubscribers"]["Fn::If"]
        assert notifications[0] == "HasAlarmEmail"
        assert notifications[2] == {"Ref": "AWS::NoValue"}
        assert {n["Notification"]["NotificationType"] for n in notifications[1]} == {
            "ACTUAL",
            "FORECASTED",
        }
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Parameters"]["MonthlyBudget"]["MinValue"] >= 1


def test_snapstart_is_a_parameter_and_everything_invokes_the_published_alias(
    template: dict[str, Any],
) -> None:
    assert template["Parameters"]["SnapStart"]["Default"] == "off"  # it costs money
    transformed = transform(template, SnapStart="on")
    functions = of_type(transformed, "AWS::Lambda::Function")
    versions = of_type(transformed, "AWS::Lambda::Version")
    aliases = of_type(transformed, "AWS::Lambda::Alias")
    for name, function in functions.items():
        assert function["Properties"]["SnapStart"] == {
            "Fn::If": ["SnapStartOn", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
        }
        (alias,) = (a for a in aliases.values() if a["Properties"]["FunctionName"] == {"Ref": name})
        assert alias["Properties"]["Name"] == "live"
        assert alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0] in versions
    alias_ids = {
        logical_id
        for logical_id, a in aliases.items()
        if a["Properties"]["FunctionName"] == {"Ref": "IngestFunction"}
    }
    (mapping,) = of_type(transformed, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"]["Ref"] in alias_ids
    # API Gateway calls the API function's alias, and may call nothing else.
    api_alias = next(
        logical_id
        for logical_id, a in aliases.items()
        if a["Properties"]["FunctionName"] == {"Ref": "ApiFunction"}
    )
    permissions = of_type(transformed, "AWS::Lambda::Permission").values()
    assert permissions
    assert all(p["Properties"]["FunctionName"] == {"Ref": api_alias} for p in permissions)
    assert template["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "on"]}


QUEUE_IDS = ("DownloadsQueue", "DownloadsDLQ", "EventsDLQ")


def test_the_dashboard_body_is_json_with_the_stack_s_metrics(template: dict[str, Any]) -> None:
    body = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    rendered = resolve(
        {"Fn::Sub": body},
        params={},
        pseudo={"AWS::Region": "eu-west-1"},
        refs={"HttpApi": "api1", "ApiFunction": "fa", "IngestFunction": "fi", "MediaBucket": "b"},
        attrs={
            f"{q}.QueueName": q.lower() for q in ("DownloadsQueue", "DownloadsDLQ", "EventsDLQ")
        },
    )
    widgets = json.loads(rendered)["widgets"]
    metrics = [m for w in widgets for m in w["properties"]["metrics"]]
    assert ["AWS/ApiGateway", "5xx", "ApiId", "api1"] in metrics
    assert ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "downloadsqueue"] in metrics


def test_sam_build_has_a_make_target_per_function(template: dict[str, Any]) -> None:
    """`sam build` runs `make build-<LogicalId>` in CodeUri; each must exist."""
    code_uri = template["Globals"]["Function"]["CodeUri"]
    makefile = (TEMPLATE_PATH.parent / code_uri / "Makefile").read_text(encoding="utf-8")
    functions = [
        lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert functions
    for logical_id in functions:
        assert template["Resources"][logical_id]["Metadata"]["BuildMethod"] == "makefile"
        assert f"build-{logical_id}:" in makefile
    assert "-m mobile_backup.deploy build" in makefile


def test_the_password_rules_the_app_states_are_the_pools(template: dict[str, Any]) -> None:
    """The client says the rules in words from a copy (a phone cannot read the pool's);
    the copy must be the template's own policy."""
    from mobile_backup.core import PASSWORD_POLICY, password_problem, temporary_password

    policy = dict(props(template, "UserPool")["Policies"]["PasswordPolicy"])
    policy.pop("TemporaryPasswordValidityDays", None)
    assert policy == PASSWORD_POLICY
    assert password_problem(temporary_password()) is None
    assert password_problem("a" * int(policy["MinimumLength"])) is not None


def test_every_checkov_finding_left_is_skipped_with_its_reason(template: dict[str, Any]) -> None:
    """`make test` runs checkov on the template (Makefile: `checkov`); what it would flag and
    we keep on purpose is skipped in the template itself, each with a reason in words."""
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, logical_id
        assert skip["id"].startswith("CKV_AWS_"), logical_id
        assert len(skip["comment"].split()) >= 8, (logical_id, skip)


@pytest.mark.parametrize("with_link", [True, False])
def test_the_invitation_mail_carries_the_password_and_the_invite_link(
    template: dict[str, Any], with_link: bool
) -> None:
    """Cognito refuses an invitation message without {username} and {####}; with the
    InviteLink parameter set (as deploy sets it) the member also gets the household's link."""
    import re

    from mobile_backup.client import Invite, read_invite

    link = Invite(
        name="home",
        api_url="https://abc123.execute-api.eu-west-1.amazonaws.com",
        region="eu-west-1",
        user_pool_id="eu-west-1_AbC123",
        client_id="3abc",
    ).link
    parameter = template["Parameters"]["InviteLink"]
    assert re.fullmatch(parameter["AllowedPattern"], link)
    assert not re.fullmatch(parameter["AllowedPattern"], link.replace("https", "http", 1))
    message = resolve(
        props(template, "UserPool")["AdminCreateUserConfig"]["InviteMessageTemplate"],
        params={"InviteLink": link if with_link else ""},
        pseudo={"AWS::StackName": "home"},
        refs={},
        attrs={},
        conditions={"HasInviteLink": with_link},
    )
    body = message["EmailMessage"]
    assert "{username}" in body
    assert "{####}" in body
    assert "home" in message["EmailSubject"]
    if with_link:
        (href,) = re.findall(r'href="([^"]+)"', body)
        assert read_invite(href) == read_invite(link)
    else:
        assert "http" not in body
