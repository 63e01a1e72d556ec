"""Create the template's resources on the emulator, from the template itself.

`infra/template.yaml` is the source of truth: bucket settings, queue attributes and redrive,
table keys and indexes, the user pool and its client are read from the parsed template and
translated from CloudFormation's property shapes to the API calls that create them. The
serverless parts (HTTP API, functions) are not provisioned: the local stack runs the same
handlers in-process.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_backup.core import EMULATOR_KEY, ServiceError
from mobile_backup.local._template import TemplateError, load_template, resolve

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["LocalResources", "ProvisionError", "create_user", "provision"]

logger = logging.getLogger(__name__)

# Logical IDs in infra/template.yaml that the rest of the system addresses.
BUCKET_ID = "MediaBucket"
TABLE_ID = "LedgerTable"
EVENTS_QUEUE_ID = "EventsQueue"
EVENTS_DLQ_ID = "EventsDLQ"
DOWNLOADS_QUEUE_ID = "DownloadsQueue"
DOWNLOADS_DLQ_ID = "DownloadsDLQ"
USER_POOL_ID = "UserPool"
USER_POOL_CLIENT_ID = "UserPoolClient"

# The local app client also allows USER_PASSWORD_AUTH: the CLI signs in with it against the
# emulator only (moto has no SRP). The deployed client allows SRP and refresh only.
LOCAL_ONLY_AUTH_FLOW = "ALLOW_USER_PASSWORD_AUTH"

# Resource types that exist in the template but not in the local stack, and why.
_NOT_PROVISIONED = {
    # Runs in-process locally (uvicorn + the ingest poller call the same handlers).
    "AWS::Serverless::Function": "runs in-process",
    "AWS::Serverless::HttpApi": "runs in-process",
    "AWS::Lambda::Function": "runs in-process",
    "AWS::Lambda::EventSourceMapping": "the local ingest poller reads the queue",
    # The only bucket policy denies plain HTTP; the emulator speaks plain HTTP on loopback.
    "AWS::S3::BucketPolicy": "TLS-only policy; the emulator is plain HTTP on loopback",
}
_NOT_PROVISIONED_PREFIXES = ("AWS::IAM::",)  # the emulator does not enforce IAM


class ProvisionError(ServiceError):
    """The emulator refused to create or configure a resource."""

    code = "provision_failed"


@dataclass(frozen=True)
class LocalResources:
    """Names and URLs of one provisioned local stack.

    Note that, as on AWS, configuring the bucket notification puts one `s3:TestEvent`
    message on the events queue.
    """

    stack_name: str
    region: str
    endpoint_url: str
    bucket: str
    table: str
    events_queue_url: str
    events_dlq_url: str
    downloads_queue_url: str
    downloads_dlq_url: str
    user_pool_id: str
    client_id: str


def provision(
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    stack_name: str = "mobile-backup-local",
    template: dict[str, Any] | None = None,
    parameters: dict[str, str] | None = None,
) -> LocalResources:
    """Create (or bring up to date) the template's resources on the emulator.

    Calling it again with the same stack name reuses what exists and re-applies the
    configuration, so it is safe to run on every `local up`.
    """
    tpl = template if template is not None else load_template()
    try:
        stack = _Stack(
            tpl,
            endpoint_url=endpoint_url,
            region=region,
            stack_name=stack_name,
            parameters=parameters or {},
        )
        stack.create_all()
    except Exception as exc:
        if _is_boto_error(exc):
            raise ProvisionError(
                f"could not provision the local stack {stack_name!r} at {endpoint_url}: {exc}"
            ) from exc
        raise
    return LocalResources(
        stack_name=stack_name,
        region=region,
        endpoint_url=endpoint_url,
        bucket=stack.ref(BUCKET_ID),
        table=stack.ref(TABLE_ID),
        events_queue_url=stack.ref(EVENTS_QUEUE_ID),
        events_dlq_url=stack.ref(EVENTS_DLQ_ID),
        downloads_queue_url=stack.ref(DOWNLOADS_QUEUE_ID),
        downloads_dlq_url=stack.ref(DOWNLOADS_DLQ_ID),
        user_pool_id=stack.ref(USER_POOL_ID),
        client_id=stack.ref(USER_POOL_CLIENT_ID),
    )


def create_user(resources: LocalResources, *, email: str, password: str) -> str:
    """Add a confirmed user with a permanent password; returns the user's `sub`.

    As on AWS, only an administrator adds users (the pool allows no self sign-up). If the
    user exists, the password is reset to `password` and the existing `sub` returned.
    """
    idp: CognitoIdentityProviderClient = _client(
        "cognito-idp", resources.endpoint_url, resources.region
    )
    try:
        try:
            idp.admin_create_user(
                UserPoolId=resources.user_pool_id,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
        except idp.exceptions.UsernameExistsException:
            logger.debug("user %s exists; resetting the password", email)
        idp.admin_set_user_password(
            UserPoolId=resources.user_pool_id, Username=email, Password=password, Permanent=True
        )
        user = idp.admin_get_user(UserPoolId=resources.user_pool_id, Username=email)
    except Exception as exc:
        if _is_boto_error(exc):
            raise ProvisionError(f"could not create the user {email}: {exc}") from exc
        raise
    for attribute in user.get("UserAttributes", []):
        if attribute["Name"] == "sub":
            return attribute["Value"]
    raise ProvisionError(f"the emulator returned no sub for {email}")


# --------------------------------------------------------------------------- internals


def _is_boto_error(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


_client_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _client(service: str, endpoint_url: str, region: str) -> Any:
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


def _pick(props: Mapping[str, Any], kind: str, known: set[str]) -> None:
    """Refuse properties this module does not translate, so the stacks cannot drift apart."""
    unknown = sorted(set(props) - known)
    if unknown:
        raise TemplateError(
            f"{kind} properties {', '.join(unknown)} are not provisioned locally; "
            "teach mobile_backup.local._provision about them"
        )


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Stack:
    """One provisioning run: the resolved template plus the physical IDs created so far."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        endpoint_url: str,
        region: str,
        stack_name: str,
        parameters: Mapping[str, str],
    ) -> None:
        self.template = template
        self.resources: Mapping[str, Any] = template["Resources"]
        self.region = region
        # Parameters first: a bad value is the caller's mistake and needs no emulator.
        self.params = _parameter_values(template, parameters)
        self.s3: S3Client = _client("s3", endpoint_url, region)
        self.sqs: SQSClient = _client("sqs", endpoint_url, region)
        self.ddb: DynamoDBClient = _client("dynamodb", endpoint_url, region)
        self.idp: CognitoIdentityProviderClient = _client("cognito-idp", endpoint_url, region)
        account = _client("sts", endpoint_url, region).get_caller_identity()["Account"]
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

    # Resolution ---------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        return resolve(
            value, params=self.params, pseudo=self.pseudo, refs=self.refs, attrs=self.attrs
        )

    def ref(self, logical_id: str) -> str:
        if logical_id not in self.refs:
            raise TemplateError(f"the template has no {logical_id} resource")
        return str(self.refs[logical_id])

    def props(self, logical_id: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(self.resources[logical_id].get("Properties") or {})
        return resolved

    def of_type(self, kind: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res.get("Type") == kind]

    # Orchestration ------------------------------------------------------------------
    def create_all(self) -> None:
        handlers: dict[str, Callable[[str], None]] = {
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::DynamoDB::Table": self.table,
            "AWS::S3::Bucket": self.bucket,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::Cognito::UserPoolClient": self.user_pool_client,
        }
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type", "")
            if kind in handlers:
                continue
            if kind.startswith(_NOT_PROVISIONED_PREFIXES):
                logger.debug("not provisioning %s: the emulator does not enforce IAM", logical_id)
            elif kind in _NOT_PROVISIONED:
                logger.debug("not provisioning %s: %s", logical_id, _NOT_PROVISIONED[kind])
            else:
                raise TemplateError(f"{logical_id} ({kind}) has no local equivalent")
        # Queues without a redrive policy (the DLQs) first: the others point at their ARNs.
        queues = sorted(
            self.of_type("AWS::SQS::Queue"),
            key=lambda lid: "RedrivePolicy" in (self.resources[lid].get("Properties") or {}),
        )
        order = [
            *queues,
            *self.of_type("AWS::SQS::QueuePolicy"),
            *self.of_type("AWS::DynamoDB::Table"),
            *self.of_type("AWS::S3::Bucket"),
            *self.of_type("AWS::Cognito::UserPool"),
            *self.of_type("AWS::Cognito::UserPoolClient"),
        ]
        for logical_id in order:
            handlers[self.resources[logical_id]["Type"]](logical_id)
            logger.debug("provisioned %s", logical_id)

    # SQS ----------------------------------------------------------------------------
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

    def queue(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(props, "AWS::SQS::Queue", {*self._QUEUE_ATTRIBUTES, "QueueName", "Tags"})
        name = props.get("QueueName") or f"{self.pseudo['AWS::StackName']}-{logical_id}"
        attributes: dict[Any, str] = {}
        for key in self._QUEUE_ATTRIBUTES & set(props):
            value = props[key]
            attributes[key] = (
                json.dumps(value, sort_keys=True) if isinstance(value, dict) else _flag(value)
            )
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        # create_queue leaves an existing queue's attributes alone; make a re-run converge.
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.refs[logical_id] = url
        self.attrs[f"{logical_id}.Arn"] = arn
        self.attrs[f"{logical_id}.QueueName"] = name
        self.attrs[f"{logical_id}.QueueUrl"] = url

    def queue_policy(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(props, "AWS::SQS::QueuePolicy", {"Queues", "PolicyDocument"})
        policy = json.dumps(props["PolicyDocument"], sort_keys=True)
        for url in props["Queues"]:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        self.refs[logical_id] = logical_id

    # DynamoDB -----------------------------------------------------------------------
    def table(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(
            props,
            "AWS::DynamoDB::Table",
            {
                "AttributeDefinitions",
                "BillingMode",
                "DeletionProtectionEnabled",
                "GlobalSecondaryIndexes",
                "KeySchema",
                "LocalSecondaryIndexes",
                "PointInTimeRecoverySpecification",
                "ProvisionedThroughput",
                "SSESpecification",
                "StreamSpecification",
                "TableName",
                "Tags",
                "TimeToLiveSpecification",
            },
        )
        name = props.get("TableName") or f"{self.pseudo['AWS::StackName']}-{logical_id}"
        request: dict[str, Any] = {"TableName": name}
        for key in (
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "DeletionProtectionEnabled",
        ):
            if key in props:
                request[key] = props[key]
        if "SSESpecification" in props:
            sse = props["SSESpecification"]
            request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in sse:
                    request["SSESpecification"][key] = sse[key]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        try:
            self.ddb.create_table(**request)
        except self.ddb.exceptions.ResourceInUseException:
            logger.debug("table %s exists", name)
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr is not None:
            self.ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
                },
            )
        ttl = props.get("TimeToLiveSpecification")
        if ttl is not None and ttl.get("Enabled"):
            self.ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        arn = self.ddb.describe_table(TableName=name)["Table"]["TableArn"]
        self.refs[logical_id] = name
        self.attrs[f"{logical_id}.Arn"] = arn

    # S3 -----------------------------------------------------------------------------
    def bucket(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(
            props,
            "AWS::S3::Bucket",
            {
                "BucketEncryption",
                "BucketName",
                "CorsConfiguration",
                "LifecycleConfiguration",
                "NotificationConfiguration",
                "OwnershipControls",
                "PublicAccessBlockConfiguration",
                "Tags",
                "VersioningConfiguration",
            },
        )
        name = props.get("BucketName") or f"{self.pseudo['AWS::StackName']}-{logical_id}".lower()
        s3 = self.s3
        try:
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(
                    Bucket=name,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except s3.exceptions.BucketAlreadyOwnedByYou:
            logger.debug("bucket %s exists", name)
        self.refs[logical_id] = name
        self.attrs[f"{logical_id}.Arn"] = f"arn:{self.pseudo['AWS::Partition']}:s3:::{name}"
        self.attrs[f"{logical_id}.DomainName"] = f"{name}.s3.amazonaws.com"

        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls=props["OwnershipControls"]
            )
        if "BucketEncryption" in props:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration=_s3_encryption(props["BucketEncryption"]),
            )
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name,
                VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
            )
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration=_s3_cors(props["CorsConfiguration"]))
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration=_s3_lifecycle(props["LifecycleConfiguration"])
            )
        if "NotificationConfiguration" in props:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration=_s3_notifications(props["NotificationConfiguration"]),
            )

    # Cognito ------------------------------------------------------------------------
    _POOL_PROPERTIES = {
        "AccountRecoverySetting",
        "AdminCreateUserConfig",
        "AliasAttributes",
        "AutoVerifiedAttributes",
        "DeletionProtection",
        "EmailConfiguration",
        "MfaConfiguration",
        "Policies",
        "Schema",
        "UserAttributeUpdateSettings",
        "UsernameAttributes",
        "UsernameConfiguration",
        "UserPoolTags",
        "VerificationMessageTemplate",
    }

    def user_pool(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(props, "AWS::Cognito::UserPool", {*self._POOL_PROPERTIES, "UserPoolName"})
        name = props.get("UserPoolName") or f"{self.pseudo['AWS::StackName']}-{logical_id}"
        config = {k: v for k, v in props.items() if k in self._POOL_PROPERTIES}
        existing = self._find(
            lambda token: self.idp.list_user_pools(MaxResults=60, **token),
            "UserPools",
            name,
            "Name",
        )
        if existing is None:
            pool = self.idp.create_user_pool(PoolName=name, **config)["UserPool"]
        else:
            pool = self.idp.describe_user_pool(UserPoolId=existing["Id"])["UserPool"]
        pool_id = pool["Id"]
        self.refs[logical_id] = pool_id
        self.attrs[f"{logical_id}.Arn"] = pool["Arn"]
        self.attrs[f"{logical_id}.UserPoolId"] = pool_id
        self.attrs[f"{logical_id}.ProviderName"] = (
            f"cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        )
        self.attrs[f"{logical_id}.ProviderURL"] = (
            f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        )

    _CLIENT_PROPERTIES = {
        "AccessTokenValidity",
        "AllowedOAuthFlows",
        "AllowedOAuthFlowsUserPoolClient",
        "AllowedOAuthScopes",
        "AuthSessionValidity",
        "CallbackURLs",
        "DefaultRedirectURI",
        "EnablePropagateAdditionalUserContextData",
        "EnableTokenRevocation",
        "ExplicitAuthFlows",
        "GenerateSecret",
        "IdTokenValidity",
        "LogoutURLs",
        "PreventUserExistenceErrors",
        "ReadAttributes",
        "RefreshTokenValidity",
        "SupportedIdentityProviders",
        "TokenValidityUnits",
        "WriteAttributes",
    }

    def user_pool_client(self, logical_id: str) -> None:
        props = self.props(logical_id)
        _pick(
            props,
            "AWS::Cognito::UserPoolClient",
            {*self._CLIENT_PROPERTIES, "ClientName", "UserPoolId"},
        )
        pool_id = props["UserPoolId"]
        name = props.get("ClientName") or f"{self.pseudo['AWS::StackName']}-{logical_id}"
        config = {k: v for k, v in props.items() if k in self._CLIENT_PROPERTIES}
        flows = list(config.get("ExplicitAuthFlows", []))
        if LOCAL_ONLY_AUTH_FLOW not in flows:
            # Deliberate divergence from the template: see LOCAL_ONLY_AUTH_FLOW.
            flows.append(LOCAL_ONLY_AUTH_FLOW)
        config["ExplicitAuthFlows"] = flows
        existing = self._find(
            lambda token: self.idp.list_user_pool_clients(
                UserPoolId=pool_id, MaxResults=60, **token
            ),
            "UserPoolClients",
            name,
            "ClientName",
        )
        if existing is None:
            client = self.idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **config)
            client_id = client["UserPoolClient"]["ClientId"]
        else:
            client_id = existing["ClientId"]
            # GenerateSecret cannot be changed after creation.
            config.pop("GenerateSecret", None)
            self.idp.update_user_pool_client(
                UserPoolId=pool_id, ClientId=client_id, ClientName=name, **config
            )
        self.refs[logical_id] = client_id
        self.attrs[f"{logical_id}.ClientId"] = client_id

    @staticmethod
    def _find(
        page: Callable[[dict[str, str]], Any], items: str, name: str, field: str
    ) -> dict[str, Any] | None:
        token: dict[str, str] = {}
        while True:
            resp = page(token)
            for item in resp.get(items, []):
                if item.get(field) == name:
                    found: dict[str, Any] = item
                    return found
            if not resp.get("NextToken"):
                return None
            token = {"NextToken": resp["NextToken"]}


# CloudFormation property shapes → S3 API shapes ------------------------------------------


def _s3_encryption(cfn: Mapping[str, Any]) -> Any:
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


def _s3_cors(cfn: Mapping[str, Any]) -> Any:
    renames = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return {
        "CORSRules": [
            {renames.get(key, key): value for key, value in rule.items()}
            for rule in cfn["CorsRules"]
        ]
    }


def _s3_lifecycle(cfn: Mapping[str, Any]) -> Any:
    rules = []
    for rule in cfn["Rules"]:
        _pick(
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


def _s3_notifications(cfn: Mapping[str, Any]) -> Any:
    # Lambda and SNS targets would need a local dispatcher; the design uses SQS only.
    _pick(cfn, "AWS::S3::Bucket NotificationConfiguration", {"QueueConfigurations"})
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
