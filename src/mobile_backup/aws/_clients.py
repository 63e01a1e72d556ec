"""Typed boto3 clients built from Settings (the one place endpoints and credentials meet).

Each client is built for a named `component` (`api`, `ingest`, `agent`, `client`, `admin`,
`local`): the role its calls run under, which the IAM test checks them against.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from mobile_backup.core import ConfigError, Settings
from mobile_backup.instrument import record_calls

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def _client_kwargs(settings: Settings, service: str, *, read_timeout: int = 60) -> dict[str, Any]:
    from botocore.config import Config  # keep cold start light

    kwargs: dict[str, Any] = {
        "region_name": settings.region,
        "config": Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if settings.aws_endpoint_url else "virtual"},
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=read_timeout,
            max_pool_connections=32,
            # Every object a phone uploads carries its x-amz-checksum-sha256. botocore's
            # default ("when_supported") asks S3 for it on each GET and hashes the body a
            # second time: 2.6x the CPU of a GET (12 vs 4.5 ms per 8 MiB on SeaweedFS). The
            # agent hashes every byte itself against the SHA-256 in the key, a stronger
            # check, and nothing else reads objects.
            response_checksum_validation="when_required",
        ),
    }
    endpoint = settings.aws_endpoint_url
    if service == "dynamodb" and settings.dynamodb_endpoint_url:
        endpoint = settings.dynamodb_endpoint_url
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        kwargs["aws_access_key_id"] = settings.aws_access_key_id
        kwargs["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    return kwargs


SERVICES = ("s3", "sqs", "dynamodb", "cognito-idp")
"""The AWS services this product's own clients call (`_client` refuses any other)."""

_sessions: dict[str | None, Any] = {}
_sessions_lock = threading.Lock()


def _services_loader(data_path: str | None) -> Any:
    """botocore's data loader, checking a service's name against `SERVICES` alone.

    Before it loads a model, botocore's loader checks the name against a list of every
    service it knows, made by listing and stat'ing some 400 folders: 8-11 ms for each kind
    of file, twice per process (the model and its endpoint rules), the largest part of
    building the first client at a cold start (issue 34, B6). This one lists only the
    folders of the services we call; loading, versions and extras stay botocore's.
    """
    from botocore.loaders import Loader

    class ServicesLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            found: set[str] = set()
            for root in self.search_paths:
                for service in SERVICES:
                    folder = os.path.join(root, service)
                    if os.path.isdir(folder) and any(
                        self.file_loader.exists(os.path.join(folder, version, type_name))
                        for version in os.listdir(folder)
                    ):
                        found.add(service)
            return sorted(found)

    extra = None
    if data_path:  # as botocore's `create_loader` reads AWS_DATA_PATH
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return ServicesLoader(extra_search_paths=extra)


def _session(profile: str | None) -> Any:
    """One botocore session per profile per process.

    botocore directly, not boto3: nothing here uses boto3's additions (resources, the
    transfer manager), and `import boto3` also imports s3transfer (and awscrt where it is
    installed), about 100 ms of a Lambda cold start. Sharing the session means each
    service's model and the endpoint data are loaded once, not once per client. Its
    clients read DynamoDB's items as JSON (`_parsing.py`), and its loader checks service
    names without listing every service (`_services_loader`).
    """
    session = _sessions.get(profile)
    if session is None:
        from botocore.session import Session

        from mobile_backup.aws._parsing import ItemsParserFactory

        fresh = Session(profile=profile)
        fresh.register_component("response_parser_factory", ItemsParserFactory())
        fresh.register_component(
            "data_loader", _services_loader(fresh.get_config_variable("data_path"))
        )
        session = _sessions.setdefault(profile, fresh)
    return session


def _client(settings: Settings, service: str, component: str) -> Any:
    if service not in SERVICES:  # the loader knows these only
        raise ValueError(f"{service!r} is not one of {SERVICES}")
    # A botocore session is not safe to build clients from on several threads at once.
    with _sessions_lock:
        session = _session(settings.aws_profile)
        client = session.create_client(service, **_client_kwargs(settings, service))
    record_calls(client, component=component)  # the IAM test's evidence (inert otherwise)
    return client


def s3_client(settings: Settings, *, component: str) -> S3Client:
    client: S3Client = _client(settings, "s3", component)
    return client


def sqs_client(settings: Settings, *, component: str) -> SQSClient:
    client: SQSClient = _client(settings, "sqs", component)
    return client


def dynamodb_client(settings: Settings, *, component: str) -> DynamoDBClient:
    client: DynamoDBClient = _client(settings, "dynamodb", component)
    return client


def cognito_client(settings: Settings, *, component: str) -> CognitoIdentityProviderClient:
    client: CognitoIdentityProviderClient = _client(settings, "cognito-idp", component)
    return client


def admin_session(aws_profile: str | None, region: str | None) -> Any:
    """A boto3 session with the operator's own credentials (`deploy`, `users`, `cost`).

    ConfigError when the named AWS profile does not exist or no region is chosen.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=aws_profile, region_name=region)
    except ProfileNotFound as exc:
        raise ConfigError(
            f"no AWS profile named {aws_profile!r} (see `aws configure list-profiles`)"
        ) from exc
    if not session.region_name:
        raise ConfigError(
            "no AWS region chosen: pass --region (e.g. --region eu-west-1), or set one with "
            "`aws configure` / AWS_DEFAULT_REGION"
        )
    return session
