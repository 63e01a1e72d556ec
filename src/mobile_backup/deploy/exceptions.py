"""Errors of deploying to AWS.

    MobileBackupError (core)
    ├── ConfigError (core) ── CredentialsError (aws)
    │   └── NoCredentialsError     no_credentials: no AWS credentials, or expired ones
    ├── InvalidInputError (core)
    │   └── InvalidStackNameError  invalid_stack_name: not usable in bucket names
    └── ServiceError (core)
        ├── BuildError             build_failed: the Lambda artifact could not be built
        └── AwsServiceError (aws)
            └── DeployError        deploy_failed: an AWS call refused, or the stack rolled back

Each message is one line a person can act on; botocore's errors are translated where they
are caught (`raise ... from exc`).
"""

from __future__ import annotations

from mobile_backup.aws import AwsServiceError, CredentialsError
from mobile_backup.core import InvalidInputError, ServiceError

__all__ = ["BuildError", "DeployError", "InvalidStackNameError", "NoCredentialsError"]


class BuildError(ServiceError):
    """pip could not assemble the Lambda package, or the package breaks a Lambda limit."""

    code = "build_failed"


class DeployError(AwsServiceError):
    """CloudFormation, S3 or Cognito refused a call, or the stack did not reach its goal."""

    code = "deploy_failed"


class NoCredentialsError(CredentialsError):
    """boto3's credential chain found nothing to sign with."""

    code = "no_credentials"


class InvalidStackNameError(InvalidInputError):
    """A stack name that cannot be part of the bucket names the template builds from it."""

    code = "invalid_stack_name"
