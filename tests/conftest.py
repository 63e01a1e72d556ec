"""Shared fixtures: a real emulator on loopback, freshly provisioned resources per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from _agentkit import Cloud
from mobile_backup.core import EMULATOR_KEY, INIT_TYPE_ENV, RECORD_CALLS_ENV, Settings

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from mobile_backup.local import LocalStack

EVENTS_DIR = Path(__file__).parent / "events"
RECORD_ENV = RECORD_CALLS_ENV


def pytest_configure(config: pytest.Config) -> None:
    """Record every AWS call the components make in this run (child processes inherit it),
    for the IAM test that runs last (`test_zz_iam_calls.py`)."""
    import os
    import tempfile

    config.addinivalue_line("markers", "last: runs after every other test (reads their record)")
    if not os.environ.get(RECORD_ENV):
        folder = Path(tempfile.mkdtemp(prefix="mobile-backup-aws-calls-"))
        os.environ[RECORD_ENV] = str(folder / "calls.jsonl")
        config.stash[RECORD_DIR] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    folder = config.stash.get(RECORD_DIR, None)
    if folder is not None:  # ours, not one the caller named to keep
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    last = [item for item in items if item.get_closest_marker("last")]
    items[:] = [item for item in items if not item.get_closest_marker("last")] + last
    # The whole suite, as `make test` runs it: only then is "no test uses this grant" news.
    config.stash[FULL_RUN] = (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.getoption("lf", False)
    )


FULL_RUN = pytest.StashKey[bool]()
RECORD_DIR = pytest.StashKey[Path]()


def load_event(name: str) -> dict[str, Any]:
    """A real AWS event payload stored under tests/events/."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never read or write the developer's real config, tokens or state."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MOBILE_BACKUP_CONFIG_FILE", str(home / "config.toml"))
    monkeypatch.setenv("MOBILE_BACKUP_STATE_DIR", str(home / "state"))
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    """The moto server on a free loopback port, shared by the session."""
    from mobile_backup.local import EmulatorServer

    server = EmulatorServer(port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dynalite() -> Iterator[Any]:
    """A second DynamoDB (dynalite, Node) on a free loopback port, shared by the session:
    tables in memory, ACTIVE at once; stopped when the session ends."""
    from testkit.dynalite import DynaliteServer

    with DynaliteServer() as server:
        yield server


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3 server (SeaweedFS `weed mini`) on free loopback ports, shared by the session.

    Contract: yields a started `testkit.seaweed.SeaweedServer` with an empty
    bucket named `media` (other tests may have written to it: use unique keys). SigV4 is
    validated against ONE identity: `seaweed.access_key` / `seaweed.secret_key`, region
    `us-east-1`; `seaweed.client()` gives a boto3 S3 client for it (path-style, s3v4).
    Buckets are not
    auto-created on upload (NoSuchBucket, like S3). Do not stop it: it stops (SIGTERM to its
    whole process group) when the session ends, failures included; its data and `weed.log`
    live in a pytest tmp dir.
    """
    from testkit.seaweed import SeaweedServer

    server = SeaweedServer(data_dir=tmp_path_factory.mktemp("seaweed"), buckets=["media"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def resources(emulator: Any) -> Any:
    """The template's resources provisioned under a fresh stack name (no shared state)."""
    from mobile_backup.local import provision

    return provision(endpoint_url=emulator.endpoint_url, stack_name=f"t{uuid.uuid4().hex[:10]}")


def offline_presigner() -> Any:
    """An S3 client that only presigns: presigning is local computation, so its endpoint
    (a closed port) is never contacted."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def settings_for(resources: Any, **extra: Any) -> Settings:
    """Settings pointing at provisioned local resources (no env, no config file)."""
    from mobile_backup.local import local_settings

    return local_settings(resources, api_url=None, library=None, profile="test", **extra)


@pytest.fixture
def settings(resources: Any) -> Settings:
    return settings_for(resources)


@pytest.fixture
def cloud(settings: Settings) -> Cloud:
    """The emulator's bucket, downloads queue and ledger, as the phone and ingest use them."""
    from mobile_backup.aws import dynamodb_client, s3_client, sqs_client
    from mobile_backup.ledger import Ledger

    return Cloud(
        settings=settings,
        s3=s3_client(settings, component="test"),
        sqs=sqs_client(settings, component="test"),
        ledger=Ledger(dynamodb_client(settings, component="test"), settings.require("table")),
    )


@dataclass(frozen=True)
class LedgerTable:
    """One provisioned ledger table: its DynamoDB client and name."""

    client: Any
    name: str


@pytest.fixture(params=["moto", "dynalite"])
def ledger_table(request: pytest.FixtureRequest, emulator: Any) -> LedgerTable:
    """Only the template's ledger table, under a fresh name: for tests of the ledger alone,
    which need neither the bucket, the queues nor the user pool `resources` provisions.

    Each such test runs twice: on moto's DynamoDB (what every component runs against) and on
    dynalite, a second, independent implementation built to match the real service's
    validation and errors, which catches what one emulator forgives."""
    from mobile_backup.infra import load_template
    from mobile_backup.local._provision import TABLE_ID
    from mobile_backup.local._provision_dynamodb import provision_table
    from mobile_backup.local._provision_stack import Stack, client

    endpoint = emulator.endpoint_url
    if request.param == "dynalite":
        endpoint = request.getfixturevalue("dynalite").endpoint_url
    stack = Stack(
        load_template(),
        endpoint_url=emulator.endpoint_url,
        region="us-east-1",
        stack_name=f"t{uuid.uuid4().hex[:10]}",
        parameters={},
        dynamodb_endpoint_url=endpoint,
    )
    provision_table(stack, TABLE_ID)
    return LedgerTable(client("dynamodb", endpoint, "us-east-1"), stack.ref(TABLE_ID))


def snapstart_init_env(settings: Settings, *fields: str) -> dict[str, str]:
    """A Lambda function's environment while Lambda initialises it for a SnapStart snapshot:
    this process's, without our variables, plus the local stack's endpoint and keys and the
    settings `fields` the function's template entry gives it."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOBILE_BACKUP_")}
    secret = settings.aws_secret_access_key
    assert secret is not None, "the local stack's settings carry the emulator's keys"
    values = {
        "local": "true",
        "region": settings.region,
        "aws_endpoint_url": settings.require("aws_endpoint_url"),
        "aws_access_key_id": settings.require("aws_access_key_id"),
        "aws_secret_access_key": secret.get_secret_value(),
        **{name: str(settings.require(name)) for name in fields},
    }
    env.update({f"MOBILE_BACKUP_{name.upper()}": value for name, value in values.items()})
    env[INIT_TYPE_ENV] = "snap-start"
    return env


# The end-to-end tests' browser: a fresh Chromium profile per test (Debian's
# /usr/bin/chromium, never a downloaded browser) that may reach loopback only.
@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    from urllib.parse import urlsplit

    from playwright.sync_api import Route, sync_playwright

    from _browser import CHROMIUM, CHROMIUM_ARGS, PHONE

    assert CHROMIUM.exists(), "Debian's chromium is required: apt-get install chromium"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every run
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=PHONE,
        )
        blocked: list[str] = []

        def loopback_only(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", loopback_only)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def quiet_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The local stack without its PC agent: files stay 'waiting for your PC' until a test
    starts one."""
    from mobile_backup.local import LocalStack

    with LocalStack(library=tmp_path / "library", poll_seconds=1, run_agent=False) as s:
        yield s
