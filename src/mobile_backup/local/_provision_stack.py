"""One provisioning run: the resolved template, the emulator's clients, the IDs made so far.

The per-service translators (`_provision_s3`, `_provision_sqs`, `_provision_dynamodb`,
`_provision_cognito`) each take a `Stack` and a logical ID, create that resource and record
its `Ref` and `Fn::GetAtt` values here, so later resources can point at it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mobile_backup.core import EMULATOR_KEY
from mobile_backup.infra import TemplateError, condition_values, resolve

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["Stack", "client", "flag", "pick"]


_client_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def client(service: str, endpoint_url: str, region: str) -> Any:
    """One client per emulator, service and region (clients are thread-safe once built).

    Building a client reloads botocore's service models and takes longer than provisioning
    a stack; tests provision one stack per test, so they are built once and reused.
    """
    from botocore.config import Config

    # Creating clients from a shared session is not thread-safe; calling them is.
    with _client_lock:
        return _session().client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=EMULATOR_KEY,
            aws_secret_access_key=EMULATOR_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def pick(props: Mapping[str, Any], kind: str, known: set[str]) -> None:
    """Refuse properties this module does not translate, so the stacks cannot drift apart."""
    unknown = sorted(set(props) - known)
    if unknown:
        raise TemplateError(
            f"{kind} properties {', '.join(unknown)} are not provisioned locally; "
            "teach mobile_backup.local._provision about them"
        )


def flag(value: Any) -> str:
    """A template scalar as the string an attribute map wants (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        raw = given.get(name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"template parameter {name} needs a value")
        if spec.get("Type") == "Number":
            try:
                number = float(raw)
            except (TypeError, ValueError) as exc:
                raise TemplateError(f"template parameter {name} must be a number") from exc
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            if (low is not None and number < float(low)) or (
                high is not None and number > float(high)
            ):
                raise TemplateError(f"template parameter {name}={raw} is out of range")
            values[name] = int(number) if number.is_integer() else number
        else:
            values[name] = str(raw)
        allowed = spec.get("AllowedValues")
        if allowed is not None and values[name] not in allowed and str(raw) not in allowed:
            raise TemplateError(f"template parameter {name}={raw} is not an allowed value")
    return values


class Stack:
    """One provisioning run: the resolved template plus the physical IDs created so far."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        endpoint_url: str,
        region: str,
        stack_name: str,
        parameters: Mapping[str, str],
        dynamodb_endpoint_url: str | None = None,
    ) -> None:
        """`dynamodb_endpoint_url`: the tables on a DynamoDB of their own (dynalite), the
        rest on the emulator at `endpoint_url`."""
        self.template = template
        self.region = region
        # Parameters first: a bad value is the caller's mistake and needs no emulator.
        self.params = _parameter_values(template, parameters)
        self.s3: S3Client = client("s3", endpoint_url, region)
        self.sqs: SQSClient = client("sqs", endpoint_url, region)
        self.ddb: DynamoDBClient = client("dynamodb", dynamodb_endpoint_url or endpoint_url, region)
        self.idp: CognitoIdentityProviderClient = client("cognito-idp", endpoint_url, region)
        account = client("sts", endpoint_url, region).get_caller_identity()["Account"]
        self.pseudo: dict[str, Any] = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, Any] = {}
        self.conditions = condition_values(template, params=self.params, pseudo=self.pseudo)
        # Resources whose `Condition` is false do not exist, as in CloudFormation.
        self.resources: Mapping[str, Any] = {
            logical_id: resource
            for logical_id, resource in template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def resolve(self, value: Any) -> Any:
        """`value` with its intrinsic functions replaced by what this run knows so far."""
        return resolve(
            value,
            params=self.params,
            pseudo=self.pseudo,
            refs=self.refs,
            attrs=self.attrs,
            conditions=self.conditions,
        )

    def ref(self, logical_id: str) -> str:
        """The physical ID (`Ref`) of a resource created in this run."""
        if logical_id not in self.refs:
            raise TemplateError(f"the template has no {logical_id} resource")
        return str(self.refs[logical_id])

    def props(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties, resolved."""
        resolved: dict[str, Any] = self.resolve(self.resources[logical_id].get("Properties") or {})
        return resolved

    def of_type(self, kind: str) -> list[str]:
        """Logical IDs of the template's resources of one type, in template order."""
        return [lid for lid, res in self.resources.items() if res.get("Type") == kind]
