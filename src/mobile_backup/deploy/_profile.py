"""Turn the stack's outputs into the profile the client, the agent and the app read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mobile_backup.core import write_profile
from mobile_backup.deploy.exceptions import DeployError

__all__ = ["OUTPUT_SETTINGS", "STACK_NAME_KEY", "profile_values", "write_deploy_profile"]

# Stack output → Settings field. Every field a deployed client or agent needs is here.
OUTPUT_SETTINGS: dict[str, str] = {
    "ApiUrl": "api_url",
    "Region": "region",
    "UserPoolId": "user_pool_id",
    "UserPoolClientId": "client_id",
    "BucketName": "bucket",
    "TableName": "table",
    "EventsQueueUrl": "events_queue_url",
    "DownloadsQueueUrl": "downloads_queue_url",
}
# Kept beside the settings (Settings ignores it) so `deploy --delete` knows what to remove.
STACK_NAME_KEY = "stack_name"


def profile_values(
    outputs: Mapping[str, str], *, stack_name: str, aws_profile: str | None = None
) -> dict[str, object]:
    """The profile of a deployed stack.

    `aws_profile` is the boto3 profile the PC agent signs with (one bound to the stack's
    AgentPolicy); without it the agent uses boto3's default chain.
    """
    missing = sorted(set(OUTPUT_SETTINGS) - set(outputs))
    if missing:
        raise DeployError(f"the stack has no output(s) {', '.join(missing)}; is it this template?")
    values: dict[str, object] = {field: outputs[key] for key, field in OUTPUT_SETTINGS.items()}
    values["local"] = False
    values[STACK_NAME_KEY] = stack_name
    if aws_profile:
        values["aws_profile"] = aws_profile
    return values


def write_deploy_profile(
    name: str,
    outputs: Mapping[str, str],
    *,
    stack_name: str,
    aws_profile: str | None = None,
    path: Path | None = None,
) -> Path:
    """Write (or replace) profile `name` for the deployed stack; returns the config file."""
    return write_profile(
        name, profile_values(outputs, stack_name=stack_name, aws_profile=aws_profile), path
    )
