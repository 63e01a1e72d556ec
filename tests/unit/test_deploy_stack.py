"""The CloudFormation side of `deploy`, against stubbed responses.

The emulator's CloudFormation cannot run this template (it does not apply the SAM transform
and lacks Cognito, queue policies, HTTP APIs), so these tests replay CloudFormation's
responses with botocore's Stubber. The Stubber checks every request against the real
CloudFormation API model (names, types, required parameters) and every canned response
against its output shape; what it cannot prove is how the real service sequences states,
so the sequences below follow CloudFormation's documented ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mobile_backup.aws import AccessDeniedError
from mobile_backup.deploy import (
    CAPABILITIES,
    DeployError,
    InvalidStackNameError,
    NoCredentialsError,
    StackDeployer,
    StackEvent,
    check_stack_name,
    retained_logical_ids,
    with_code_location,
)
from mobile_backup.deploy._errors import translate
from mobile_backup.infra import load_template

STACK = "mobile-backup"
STACK_ID = "arn:aws:cloudformation:eu-west-1:111122223333:stack/mobile-backup/1234"
CHANGE_SET = "arn:aws:cloudformation:eu-west-1:111122223333:changeSet/mb/5678"
URL = "https://artifacts.s3.eu-west-1.amazonaws.com/templates/t.json"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
OUTPUTS = {"ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com", "Region": "eu-west-1"}


@pytest.fixture
def cfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def deployer(client: Any) -> StackDeployer:
    return StackDeployer(cloudformation=client, sleep=lambda _: None, poll_seconds=0)


def stack(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": STACK,
                "StackId": STACK_ID,
                "CreationTime": NOW,
                "StackStatus": status,
                **extra,
            }
        ]
    }


def event(n: int, logical_id: str, status: str, reason: str = "", kind: str = "") -> dict[str, Any]:
    item = {
        "StackId": STACK_ID,
        "EventId": f"e{n}",
        "StackName": STACK,
        "LogicalResourceId": logical_id,
        "ResourceType": kind or ("AWS::CloudFormation::Stack" if logical_id == STACK else "T"),
        "Timestamp": NOW,
        "ResourceStatus": status,
    }
    if reason:
        item["ResourceStatusReason"] = reason
    return item


def events(*items: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation lists the newest first.
    return {"StackEvents": list(reversed(items))}


def not_found(stubber: Stubber, name: str = STACK) -> None:
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {name} does not exist",
        expected_params={"StackName": name},
    )


def outputs_list() -> list[dict[str, str]]:
    return [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]


def test_a_first_deploy_creates_through_a_change_set(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    not_found(stubber)
    stubber.add_response(
        "create_change_set",
        {"Id": CHANGE_SET, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": "CREATE",
            "TemplateURL": URL,
            "Parameters": [{"ParameterKey": "AlarmEmail", "ParameterValue": "me@example.com"}],
            "Capabilities": list(CAPABILITIES),
            "Tags": [{"Key": "app", "Value": "mobile-backup"}],
            "Description": ANY,
        },
    )
    stubber.add_response(
        "describe_change_set",
        {"Status": "CREATE_IN_PROGRESS", "ChangeSetId": CHANGE_SET},
        {"ChangeSetName": CHANGE_SET},
    )
    stubber.add_response(
        "describe_change_set",
        {
            "Status": "CREATE_COMPLETE",
            "Changes": [{"Type": "Resource"}] * 2,
            "NextToken": "page2",
        },
        {"ChangeSetName": CHANGE_SET},
    )
    stubber.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource"}]},
        {"ChangeSetName": CHANGE_SET, "NextToken": "page2"},
    )
    # Before executing: the review-state event exists already and must not be replayed.
    review = event(0, STACK, "REVIEW_IN_PROGRESS")
    stubber.add_response("describe_stack_events", events(review), {"StackName": STACK_ID})
    stubber.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    progress = [
        review,
        event(1, STACK, "CREATE_IN_PROGRESS"),
        event(2, "LedgerTable", "CREATE_IN_PROGRESS"),
    ]
    stubber.add_response("describe_stack_events", events(*progress), {"StackName": STACK_ID})
    stubber.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"), {"StackName": STACK_ID})
    done = [
        *progress,
        event(3, "LedgerTable", "CREATE_COMPLETE"),
        event(4, STACK, "CREATE_COMPLETE"),
    ]
    stubber.add_response("describe_stack_events", events(*done), {"StackName": STACK_ID})
    stubber.add_response(
        "describe_stacks",
        stack("CREATE_COMPLETE", Outputs=outputs_list()),
        {"StackName": STACK_ID},
    )
    seen: list[StackEvent] = []
    planned: list[int] = []
    result = deployer(client).deploy(
        stack_name=STACK,
        template_url=URL,
        parameters={"AlarmEmail": "me@example.com"},
        tags={"app": "mobile-backup"},
        on_event=seen.append,
        on_plan=planned.append,
    )
    assert result.changed
    assert (result.status, result.stack_id, result.planned) == ("CREATE_COMPLETE", STACK_ID, 3)
    assert result.outputs == OUTPUTS
    assert planned == [3]
    assert [(e.logical_id, e.status) for e in seen] == [
        (STACK, "CREATE_IN_PROGRESS"),
        ("LedgerTable", "CREATE_IN_PROGRESS"),
        ("LedgerTable", "CREATE_COMPLETE"),
        (STACK, "CREATE_COMPLETE"),
    ]
    assert seen[0].is_stack
    assert not seen[1].is_stack


def _update_prelude(stubber: Stubber, *, change_set_type: str = "UPDATE") -> None:
    stubber.add_response(
        "describe_stacks",
        stack(
            "UPDATE_COMPLETE",
            Parameters=[
                {"ParameterKey": "AlarmEmail", "ParameterValue": "me@example.com"},
                {"ParameterKey": "RetentionDays", "ParameterValue": "30"},
            ],
            Outputs=outputs_list(),
        ),
        {"StackName": STACK},
    )
    stubber.add_response(
        "create_change_set",
        {"Id": CHANGE_SET, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": change_set_type,
            "TemplateURL": URL,
            # Given values are sent; the others keep what the stack has.
            "Parameters": [
                {"ParameterKey": "RetentionDays", "ParameterValue": "60"},
                {"ParameterKey": "AlarmEmail", "UsePreviousValue": True},
            ],
            "Capabilities": list(CAPABILITIES),
            "Tags": [],
            "Description": ANY,
        },
    )


def test_an_unchanged_stack_is_reported_up_to_date(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    _update_prelude(stubber)
    stubber.add_response(
        "describe_change_set",
        {
            "Status": "FAILED",
            "StatusReason": "The submitted information didn't contain changes. Submit "
            "different information to create a change set.",
        },
        {"ChangeSetName": CHANGE_SET},
    )
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stubber.add_response(
        "describe_stacks", stack("UPDATE_COMPLETE", Outputs=outputs_list()), {"StackName": STACK}
    )
    result = deployer(client).deploy(
        stack_name=STACK, template_url=URL, parameters={"RetentionDays": "60"}
    )
    assert not result.changed
    assert result.outputs == OUTPUTS
    assert result.status == "UPDATE_COMPLETE"


def test_a_refused_change_set_is_one_line(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    _update_prelude(stubber)
    reason = "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application"
    stubber.add_response(
        "describe_change_set",
        {"Status": "FAILED", "StatusReason": reason},
        {"ChangeSetName": CHANGE_SET},
    )
    with pytest.raises(DeployError, match="refused the change set: Transform"):
        deployer(client).deploy(
            stack_name=STACK, template_url=URL, parameters={"RetentionDays": "60"}
        )


def test_a_rollback_names_the_first_failure_not_the_cancellations(
    cfn: tuple[Any, Stubber],
) -> None:
    client, stubber = cfn
    _update_prelude(stubber)
    stubber.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource"}]},
        {"ChangeSetName": CHANGE_SET},
    )
    stubber.add_response("describe_stack_events", events(), {"StackName": STACK_ID})
    stubber.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stubber.add_response(
        "describe_stack_events",
        events(
            event(1, STACK, "UPDATE_IN_PROGRESS"),
            event(2, "Other", "UPDATE_FAILED", "Resource update cancelled"),
            event(
                3,
                "MonthlyCostBudget",
                "UPDATE_FAILED",
                "Access denied for budgets:ModifyBudget",
                "AWS::Budgets::Budget",
            ),
            event(4, STACK, "UPDATE_ROLLBACK_COMPLETE"),
        ),
        {"StackName": STACK_ID},
    )
    stubber.add_response(
        "describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID}
    )
    with pytest.raises(DeployError) as caught:
        deployer(client).deploy(
            stack_name=STACK, template_url=URL, parameters={"RetentionDays": "60"}
        )
    assert str(caught.value) == (
        "the stack ended UPDATE_ROLLBACK_COMPLETE: MonthlyCostBudget (AWS::Budgets::Budget): "
        "Access denied for budgets:ModifyBudget"
    )


def test_a_busy_stack_is_refused(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    with pytest.raises(DeployError, match="busy"):
        deployer(client).deploy(stack_name=STACK, template_url=URL)


def test_a_failed_first_create_is_deleted_before_creating_again(
    cfn: tuple[Any, Stubber],
) -> None:
    client, stubber = cfn
    stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    # delete(): describe, snapshot, delete, wait.
    stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    stubber.add_response("describe_stack_events", events(), {"StackName": STACK_ID})
    stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stubber.add_response(
        "describe_stack_events", events(event(1, STACK, "DELETE_COMPLETE")), {"StackName": STACK_ID}
    )
    stubber.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    stubber.add_response(
        "create_change_set",
        {"Id": CHANGE_SET, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": "CREATE",
            "TemplateURL": URL,
            "Parameters": [],
            "Capabilities": list(CAPABILITIES),
            "Tags": [],
            "Description": ANY,
        },
    )
    stubber.add_response(
        "describe_change_set",
        {"Status": "FAILED", "StatusReason": "Requires capabilities : [CAPABILITY_NAMED_IAM]"},
        {"ChangeSetName": CHANGE_SET},
    )
    with pytest.raises(DeployError, match="CAPABILITY_NAMED_IAM"):
        deployer(client).deploy(stack_name=STACK, template_url=URL)


def test_delete_waits_for_delete_complete(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    stubber.add_response(
        "describe_stack_events", events(event(0, STACK, "UPDATE_COMPLETE")), {"StackName": STACK_ID}
    )
    stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stubber.add_response(
        "describe_stack_events",
        events(event(0, STACK, "UPDATE_COMPLETE"), event(1, STACK, "DELETE_IN_PROGRESS")),
        {"StackName": STACK_ID},
    )
    stubber.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": STACK_ID})
    stubber.add_response(
        "describe_stack_events",
        events(event(1, STACK, "DELETE_IN_PROGRESS"), event(2, STACK, "DELETE_COMPLETE")),
        {"StackName": STACK_ID},
    )
    stubber.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    seen: list[str] = []
    assert deployer(client).delete(stack_name=STACK, on_event=lambda e: seen.append(e.status))
    assert seen == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]


def test_deleting_a_missing_stack_does_nothing(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    not_found(stubber)
    assert deployer(client).delete(stack_name=STACK) is False


def test_waiting_gives_up_after_the_time_limit(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    clock = iter([0.0, 10.0, 99999.0])
    slow = StackDeployer(
        cloudformation=client,
        sleep=lambda _: None,
        clock=lambda: next(clock),
        timeout_seconds=60,
    )
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    stubber.add_response("describe_stack_events", events(), {"StackName": STACK_ID})
    stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stubber.add_response("describe_stack_events", events(), {"StackName": STACK_ID})
    stubber.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": STACK_ID})
    stubber.add_response("describe_stack_events", events(), {"StackName": STACK_ID})
    stubber.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": STACK_ID})
    with pytest.raises(DeployError, match="time limit"):
        slow.delete(stack_name=STACK)


def test_retained_resources_are_listed_before_a_delete(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    ids = retained_logical_ids(load_template())
    # The access-log bucket exists only with `deploy --access-logs`; the others always.
    assert set(ids) == {"MediaBucket", "LedgerTable", "UserPool", "AccessLogBucket"}
    made = [lid for lid in ids if lid != "AccessLogBucket"]
    summaries = [
        {
            "LogicalResourceId": lid,
            "PhysicalResourceId": f"phys-{lid}",
            "ResourceType": "T",
            "LastUpdatedTimestamp": NOW,
            "ResourceStatus": "CREATE_COMPLETE",
        }
        for lid in [*made, "ApiFunction"]
    ]
    stubber.add_response(
        "list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": STACK}
    )
    found = deployer(client).resources(STACK, ids)
    assert {(r.logical_id, r.physical_id) for r in found} == {(lid, f"phys-{lid}") for lid in made}


def test_errors_are_translated_at_the_boundary(cfn: tuple[Any, Stubber]) -> None:
    client, stubber = cfn
    stubber.add_client_error(
        "describe_stacks", service_error_code="AccessDenied", service_message="not allowed"
    )
    with pytest.raises(
        AccessDeniedError, match=r"could not read stack mobile-backup: .*not allowed"
    ):
        deployer(client).describe(STACK)
    stubber.add_client_error(
        "describe_stacks", service_error_code="ExpiredToken", service_message="expired"
    )
    with pytest.raises(NoCredentialsError, match="expired or invalid"):
        deployer(client).describe(STACK)


def test_missing_credentials_say_what_to_do() -> None:
    from botocore.exceptions import NoCredentialsError as BotoNoCredentials

    with pytest.raises(NoCredentialsError, match="aws configure") as caught, translate("x"):
        raise BotoNoCredentials()
    assert caught.value.code == "no_credentials"


def test_functions_get_the_uploaded_code_and_the_template_is_untouched() -> None:
    template = load_template()
    before = copy.deepcopy(template)
    prepared = with_code_location(template, bucket="b", key="lambda/k.zip")
    assert template == before
    functions = [r for r in prepared["Resources"].values() if "Serverless::Function" in r["Type"]]
    assert len(functions) == 2
    assert all(
        f["Properties"]["CodeUri"] == {"Bucket": "b", "Key": "lambda/k.zip"} for f in functions
    )
    with pytest.raises(DeployError, match="no AWS::Serverless::Function"):
        with_code_location({"Resources": {}}, bucket="b", key="k")


@pytest.mark.parametrize("name", ["mobile-backup", "mb", "home-photos-2"])
def test_good_stack_names(name: str) -> None:
    assert check_stack_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Mobile-Backup", "1backup", "a_b", "x" * 26, "trailing-", "mobile backup"]
)
def test_stack_names_that_cannot_name_buckets_are_refused(name: str) -> None:
    with pytest.raises(InvalidStackNameError, match="lowercase"):
        check_stack_name(name)


@pytest.mark.parametrize(
    ("limit", "reserved"),
    [(1000, 20), (140, 20), (139, 0), (10, 0)],
)
def test_concurrency_is_reserved_only_where_the_accounts_quota_leaves_room(
    limit: int, reserved: int
) -> None:
    """A new account's quota is often 10: reserving any would fail the whole deploy."""
    import boto3

    from mobile_backup.deploy import reserved_concurrency

    lam = boto3.client("lambda", region_name="eu-west-1")
    with Stubber(lam) as stub:
        stub.add_response(
            "get_account_settings",
            {
                "AccountLimit": {
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": limit,
                }
            },
        )
        chosen = reserved_concurrency(lam)
        stub.assert_no_pending_responses()
    assert chosen.per_function == reserved
    assert (str(limit) in chosen.reason) == (reserved == 0)
