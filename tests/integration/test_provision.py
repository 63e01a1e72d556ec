"""The local stack provisioned from infra/template.yaml is the template's stack.

Every expected value below is read from the parsed template, never copied into the test: a
template change that provisioning does not follow fails here.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import pytest

from mobile_backup.infra import condition_values
from mobile_backup.local import (
    EmulatorServer,
    LocalResources,
    LocalServerError,
    ProvisionError,
    TemplateError,
    create_user,
    load_template,
    provision,
    resolve,
)

pytestmark = pytest.mark.integration

QUEUES = {
    "EventsQueue": "events_queue_url",
    "EventsDLQ": "events_dlq_url",
    "DownloadsQueue": "downloads_queue_url",
    "DownloadsDLQ": "downloads_dlq_url",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def client(resources: LocalResources, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=resources.endpoint_url,
        region_name=resources.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def queue_attributes(resources: LocalResources, url: str) -> dict[str, str]:
    attrs: dict[str, str] = client(resources, "sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]
    return attrs


def template_props(
    template: dict[str, Any], resources: LocalResources, logical_id: str
) -> dict[str, Any]:
    """A resource's properties with intrinsics resolved against the provisioned stack."""
    account = client(resources, "sts").get_caller_identity()["Account"]
    arns = {
        f"{lid}.Arn": queue_attributes(resources, getattr(resources, field))["QueueArn"]
        for lid, field in QUEUES.items()
    }
    params = {k: v["Default"] for k, v in template["Parameters"].items()}
    pseudo = {
        "AWS::StackName": resources.stack_name,
        "AWS::Region": resources.region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
    }
    resolved: dict[str, Any] = resolve(
        template["Resources"][logical_id]["Properties"],
        params=params,
        pseudo=pseudo,
        conditions=condition_values(template, params=params, pseudo=pseudo),
        refs={
            "MediaBucket": resources.bucket,
            "LedgerTable": resources.table,
            "UserPool": resources.user_pool_id,
            "UserPoolClient": resources.client_id,
            **{lid: getattr(resources, field) for lid, field in QUEUES.items()},
        },
        attrs=arns,
    )
    return resolved


# Names ----------------------------------------------------------------------------------


def test_physical_names_follow_the_template(
    template: dict[str, Any], resources: LocalResources
) -> None:
    assert resources.bucket == template_props(template, resources, "MediaBucket")["BucketName"]
    assert resources.table == template_props(template, resources, "LedgerTable")["TableName"]
    for logical_id, field in QUEUES.items():
        name = template_props(template, resources, logical_id)["QueueName"]
        assert getattr(resources, field).rsplit("/", 1)[1] == name
    pool = client(resources, "cognito-idp").describe_user_pool(UserPoolId=resources.user_pool_id)
    assert (
        pool["UserPool"]["Name"] == template_props(template, resources, "UserPool")["UserPoolName"]
    )


# S3 ---------------------------------------------------------------------------------------


