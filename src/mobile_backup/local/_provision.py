"""Create the template's resources on the emulator, from the template itself.

`infra/template.yaml` is the source of truth: bucket settings, queue attributes and redrive,
table keys and indexes, the user pool and its client are read from the parsed template and
translated from CloudFormation's property shapes to the API calls that create them. The
serverless parts (HTTP API, functions) are not provisioned: the local stack runs the same
handlers in-process.

This module holds the public entry points and the order of creation; one module per service
translates that service's resources (`_provision_s3`, `_provision_sqs`, `_provision_dynamodb`,
`_provision_cognito`), all working on the run's state in `_provision_stack`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import AwsFailure, AwsRefusedError, aws_call
from mobile_backup.core import ServiceError
from mobile_backup.infra import TemplateError, load_template
from mobile_backup.local._provision_cognito import (
    provision_user_pool,
    provision_user_pool_client,
)
from mobile_backup.local._provision_dynamodb import provision_table
from mobile_backup.local._provision_s3 import provision_bucket
from mobile_backup.local._provision_sqs import provision_queue, provision_queue_policy
from mobile_backup.local._provision_stack import Stack, client

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

__all__ = ["LocalResources", "ProvisionError", "create_user", "provision"]

logger = logging.getLogger(__name__)

# Logical IDs in infra/template.yaml that the rest of the system addresses.
BUCKET_ID = "MediaBucket"
TABLE_ID = "LedgerTable"
EVENTS_QUEUE_ID = "EventsQueue"
EVENTS_DLQ_ID = "EventsDLQ"
DOWNLOADS_QUEUE_ID = "DownloadsQueue"
DOWNLOADS_DLQ_ID = "DownloadsDLQ"
USER_POOL_ID = "UserPool"
USER_POOL_CLIENT_ID = "UserPoolClient"

# Resource types that exist in the template but not in the local stack, and why.
_NOT_PROVISIONED = {
    # Runs in-process locally (uvicorn + the ingest poller call the same handlers).
    "AWS::Serverless::Function": "runs in-process",
    "AWS::Serverless::HttpApi": "runs in-process",
    "AWS::Lambda::Function": "runs in-process",
    "AWS::Lambda::EventSourceMapping": "the local ingest poller reads the queue",
    # The only bucket policy denies plain HTTP; the emulator speaks plain HTTP on loopback.
    "AWS::S3::BucketPolicy": "TLS-only policy; the emulator is plain HTTP on loopback",
    # Operations guardrails: nothing in the data path reads them, and the local stack has
    # no metrics to alarm on, no bill to budget and logs on the console.
    "AWS::Logs::LogGroup": "local logs go to the console",
    "AWS::CloudWatch::Alarm": "no CloudWatch metrics locally",
    "AWS::CloudWatch::Dashboard": "no CloudWatch metrics locally",
    "AWS::SNS::Topic": "alarm notifications only; no alarms locally",
    "AWS::SNS::Subscription": "alarm notifications only; no alarms locally",
    "AWS::Budgets::Budget": "the local stack costs nothing",
    "AWS::KMS::Key": "encrypts the alarm topic; no alarms locally",
}
_NOT_PROVISIONED_PREFIXES = ("AWS::IAM::",)  # the emulator does not enforce IAM


class ProvisionError(ServiceError):
    """The emulator refused to create or configure a resource."""

    code = "provision_failed"


@dataclass(frozen=True)
class LocalResources:
    """Names and URLs of one provisioned local stack.

    Note that, as on AWS, configuring the bucket notification puts one `s3:TestEvent`
    message on the events queue.
    """

    stack_name: str
    region: str
    endpoint_url: str
    bucket: str
    table: str
    events_queue_url: str
    events_dlq_url: str
    downloads_queue_url: str
    downloads_dlq_url: str
    user_pool_id: str
    client_id: str
    dynamodb_endpoint_url: str | None = None


def provision(
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    stack_name: str = "mobile-backup-local",
    template: dict[str, Any] | None = None,
    parameters: dict[str, str] | None = None,
    dynamodb_endpoint_url: str | None = None,
) -> LocalResources:
    """Create (or bring up to date) the template's resources on the emulator.

    Calling it again with the same stack name reuses what exists and re-applies the
    configuration, so it is safe to run on every `local up`. `dynamodb_endpoint_url` puts
    the tables on a DynamoDB of their own (dynalite, for tests and benchmarks).
    """
    tpl = template if template is not None else load_template()
    try:
        with aws_call(f"provision the local stack {stack_name!r} at {endpoint_url}"):
            stack = Stack(
                tpl,
                endpoint_url=endpoint_url,
                region=region,
                stack_name=stack_name,
                parameters=parameters or {},
                dynamodb_endpoint_url=dynamodb_endpoint_url,
            )
            _create_all(stack)
    except AwsFailure as exc:
        raise ProvisionError(str(exc)) from exc
    return LocalResources(
        stack_name=stack_name,
        region=region,
        endpoint_url=endpoint_url,
        bucket=stack.ref(BUCKET_ID),
        table=stack.ref(TABLE_ID),
        events_queue_url=stack.ref(EVENTS_QUEUE_ID),
        events_dlq_url=stack.ref(EVENTS_DLQ_ID),
        downloads_queue_url=stack.ref(DOWNLOADS_QUEUE_ID),
        downloads_dlq_url=stack.ref(DOWNLOADS_DLQ_ID),
        user_pool_id=stack.ref(USER_POOL_ID),
        client_id=stack.ref(USER_POOL_CLIENT_ID),
        dynamodb_endpoint_url=dynamodb_endpoint_url,
    )


def create_user(resources: LocalResources, *, email: str, password: str) -> str:
    """Add a confirmed user with a permanent password; returns the user's `sub`.

    As on AWS, only an administrator adds users (the pool allows no self sign-up). If the
    user exists, the password is reset to `password` and the existing `sub` returned.
    """
    idp: CognitoIdentityProviderClient = client(
        "cognito-idp", resources.endpoint_url, resources.region
    )
    doing = f"create the user {email}"
    try:
        try:
            with aws_call(doing):
                idp.admin_create_user(
                    UserPoolId=resources.user_pool_id,
                    Username=email,
                    UserAttributes=[
                        {"Name": "email", "Value": email},
                        {"Name": "email_verified", "Value": "true"},
                    ],
                    MessageAction="SUPPRESS",
                )
        except AwsRefusedError as exc:
            if exc.aws_code != "UsernameExistsException":
                raise
            logger.debug("user %s exists; resetting the password", email)
        with aws_call(doing):
            idp.admin_set_user_password(
                UserPoolId=resources.user_pool_id, Username=email, Password=password, Permanent=True
            )
            user = idp.admin_get_user(UserPoolId=resources.user_pool_id, Username=email)
    except AwsFailure as exc:
        raise ProvisionError(str(exc)) from exc
    for attribute in user.get("UserAttributes", []):
        if attribute["Name"] == "sub":
            return attribute["Value"]
    raise ProvisionError(f"the emulator returned no sub for {email}")


# Resource type → the function that creates one resource of it.
_HANDLERS: dict[str, Callable[[Stack, str], None]] = {
    "AWS::SQS::Queue": provision_queue,
    "AWS::SQS::QueuePolicy": provision_queue_policy,
    "AWS::DynamoDB::Table": provision_table,
    "AWS::S3::Bucket": provision_bucket,
    "AWS::Cognito::UserPool": provision_user_pool,
    "AWS::Cognito::UserPoolClient": provision_user_pool_client,
}


def _create_all(stack: Stack) -> None:
    """Check that every resource has a local equivalent, then create them in dependency order."""
    resources = stack.resources
    for logical_id, resource in resources.items():
        kind = resource.get("Type", "")
        if kind in _HANDLERS:
            continue
        if kind.startswith(_NOT_PROVISIONED_PREFIXES):
            logger.debug("not provisioning %s: the emulator does not enforce IAM", logical_id)
        elif kind in _NOT_PROVISIONED:
            logger.debug("not provisioning %s: %s", logical_id, _NOT_PROVISIONED[kind])
        else:
            raise TemplateError(f"{logical_id} ({kind}) has no local equivalent")
    # Queues without a redrive policy (the DLQs) first: the others point at their ARNs.
    queues = sorted(
        stack.of_type("AWS::SQS::Queue"),
        key=lambda lid: "RedrivePolicy" in (resources[lid].get("Properties") or {}),
    )
    # Buckets that log elsewhere last: the bucket they log to must exist.
    buckets = sorted(
        stack.of_type("AWS::S3::Bucket"),
        key=lambda lid: "LoggingConfiguration" in (resources[lid].get("Properties") or {}),
    )
    order = [
        *queues,
        *stack.of_type("AWS::SQS::QueuePolicy"),
        *stack.of_type("AWS::DynamoDB::Table"),
        *buckets,
        *stack.of_type("AWS::Cognito::UserPool"),
        *stack.of_type("AWS::Cognito::UserPoolClient"),
    ]
    for logical_id in order:
        _HANDLERS[resources[logical_id]["Type"]](stack, logical_id)
        logger.debug("provisioned %s", logical_id)
