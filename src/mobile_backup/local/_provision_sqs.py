"""The template's SQS queues and queue policies on the emulator."""

from __future__ import annotations

import json
from typing import Any

from mobile_backup.local._provision_stack import Stack, flag, pick

__all__ = ["provision_queue", "provision_queue_policy"]

# Queue properties that map one-to-one onto SQS queue attributes.
_QUEUE_ATTRIBUTES = {
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}


def provision_queue(stack: Stack, logical_id: str) -> None:
    """Create an `AWS::SQS::Queue` (or reuse it) and set its attributes."""
    props = stack.props(logical_id)
    pick(props, "AWS::SQS::Queue", {*_QUEUE_ATTRIBUTES, "QueueName", "Tags"})
    name = props.get("QueueName") or f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    attributes: dict[Any, str] = {}
    for key in _QUEUE_ATTRIBUTES & set(props):
        value = props[key]
        attributes[key] = (
            json.dumps(value, sort_keys=True) if isinstance(value, dict) else flag(value)
        )
    url = stack.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    # create_queue leaves an existing queue's attributes alone; make a re-run converge.
    stack.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.refs[logical_id] = url
    stack.attrs[f"{logical_id}.Arn"] = arn
    stack.attrs[f"{logical_id}.QueueName"] = name
    stack.attrs[f"{logical_id}.QueueUrl"] = url


def provision_queue_policy(stack: Stack, logical_id: str) -> None:
    """Attach an `AWS::SQS::QueuePolicy` to each of its queues."""
    props = stack.props(logical_id)
    pick(props, "AWS::SQS::QueuePolicy", {"Queues", "PolicyDocument"})
    policy = json.dumps(props["PolicyDocument"], sort_keys=True)
    for url in props["Queues"]:
        stack.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    stack.refs[logical_id] = logical_id
