"""Create, update and delete the stack through a CloudFormation change set, and wait for it.

A change set (rather than `create_stack`/`update_stack`) is what `sam deploy` uses too: the
SAM transform is applied while it is created, so a template CloudFormation cannot expand
fails before anything changes, and "nothing to do" is an answer rather than an error.

Progress is reported as `StackEvent`s to an optional callback; the clock and the sleep are
injected so tests run without waiting.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mobile_backup.deploy._errors import translate
from mobile_backup.deploy.exceptions import DeployError, InvalidStackNameError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

__all__ = [
    "CAPABILITIES",
    "DeployResult",
    "RetainedResource",
    "StackDeployer",
    "StackEvent",
    "check_stack_name",
    "retained_logical_ids",
    "with_code_location",
]

logger = logging.getLogger(__name__)

# IAM: the template creates roles and a managed policy. AUTO_EXPAND: the SAM transform.
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")
MAX_STACK_NAME = 25

_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_FAILED_CREATE = "ROLLBACK_COMPLETE"


def check_stack_name(name: str) -> str:
    """Refuse names the template cannot turn into bucket names (lowercase, ≤ 25 chars)."""
    import re

    if not re.fullmatch(rf"[a-z][a-z0-9-]{{0,{MAX_STACK_NAME - 1}}}", name) or name.endswith("-"):
        raise InvalidStackNameError(
            f"stack name {name!r} must be 1-{MAX_STACK_NAME} lowercase letters, digits and "
            "hyphens, starting with a letter (it becomes part of S3 bucket names)"
        )
    return name


def with_code_location(template: Mapping[str, Any], *, bucket: str, key: str) -> dict[str, Any]:
    """A copy of `template` whose functions run the zip at `s3://bucket/key`.

    `CodeUri` in the template points at the `sam build` recipe; CloudFormation needs the
    uploaded code instead, and each function's own `CodeUri` overrides the global one.
    """
    prepared = copy.deepcopy(dict(template))
    functions = [
        resource
        for resource in prepared["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    if not functions:
        raise DeployError("the template has no AWS::Serverless::Function to deploy code to")
    for resource in functions:
        resource.setdefault("Properties", {})["CodeUri"] = {"Bucket": bucket, "Key": key}
    return prepared


def retained_logical_ids(template: Mapping[str, Any]) -> list[str]:
    """Resources that outlive the stack (`DeletionPolicy: Retain`): the user's data."""
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("DeletionPolicy") == "Retain"
    ]


@dataclass(frozen=True)
class StackEvent:
    """One line of the stack's event log."""

    event_id: str
    logical_id: str
    resource_type: str
    status: str
    reason: str
    timestamp: datetime | None

    @property
    def is_stack(self) -> bool:
        return self.resource_type == "AWS::CloudFormation::Stack"

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


@dataclass(frozen=True)
class DeployResult:
    """Where a deployment ended."""

    stack_name: str
    stack_id: str
    status: str
    outputs: dict[str, str]
    changed: bool
    planned: int = 0


@dataclass(frozen=True)
class RetainedResource:
    """A resource `deploy --delete` leaves behind on purpose."""

    logical_id: str
    resource_type: str
    physical_id: str


EventSink = Callable[[StackEvent], None]


@dataclass
class _Watch:
    """Events already reported for one stack operation."""

    seen: set[str] = field(default_factory=set)
    failures: list[StackEvent] = field(default_factory=list)


