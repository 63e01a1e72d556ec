"""Gateways to AWS: the only code that calls boto3 for the bucket and the queues, the client
factory (each client built for a named component), and the one boundary where botocore's
errors become ours (`_boundary.py`: one table of codes). The ledger table's gateway is the
`ledger` package, built on the same boundary.
"""

from __future__ import annotations

from mobile_backup.aws._boundary import (
    AccessDeniedError,
    AwsFailure,
    AwsNotFoundError,
    AwsRefusedError,
    AwsServiceError,
    ConditionFailedError,
    CredentialsError,
    NotAuthorizedError,
    ThrottledError,
    aws_call,
)
from mobile_backup.aws._clients import (
    admin_session,
    cognito_client,
    dynamodb_client,
    s3_client,
    sqs_client,
)
from mobile_backup.aws._objects import Bucket, HeldPart, MultipartUploadInfo, ObjectStream
from mobile_backup.aws._queues import BatchResult, Handle, Queue, QueueCounts

__all__ = [
    "AccessDeniedError",
    "AwsFailure",
    "AwsNotFoundError",
    "AwsRefusedError",
    "AwsServiceError",
    "BatchResult",
    "Bucket",
    "ConditionFailedError",
    "CredentialsError",
    "Handle",
    "HeldPart",
    "MultipartUploadInfo",
    "NotAuthorizedError",
    "ObjectStream",
    "Queue",
    "QueueCounts",
    "ThrottledError",
    "admin_session",
    "aws_call",
    "cognito_client",
    "dynamodb_client",
    "s3_client",
    "sqs_client",
]
