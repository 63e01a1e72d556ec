"""The template's S3 bucket on the emulator: CloudFormation property shapes → S3 API calls.

Encryption, public access block, ownership, versioning, CORS, lifecycle and the event
notifications are applied on every run, so a changed template converges on an existing bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mobile_backup.local._provision_stack import Stack, pick

__all__ = ["provision_bucket"]

logger = logging.getLogger(__name__)

_BUCKET_PROPERTIES = {
    "BucketEncryption",
    "BucketName",
    "CorsConfiguration",
    "LifecycleConfiguration",
    "LoggingConfiguration",
    "NotificationConfiguration",
    "OwnershipControls",
    "PublicAccessBlockConfiguration",
    "Tags",
    "VersioningConfiguration",
}


def provision_bucket(stack: Stack, logical_id: str) -> None:
    """Create an `AWS::S3::Bucket` (or reuse it) and apply its configuration."""
    props = stack.props(logical_id)
    pick(props, "AWS::S3::Bucket", _BUCKET_PROPERTIES)
    name = props.get("BucketName") or f"{stack.pseudo['AWS::StackName']}-{logical_id}".lower()
    s3 = stack.s3
    try:
        if stack.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": stack.region},  # type: ignore[typeddict-item]
            )
    except s3.exceptions.BucketAlreadyOwnedByYou:
        logger.debug("bucket %s exists", name)
    stack.refs[logical_id] = name
    stack.attrs[f"{logical_id}.Arn"] = f"arn:{stack.pseudo['AWS::Partition']}:s3:::{name}"
    stack.attrs[f"{logical_id}.DomainName"] = f"{name}.s3.amazonaws.com"

    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration=_encryption(props["BucketEncryption"]),
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
        )
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(Bucket=name, CORSConfiguration=_cors(props["CorsConfiguration"]))
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration=_lifecycle(props["LifecycleConfiguration"])
        )
    if "LoggingConfiguration" in props:
        logging_cfn = props["LoggingConfiguration"]
        pick(logging_cfn, "AWS::S3::Bucket LoggingConfiguration",
             {"DestinationBucketName", "LogFilePrefix"})  # fmt: skip
        s3.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging_cfn["DestinationBucketName"],
                    "TargetPrefix": logging_cfn.get("LogFilePrefix", ""),
                }
            },
        )
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration=_notifications(props["NotificationConfiguration"]),
        )


def _encryption(cfn: Mapping[str, Any]) -> Any:
    rules = []
    for rule in cfn["ServerSideEncryptionConfiguration"]:
        api: dict[str, Any] = {}
        default = rule.get("ServerSideEncryptionByDefault")
        if default is not None:
            api["ApplyServerSideEncryptionByDefault"] = dict(default)
        if "BucketKeyEnabled" in rule:
            api["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
        rules.append(api)
    return {"Rules": rules}


def _cors(cfn: Mapping[str, Any]) -> Any:
    renames = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return {
        "CORSRules": [
            {renames.get(key, key): value for key, value in rule.items()}
            for rule in cfn["CorsRules"]
        ]
    }


def _lifecycle(cfn: Mapping[str, Any]) -> Any:
    rules = []
    for rule in cfn["Rules"]:
        pick(
            rule,
            "AWS::S3::Bucket lifecycle rule",
            {
                "AbortIncompleteMultipartUpload",
                "ExpirationInDays",
                "Id",
                "NoncurrentVersionExpirationInDays",
                "Prefix",
                "Status",
                "TagFilters",
                "Transitions",
            },
        )
        api: dict[str, Any] = {"Status": rule["Status"]}
        if "Id" in rule:
            api["ID"] = rule["Id"]
        tags = [{"Key": t["Key"], "Value": str(t["Value"])} for t in rule.get("TagFilters", [])]
        prefix = rule.get("Prefix")
        if tags and (len(tags) > 1 or prefix is not None):
            both: dict[str, Any] = {"Tags": tags}
            if prefix is not None:
                both["Prefix"] = prefix
            api["Filter"] = {"And": both}
        elif tags:
            api["Filter"] = {"Tag": tags[0]}
        else:
            api["Filter"] = {"Prefix": prefix or ""}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "Transitions" in rule:
            api["Transitions"] = [
                {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
                for t in rule["Transitions"]
            ]
        if "AbortIncompleteMultipartUpload" in rule:
            days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
        if "NoncurrentVersionExpirationInDays" in rule:
            days = rule["NoncurrentVersionExpirationInDays"]
            api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
        rules.append(api)
    return {"Rules": rules}


def _notifications(cfn: Mapping[str, Any]) -> Any:
    # Lambda and SNS targets would need a local dispatcher; the design uses SQS only.
    pick(cfn, "AWS::S3::Bucket NotificationConfiguration", {"QueueConfigurations"})
    configs = []
    for queue in cfn.get("QueueConfigurations", []):
        api: dict[str, Any] = {"QueueArn": queue["Queue"], "Events": [queue["Event"]]}
        rules = (queue.get("Filter") or {}).get("S3Key", {}).get("Rules", [])
        if rules:
            api["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        configs.append(api)
    return {"QueueConfigurations": configs}
