"""The artifacts bucket: where the Lambda zip and the template wait for CloudFormation.

It has to exist before the stack (CloudFormation reads the code from it), so it is made with
plain S3 calls rather than by the template, with the same guardrails as the media bucket:
private, encrypted, TLS-only, owner-enforced. Old artifacts expire after 90 days; a rollback
needs only the last few. `deploy --delete` empties and removes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import AccessDeniedError, AwsNotFoundError
from mobile_backup.deploy._errors import translate
from mobile_backup.deploy.exceptions import DeployError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["ArtifactStore", "artifacts_bucket_name"]

logger = logging.getLogger(__name__)

ARTIFACT_RETENTION_DAYS = 90


def artifacts_bucket_name(stack_name: str, account: str, region: str) -> str:
    """One per stack, account and region (bucket names are global)."""
    return f"{stack_name}-artifacts-{account}-{region}"


class ArtifactStore:
    """Create, fill and remove one artifacts bucket."""

    def __init__(
        self, *, s3: S3Client, bucket: str, region: str, tls_only: bool | None = None
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.region = region
        # The TLS-only policy locks out a plain-HTTP endpoint (the emulator on loopback), as
        # it should: apply it wherever the endpoint speaks TLS, which AWS always does.
        endpoint = str(getattr(s3.meta, "endpoint_url", "") or "https://")
        self.tls_only = endpoint.startswith("https://") if tls_only is None else tls_only

    def ensure(self) -> bool:
        """Create the bucket if needed and (re)apply its settings; True if it was created."""
        created = False
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        # us-east-1 is the one region that refuses an explicit location constraint.
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with translate(f"create the artifacts bucket {self.bucket}"):
            # Asked first: us-east-1 answers "created" for a bucket one already owns.
            if not self._owned():
                try:
                    self._s3.create_bucket(**kwargs)
                    created = True
                except self._s3.exceptions.BucketAlreadyOwnedByYou:
                    logger.debug("artifacts bucket %s exists", self.bucket)
            self._s3.put_public_access_block(
                Bucket=self.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            self._s3.put_bucket_encryption(
                Bucket=self.bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
            if self.tls_only:
                self._s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(self.policy()))
            self._s3.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "expire-old-artifacts",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "Expiration": {"Days": ARTIFACT_RETENTION_DAYS},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        }
                    ]
                },
            )
        return created

    def _owned(self) -> bool:
        """Whether the bucket exists and is ours; a name someone else holds is an error."""
        try:
            with translate(f"look up the artifacts bucket {self.bucket}"):
                self._s3.head_bucket(Bucket=self.bucket)
        except AwsNotFoundError:
            return False
        except AccessDeniedError as exc:
            raise DeployError(
                f"the bucket name {self.bucket} belongs to another AWS account; "
                "choose another --stack-name"
            ) from exc
        return True

    def policy(self) -> dict[str, Any]:
        """Deny every request that does not use TLS."""
        arn = f"arn:aws:s3:::{self.bucket}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }

    def exists(self, key: str) -> bool:
        """Whether `key` is already stored (content-addressed keys need no second upload)."""
        try:
            with translate(f"check s3://{self.bucket}/{key}"):
                self._s3.head_object(Bucket=self.bucket, Key=key)
        except AwsNotFoundError:
            return False
        return True

    def upload_file(self, path: Path, key: str) -> bool:
        """Upload `path` unless `key` exists; True if bytes were sent."""
        if self.exists(key):
            logger.info("s3://%s/%s is already uploaded", self.bucket, key)
            return False
        with translate(f"upload {path.name} to s3://{self.bucket}/{key}"):
            self._s3.upload_file(str(path), self.bucket, key)
        return True

    def upload_template(self, template: Mapping[str, Any], key: str) -> str:
        """Store the template; returns the HTTPS URL CloudFormation reads it from.

        Templates go through S3 rather than in the request: the request body is limited to
        51,200 bytes, the template (with its dashboard) comes close.
        """
        body = json.dumps(template, indent=1, sort_keys=False).encode("utf-8")
        with translate(f"upload the template to s3://{self.bucket}/{key}"):
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        return self.url(key)

    def url(self, key: str) -> str:
        """The regional virtual-hosted URL of an object."""
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    def empty_and_delete(self) -> int:
        """Delete every object and the bucket; returns how many objects went. Gone is fine."""
        deleted = 0
        try:
            with translate(f"remove the artifacts bucket {self.bucket}"):
                paginator = self._s3.get_paginator("list_objects_v2")
                for page in paginator.paginate(Bucket=self.bucket):
                    keys: list[Any] = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                    if keys:
                        self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                        deleted += len(keys)
                self._s3.delete_bucket(Bucket=self.bucket)
        except AwsNotFoundError:
            pass  # gone already: what we wanted
        return deleted