def test_bucket_settings_match_the_template(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want = template_props(template, resources, "MediaBucket")
    s3 = client(resources, "s3")
    bucket = resources.bucket

    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert pab == want["PublicAccessBlockConfiguration"]

    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership == want["OwnershipControls"]

    (got_sse,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    (want_sse,) = want["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert (
        got_sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        == want_sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    )

    (got_cors,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    (want_cors,) = want["CorsConfiguration"]["CorsRules"]
    assert got_cors["AllowedMethods"] == want_cors["AllowedMethods"]
    assert got_cors["AllowedOrigins"] == want_cors["AllowedOrigins"]
    assert got_cors["AllowedHeaders"] == want_cors["AllowedHeaders"]
    assert got_cors["ExposeHeaders"] == want_cors["ExposedHeaders"]
    assert got_cors["MaxAgeSeconds"] == want_cors["MaxAge"]


def _lifecycle_by_id(resources: LocalResources) -> dict[str, dict[str, Any]]:
    rules = client(resources, "s3").get_bucket_lifecycle_configuration(Bucket=resources.bucket)[
        "Rules"
    ]
    return {rule["ID"]: rule for rule in rules}


def test_lifecycle_matches_the_template(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want_rules = template_props(template, resources, "MediaBucket")["LifecycleConfiguration"][
        "Rules"
    ]
    got = _lifecycle_by_id(resources)
    assert set(got) == {rule["Id"] for rule in want_rules}
    for want in want_rules:
        rule = got[want["Id"]]
        assert rule["Status"] == want["Status"]
        if "AbortIncompleteMultipartUpload" in want:
            assert rule["AbortIncompleteMultipartUpload"] == want["AbortIncompleteMultipartUpload"]
        if "Transitions" in want:
            assert rule["Transitions"] == [
                {"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]}
                for t in want["Transitions"]
            ]
        if "ExpirationInDays" in want:
            assert rule["Expiration"] == {"Days": want["ExpirationInDays"]}
        else:
            assert "Expiration" not in rule
        if "TagFilters" in want:
            (tag,) = want["TagFilters"]
            assert rule["Filter"] == {"Tag": tag}
        else:
            # Applies to every object, tagged or not.
            assert rule["Filter"] == {"Prefix": ""}


def test_retention_parameter_reaches_the_lifecycle(emulator: EmulatorServer) -> None:
    resources = provision(
        endpoint_url=emulator.endpoint_url,
        stack_name=f"r{uuid.uuid4().hex[:10]}",
        parameters={"RetentionDays": "7"},
    )
    rules = _lifecycle_by_id(resources)
    assert rules["expire-downloaded"]["Expiration"] == {"Days": 7}
    assert rules["expire-corrupt"]["Expiration"] == {"Days": 30}  # not the retention period


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"RetentionDays": "0"}, "out of range"),
        ({"RetentionDays": "soon"}, "must be a number"),
        ({"Retention": "7"}, "unknown template parameter"),
    ],
)
def test_bad_parameters_are_refused(
    emulator: EmulatorServer, parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        provision(endpoint_url=emulator.endpoint_url, stack_name="bad", parameters=parameters)


def test_bucket_notifies_the_events_queue(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want = template_props(template, resources, "MediaBucket")["NotificationConfiguration"]
    (want_queue,) = want["QueueConfigurations"]
    got = client(resources, "s3").get_bucket_notification_configuration(Bucket=resources.bucket)
    (queue,) = got["QueueConfigurations"]
    assert queue["QueueArn"] == want_queue["Queue"]
    assert queue["QueueArn"] == queue_attributes(resources, resources.events_queue_url)["QueueArn"]
    assert queue["Events"] == [want_queue["Event"]]
    assert queue["Filter"]["Key"]["FilterRules"] == want_queue["Filter"]["S3Key"]["Rules"]


def _drain(resources: LocalResources, url: str) -> list[dict[str, Any]]:
    sqs = client(resources, "sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_only_puts_under_media_reach_the_events_queue(resources: LocalResources) -> None:
    s3 = client(resources, "s3")
    # Configuring the notification sent S3's test event, as on AWS.
    assert [body.get("Event") for body in _drain(resources, resources.events_queue_url)] == [
        "s3:TestEvent"
    ]
    s3.put_object(Bucket=resources.bucket, Key="elsewhere/a", Body=b"outside")
    s3.put_object(Bucket=resources.bucket, Key="media/u/b", Body=b"inside")
    # moto delivers synchronously within the PUT, so draining now sees both or neither.
    events = _drain(resources, resources.events_queue_url)
    keys = {
        (record["eventName"], record["s3"]["object"]["key"])
        for body in events
        for record in body["Records"]
    }
    assert keys == {("ObjectCreated:Put", "media%2Fu%2Fb")}


# SQS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(QUEUES))
def test_queue_attributes_match_the_template(
    template: dict[str, Any], resources: LocalResources, logical_id: str
) -> None:
    want = template_props(template, resources, logical_id)
    got = queue_attributes(resources, getattr(resources, QUEUES[logical_id]))
    for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
        if key in want:
            assert int(got[key]) == want[key], key
    assert got["SqsManagedSseEnabled"] == str(want["SqsManagedSseEnabled"]).lower()
    if "RedrivePolicy" in want:
        assert json.loads(got["RedrivePolicy"]) == want["RedrivePolicy"]
    else:
        assert "RedrivePolicy" not in got


def test_events_queue_policy_matches_the_template(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want = template_props(template, resources, "EventsQueuePolicy")["PolicyDocument"]
    got = json.loads(queue_attributes(resources, resources.events_queue_url)["Policy"])
    assert got == want
    (statement,) = got["Statement"]
    assert (
        statement["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{resources.bucket}"
    )


# DynamoDB --------------------------------------------------------------------------------


def test_table_matches_the_template(template: dict[str, Any], resources: LocalResources) -> None:
    want = template_props(template, resources, "LedgerTable")
    ddb = client(resources, "dynamodb")
    table = ddb.describe_table(TableName=resources.table)["Table"]
    assert table["KeySchema"] == want["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        want["AttributeDefinitions"], key=str
    )
    assert table["BillingModeSummary"]["BillingMode"] == want["BillingMode"]
    got_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert got_indexes == {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in want["GlobalSecondaryIndexes"]
    }
    backups = ddb.describe_continuous_backups(TableName=resources.table)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert (pitr["PointInTimeRecoveryStatus"] == "ENABLED") is want[
        "PointInTimeRecoverySpecification"
    ]["PointInTimeRecoveryEnabled"]


# Cognito --------------------------------------------------------------------------------


def test_user_pool_matches_the_template(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want = template_props(template, resources, "UserPool")
    pool = client(resources, "cognito-idp").describe_user_pool(UserPoolId=resources.user_pool_id)[
        "UserPool"
    ]
    assert pool["UsernameAttributes"] == want["UsernameAttributes"]
    assert (
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
        is (want["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"])
    )
    got_policy = pool["Policies"]["PasswordPolicy"]
    for key, value in want["Policies"]["PasswordPolicy"].items():
        assert got_policy[key] == value, key


def test_app_client_matches_the_template_plus_local_password_auth(
    template: dict[str, Any], resources: LocalResources
) -> None:
    want = template_props(template, resources, "UserPoolClient")
    got = client(resources, "cognito-idp").describe_user_pool_client(
        UserPoolId=resources.user_pool_id, ClientId=resources.client_id
    )["UserPoolClient"]
    assert "ClientSecret" not in got
    # The one deliberate divergence: the emulator has no SRP, so the CLI uses passwords.
    assert sorted(got["ExplicitAuthFlows"]) == sorted(
        [*want["ExplicitAuthFlows"], "ALLOW_USER_PASSWORD_AUTH"]
    )
    for key in (
        "AccessTokenValidity",
        "IdTokenValidity",
        "RefreshTokenValidity",
        "TokenValidityUnits",
        "PreventUserExistenceErrors",
        "ReadAttributes",
        "WriteAttributes",
    ):
        assert got[key] == want[key], key


def test_a_member_cannot_rename_the_folder_they_are_filed_under(
    resources: LocalResources,
) -> None:
    """Cognito refuses a client's write of an attribute it may not write; the emulator is
    made to as well (`local/_emulator_fixes.py`), so this runs as on AWS."""
    from botocore.exceptions import ClientError

    from mobile_backup.api._members import FOLDER_ATTRIBUTES

    idp = client(resources, "cognito-idp")
    email = f"mallory-{uuid.uuid4().hex[:8]}@example.com"
    create_user(resources, email=email, password="Correct-Horse-9-Battery")
    token = idp.initiate_auth(
        ClientId=resources.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": "Correct-Horse-9-Battery"},
    )["AuthenticationResult"]["AccessToken"]
    for attribute in FOLDER_ATTRIBUTES:
        with pytest.raises(ClientError, match="unauthorized attribute"):
            idp.update_user_attributes(
                AccessToken=token, UserAttributes=[{"Name": attribute, "Value": "alice"}]
            )
    idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "name", "Value": "M"}])
    attributes = {a["Name"]: a["Value"] for a in idp.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes.get("preferred_username") is None
    assert attributes["email"] == email
    # The owner still can (users add, or the console): an administrator's call.
    idp.admin_update_user_attributes(
        UserPoolId=resources.user_pool_id,
        Username=email,
        UserAttributes=[{"Name": "preferred_username", "Value": "mal"}],
    )


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_created_user_signs_in_with_a_password(resources: LocalResources) -> None:
    email, password = "ada@example.com", "Correct-Horse-9"
    sub = create_user(resources, email=email, password=password)
    idp = client(resources, "cognito-idp")

    def sign_in(secret: str) -> dict[str, Any]:
        result: dict[str, Any] = idp.initiate_auth(
            ClientId=resources.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": secret},
        )
        return result

    tokens = sign_in(password)["AuthenticationResult"]
    claims = _claims(tokens["AccessToken"])
    assert claims["sub"] == sub
    assert claims["client_id"] == resources.client_id
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        sign_in("Wrong-Horse-9")
    # Adding the same person again keeps their identity (and so their files).
    assert create_user(resources, email=email, password="Another-Horse-9") == sub
    assert "AuthenticationResult" in sign_in("Another-Horse-9")


# Idempotence and template drift --------------------------------------------------------------


def test_provisioning_twice_converges(emulator: EmulatorServer) -> None:
    name = f"i{uuid.uuid4().hex[:10]}"
    first = provision(endpoint_url=emulator.endpoint_url, stack_name=name)
    second = provision(endpoint_url=emulator.endpoint_url, stack_name=name)
    assert second == first
    # The emulator is shared by the session: other tests' pools are listed too, across pages.
    pages = client(first, "cognito-idp").get_paginator("list_user_pools").paginate(MaxResults=60)
    pools = [p for page in pages for p in page["UserPools"]]
    assert [p["Id"] for p in pools if p["Name"].startswith(f"{name}-")] == [first.user_pool_id]
    clients = client(first, "cognito-idp").list_user_pool_clients(
        UserPoolId=first.user_pool_id, MaxResults=60
    )["UserPoolClients"]
    assert [c["ClientId"] for c in clients] == [first.client_id]


def test_template_changes_provisioning_cannot_follow_fail_loudly(
    emulator: EmulatorServer, template: dict[str, Any]
) -> None:
    unknown_type = copy.deepcopy(template)
    unknown_type["Resources"]["Alerts"] = {"Type": "AWS::Kinesis::Stream", "Properties": {}}
    with pytest.raises(TemplateError, match="Alerts"):
        provision(endpoint_url=emulator.endpoint_url, stack_name="d1", template=unknown_type)

    unknown_property = copy.deepcopy(template)
    bucket = unknown_property["Resources"]["MediaBucket"]["Properties"]
    bucket["AccelerateConfiguration"] = {"AccelerationStatus": "Enabled"}
    with pytest.raises(TemplateError, match="AccelerateConfiguration"):
        provision(endpoint_url=emulator.endpoint_url, stack_name="d2", template=unknown_property)


# The emulator ------------------------------------------------------------------------------


def test_emulator_lifecycle_and_quiet(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = EmulatorServer()
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url
    # Whatever level the HTTP servers' loggers were left at.
    for name in ("werkzeug", "waitress"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    caplog.set_level(logging.INFO)
    with server:
        url = server.endpoint_url
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")
        # The dashboard page, not data.json: moto fails to render data.json (500) once a
        # bucket that held objects has been deleted, which other tests in the session do.
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=5) as response:
            assert response.status == 200
    assert not server.running
    servers = ("werkzeug", "waitress")
    chatter = [r for r in caplog.records if r.name.startswith(servers)]
    assert not [r for r in chatter if r.levelno < logging.WARNING]
    out, err = capfd.readouterr()
    assert "GET /moto-api" not in out + err
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
    server.stop()  # a second stop is harmless


def test_emulator_stops_cleanly_when_its_loop_has_already_ended() -> None:
    # The race seen in CI: stop() raised the flag, the loop's one-second poll ended on its
    # own, saw the flag and closed every socket (the wake-up pipe too) before stop() wrote
    # to that pipe: EBADF, or a write into whatever file reused the descriptor.
    server = EmulatorServer()
    server.start()
    inner = server._server
    assert inner is not None
    inner._stopping.set()
    inner._thread.join(timeout=5)
    assert not inner._thread.is_alive()
    server.stop()
    assert not server.running


def test_emulator_keeps_connections_alive_and_stops_under_a_long_poll() -> None:
    import http.client
    import threading

    with EmulatorServer() as server:
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.connect()
        sock = conn.sock
        for _ in range(3):  # one connection for all three, as botocore's pool reuses it
            conn.request("GET", "/moto-api/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            assert conn.sock is sock
        conn.close()

        sqs = boto3.client(
            "sqs",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]

        def poll() -> None:
            with contextlib.suppress(Exception):  # it ends when the server goes
                sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)

        threading.Thread(target=poll, daemon=True).start()
        time.sleep(0.3)  # the poll is waiting inside the server
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        stopping.join(timeout=10)  # the poll itself would wait ~20 s more
        assert not stopping.is_alive()
    assert not server.running


def test_an_unreachable_emulator_is_a_provision_error() -> None:
    # Port 1 on loopback refuses at once; the error names where provisioning looked.
    with pytest.raises(ProvisionError, match=r"127\.0\.0\.1:1"):
        provision(endpoint_url="http://127.0.0.1:1", stack_name="nowhere")


def test_the_emulator_in_its_own_process_serves_and_ends_with_stop() -> None:
    import psutil

    from mobile_backup.core import EMULATOR_KEY

    with EmulatorServer(own_process=True) as server:
        pid = server.pid
        assert pid is not None
        assert pid != os.getpid()
        sqs = boto3.client(
            "sqs", endpoint_url=server.endpoint_url, region_name="us-east-1",
            aws_access_key_id=EMULATOR_KEY, aws_secret_access_key=EMULATOR_KEY,
        )  # fmt: skip
        url = sqs.create_queue(QueueName=f"own-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        assert url in sqs.list_queues().get("QueueUrls", [])
        child = psutil.Process(pid)
        assert child.is_running()
    assert server.pid is None
    assert not server.running
    assert not child.is_running()
    server.stop()  # a second stop is harmless


def test_an_emulator_process_that_cannot_start_says_why_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for own_process in (False, True):  # in this process, or a child of its own
            server = EmulatorServer(port=port, own_process=own_process)
            with pytest.raises(LocalServerError) as caught:
                server.start()
            message = str(caught.value)
            assert message.startswith(f"the AWS emulator cannot listen on 127.0.0.1:{port}: ")
            assert "\n" not in message
            assert "Traceback" not in message
            assert not server.running


def test_the_emulator_process_ends_with_its_parent_even_on_kill_9() -> None:
    """No orphan: a `local up` killed outright takes its emulator with it."""
    import psutil

    parent = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from mobile_backup.local import EmulatorServer\n"
            "server = EmulatorServer(own_process=True)\n"
            "server.start()\n"
            "print(server.pid, flush=True)\n"
            "time.sleep(120)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        assert child.is_running()
        parent.kill()
        parent.wait(10)
        child.wait(timeout=15)  # raises if it outlives its parent
    finally:
        if parent.poll() is None:
            parent.kill()
        if parent.stdout is not None:
            parent.stdout.close()
