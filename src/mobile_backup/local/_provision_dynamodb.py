"""The template's DynamoDB tables on the emulator: keys, indexes, encryption, PITR and TTL."""

from __future__ import annotations

import logging
from typing import Any

from mobile_backup.local._provision_stack import Stack, pick

__all__ = ["provision_table"]

logger = logging.getLogger(__name__)

_TABLE_PROPERTIES = {
    "AttributeDefinitions",
    "BillingMode",
    "DeletionProtectionEnabled",
    "GlobalSecondaryIndexes",
    "KeySchema",
    "LocalSecondaryIndexes",
    "PointInTimeRecoverySpecification",
    "ProvisionedThroughput",
    "SSESpecification",
    "StreamSpecification",
    "TableName",
    "Tags",
    "TimeToLiveSpecification",
}

# Properties whose CloudFormation shape is already the CreateTable request's.
_CREATE_TABLE_AS_IS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "DeletionProtectionEnabled",
)


def provision_table(stack: Stack, logical_id: str) -> None:
    """Create an `AWS::DynamoDB::Table` (or reuse it), then apply PITR and TTL."""
    props = stack.props(logical_id)
    pick(props, "AWS::DynamoDB::Table", _TABLE_PROPERTIES)
    name = props.get("TableName") or f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    request: dict[str, Any] = {"TableName": name}
    for key in _CREATE_TABLE_AS_IS:
        if key in props:
            request[key] = props[key]
    if "SSESpecification" in props:
        sse = props["SSESpecification"]
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
        for key in ("SSEType", "KMSMasterKeyId"):
            if key in sse:
                request["SSESpecification"][key] = sse[key]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    ddb = stack.ddb
    try:
        ddb.create_table(**request)
    except ddb.exceptions.ResourceInUseException:
        logger.debug("table %s exists", name)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr is not None:
        _unless_unknown(
            ddb.update_continuous_backups,
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
            },
        )
    ttl = props.get("TimeToLiveSpecification")
    if ttl is not None and ttl.get("Enabled"):
        _unless_unknown(
            ddb.update_time_to_live,
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    stack.refs[logical_id] = name
    stack.attrs[f"{logical_id}.Arn"] = arn


def _unless_unknown(operation: Any, **request: Any) -> None:
    """Call `operation`, unless this DynamoDB does not implement it: dynalite (the second
    DynamoDB of the ledger's tests) has neither point-in-time recovery nor TTL, which no local
    behaviour depends on."""
    from mobile_backup.aws import AwsFailure, aws_call

    try:
        with aws_call("configure the table"):
            operation(**request)
    except AwsFailure as exc:
        if exc.aws_code != "UnknownOperationException":
            raise
        logger.debug("not implemented by this DynamoDB: %s", exc)
