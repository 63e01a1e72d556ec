"""S3 as it answers a caller without `s3:ListBucket`: 403, not 404, for a missing key.

The emulator always answers 404; on AWS a role that may not list the bucket gets 403 for a
key that does not exist (so it cannot probe for keys). `forbid_missing(client)` makes a
boto3 S3 client see AWS's answer: GET and HEAD of a missing key fail with 403 before the
request is sent; everything else, listing included, reaches the emulator unchanged.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError


def forbid_missing(client: Any) -> list[str]:
    """Install the 403 behaviour on `client`; returns the keys it answered 403 for."""
    meta = client.meta
    probe = boto3.session.Session().client(
        "s3",
        endpoint_url=meta.endpoint_url,
        region_name=meta.region_name,
        config=meta.config,
    )
    forbidden: list[str] = []

    def on_call(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        bucket, key = context["input_params"]["Bucket"], context["input_params"]["Key"]
        try:
            probe.head_object(Bucket=bucket, Key=key)
        except ClientError:
            forbidden.append(key)
            code = "403" if model.name == "HeadObject" else "AccessDenied"
            response = AWSResponse(params["url"], 403, HTTPHeaders(), None)
            return response, {
                "Error": {"Code": code, "Message": "Forbidden"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
        return None

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["input_params"] = dict(params)

    for op in ("GetObject", "HeadObject"):
        client.meta.events.register(f"before-parameter-build.s3.{op}", remember)
        client.meta.events.register(f"before-call.s3.{op}", on_call)
    return forbidden