class StackDeployer:
    """Drive one stack with CloudFormation."""

    def __init__(
        self,
        *,
        cloudformation: CloudFormationClient,
        poll_seconds: float = 5.0,
        timeout_seconds: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfn = cloudformation
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._clock = clock

    # Reading ---------------------------------------------------------------------------
    def describe(self, stack_name: str) -> dict[str, Any] | None:
        """The stack's description, or None if there is no such stack."""
        try:
            with translate(f"read stack {stack_name}"):
                stacks = self._cfn.describe_stacks(StackName=stack_name)["Stacks"]
        except DeployError as exc:
            if exc.aws_code == "ValidationError" and "does not exist" in str(exc):
                return None
            raise
        if not stacks:
            return None
        stack: dict[str, Any] = dict(stacks[0])
        return stack

    @staticmethod
    def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    # Deploying -------------------------------------------------------------------------
    def deploy(
        self,
        *,
        stack_name: str,
        template_url: str,
        parameters: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        on_event: EventSink | None = None,
        on_plan: Callable[[int], None] | None = None,
    ) -> DeployResult:
        """Create or update the stack and wait until it settles.

        `parameters` not given keep their previous value on an update (their template
        default on a create). `on_plan` is told how many resources the change set touches.
        """
        existing = self.describe(stack_name)
        if existing is not None:
            status = str(existing["StackStatus"])
            if status == _FAILED_CREATE:
                # A first create that rolled back leaves a stack that can only be deleted.
                logger.info("stack %s is %s; deleting it before creating again", stack_name, status)
                self.delete(stack_name=stack_name, on_event=on_event)
                existing = None
            elif status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
                raise DeployError(
                    f"stack {stack_name} is busy ({status}); wait for it to finish and retry"
                )
        creating = existing is None or existing["StackStatus"] == "REVIEW_IN_PROGRESS"
        previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
        cfn_parameters: list[Any] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()
        ]
        if not creating:
            cfn_parameters += [
                {"ParameterKey": k, "UsePreviousValue": True}
                for k in sorted(previous - set(parameters or {}))
            ]
        name = f"mobile-backup-{uuid.uuid4().hex[:12]}"
        with translate(f"create a change set for {stack_name}"):
            created = self._cfn.create_change_set(
                StackName=stack_name,
                ChangeSetName=name,
                ChangeSetType="CREATE" if creating else "UPDATE",
                TemplateURL=template_url,
                Parameters=cfn_parameters,
                Capabilities=list(CAPABILITIES),  # type: ignore[arg-type]
                Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
                Description="mobile-backup deploy",
            )
        change_set_id = created["Id"]
        stack_id = created.get("StackId", stack_name)
        changes = self._wait_for_change_set(stack_name, change_set_id)
        if changes is None:
            stack = self.describe(stack_name) or {}
            return DeployResult(
                stack_name=stack_name,
                stack_id=str(stack.get("StackId", stack_id)),
                status=str(stack.get("StackStatus", "UNKNOWN")),
                outputs=self.outputs_of(stack),
                changed=False,
            )
        if on_plan is not None:
            on_plan(changes)
        watch = self._snapshot(stack_id)
        with translate(f"execute the change set for {stack_name}"):
            self._cfn.execute_change_set(ChangeSetName=change_set_id)
        stack = self._wait(stack_id, watch, on_event, goal="CREATE" if creating else "UPDATE")
        return DeployResult(
            stack_name=stack_name,
            stack_id=str(stack.get("StackId", stack_id)),
            status=str(stack["StackStatus"]),
            outputs=self.outputs_of(stack),
            changed=True,
            planned=changes,
        )

    def _wait_for_change_set(self, stack_name: str, change_set_id: str) -> int | None:
        """The number of resource changes, or None when there is nothing to change."""
        deadline = self._clock() + self._timeout
        while True:
            with translate(f"read the change set for {stack_name}"):
                described = self._cfn.describe_change_set(ChangeSetName=change_set_id)
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                count = len(described.get("Changes", []))
                token = described.get("NextToken")
                while token:
                    with translate(f"read the change set for {stack_name}"):
                        page = self._cfn.describe_change_set(
                            ChangeSetName=change_set_id, NextToken=token
                        )
                    count += len(page.get("Changes", []))
                    token = page.get("NextToken")
                return count
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if any(marker in reason for marker in _NO_CHANGES):
                    with translate(f"remove the empty change set of {stack_name}"):
                        self._cfn.delete_change_set(ChangeSetName=change_set_id)
                    return None
                raise DeployError(f"CloudFormation refused the change set: {reason}")
            if self._clock() > deadline:
                raise DeployError(f"the change set for {stack_name} was not ready in time")
            self._sleep(min(self._poll, 2.0))

    def _events(self, stack_id: str) -> list[StackEvent]:
        """The stack's newest events (first page), oldest first."""
        with translate("read the stack's events"):
            raw = self._cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        events = []
        for item in reversed(raw):
            events.append(
                StackEvent(
                    event_id=item["EventId"],
                    logical_id=item.get("LogicalResourceId", ""),
                    resource_type=item.get("ResourceType", ""),
                    status=str(item.get("ResourceStatus", "")),
                    reason=item.get("ResourceStatusReason", ""),
                    timestamp=item.get("Timestamp"),
                )
            )
        return events

    def _snapshot(self, stack_id: str) -> _Watch:
        """Remember the events that exist before an operation starts, so they are not replayed."""
        return _Watch(seen={event.event_id for event in self._events(stack_id)})

    def _wait(
        self, stack_id: str, watch: _Watch, on_event: EventSink | None, *, goal: str
    ) -> dict[str, Any]:
        deadline = self._clock() + self._timeout
        while True:
            for event in self._events(stack_id):
                if event.event_id in watch.seen:
                    continue
                watch.seen.add(event.event_id)
                if event.failed and event.reason:
                    watch.failures.append(event)
                if on_event is not None:
                    on_event(event)
            stack = self.describe(stack_id)
            if stack is None:
                raise DeployError(f"stack {stack_id} disappeared while waiting for it")
            status = str(stack["StackStatus"])
            if not status.endswith("_IN_PROGRESS"):
                if status == f"{goal}_COMPLETE":
                    return stack
                raise DeployError(self._failure_message(status, watch))
            if self._clock() > deadline:
                raise DeployError(f"stack {stack_id} still {status} after the time limit")
            self._sleep(self._poll)

    @staticmethod
    def _failure_message(status: str, watch: _Watch) -> str:
        # The first failure is the cause; the rest are cancellations it triggered.
        causes = [
            e for e in watch.failures if "cancelled" not in e.reason.lower() and not e.is_stack
        ] or watch.failures
        if causes:
            first = causes[0]
            where = f"{first.logical_id} ({first.resource_type})"
            return f"the stack ended {status}: {where}: {first.reason}"
        return f"the stack ended {status}"

    # Deleting --------------------------------------------------------------------------
    def resources(self, stack_name: str, logical_ids: Iterable[str]) -> list[RetainedResource]:
        """Physical IDs of some of the stack's resources (those that exist)."""
        wanted = set(logical_ids)
        found: list[RetainedResource] = []
        with translate(f"list the resources of {stack_name}"):
            paginator = self._cfn.get_paginator("list_stack_resources")
            for page in paginator.paginate(StackName=stack_name):
                for summary in page["StackResourceSummaries"]:
                    if summary["LogicalResourceId"] in wanted and summary.get("PhysicalResourceId"):
                        found.append(
                            RetainedResource(
                                logical_id=summary["LogicalResourceId"],
                                resource_type=summary["ResourceType"],
                                physical_id=summary["PhysicalResourceId"],
                            )
                        )
        return found

    def delete(self, *, stack_name: str, on_event: EventSink | None = None) -> bool:
        """Delete the stack and wait; False if there was none."""
        stack = self.describe(stack_name)
        if stack is None:
            return False
        stack_id = str(stack["StackId"])
        watch = self._snapshot(stack_id)
        with translate(f"delete stack {stack_name}"):
            self._cfn.delete_stack(StackName=stack_id)
        self._wait(stack_id, watch, on_event, goal="DELETE")
        return True
