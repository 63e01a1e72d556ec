"""The whole system on one machine: emulator, HTTP API, ingest poller and PC agent.

Every piece is the real component: the API is the Lambda's resolver served through the
ASGI adapter, the poller calls the ingest Lambda's handler, and the agent is the one that
runs on a PC. Only AWS itself is replaced, by the emulator on loopback.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_backup.core import EMULATOR_KEY, Settings

if TYPE_CHECKING:
    from mobile_backup.agent import Outcome

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
LOCAL_PROFILE = "local"


def local_settings(
    resources: Any, *, api_url: str | None, library: Path | None, **extra: Any
) -> Settings:
    """Settings for every component of a local stack built on `resources`."""
    values: dict[str, Any] = {
        "profile": LOCAL_PROFILE,
        "local": True,
        "region": resources.region,
        "aws_endpoint_url": resources.endpoint_url,
        "dynamodb_endpoint_url": resources.dynamodb_endpoint_url,
        "aws_access_key_id": EMULATOR_KEY,
        "aws_secret_access_key": EMULATOR_KEY,
        "bucket": resources.bucket,
        "table": resources.table,
        "events_queue_url": resources.events_queue_url,
        "downloads_queue_url": resources.downloads_queue_url,
        "user_pool_id": resources.user_pool_id,
        "client_id": resources.client_id,
        "api_url": api_url,
        "library": library,
    }
    values.update(extra)
    return Settings.explicit(**values)


def profile_values(settings: Settings) -> dict[str, object]:
    """What `local up` writes into the `local` profile of the config file."""
    keep = (
        "local", "region", "aws_endpoint_url", "aws_access_key_id", "api_url", "user_pool_id",
        "client_id", "bucket", "table", "events_queue_url", "downloads_queue_url", "library",
    )  # fmt: skip
    values: dict[str, object] = {k: getattr(settings, k) for k in keep}
    values["library"] = str(settings.library) if settings.library else None
    if settings.dynamodb_endpoint_url:  # a ledger of its own (benchmarks)
        values["dynamodb_endpoint_url"] = settings.dynamodb_endpoint_url
    # The emulator's placeholder key, never a real secret.
    values["aws_secret_access_key"] = EMULATOR_KEY
    return values


def agent_environment(settings: Settings, library: Path) -> dict[str, str]:
    """`MOBILE_BACKUP_*` variables that point an agent process (`mobile-backup agent run`
    in a child process) at this local stack and `library`; merge them into its environment.
    The emulator's placeholder keys only: never a real credential."""
    return {
        "MOBILE_BACKUP_LOCAL": "true",
        "MOBILE_BACKUP_REGION": settings.region,
        "MOBILE_BACKUP_AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "MOBILE_BACKUP_AWS_ACCESS_KEY_ID": EMULATOR_KEY,
        "MOBILE_BACKUP_AWS_SECRET_ACCESS_KEY": EMULATOR_KEY,
        "MOBILE_BACKUP_DOWNLOADS_QUEUE_URL": settings.require("downloads_queue_url"),
        "MOBILE_BACKUP_DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url or "",
        "MOBILE_BACKUP_TABLE": settings.require("table"),
        "MOBILE_BACKUP_BUCKET": settings.require("bucket"),
        "MOBILE_BACKUP_LIBRARY": str(library),
    }


def _hostname() -> str:
    return socket.gethostname() or "this-pc"


class LocalStack:
    """Start with `start()` (or `with LocalStack(...) as stack:`), stop with `stop()`.

    `emulator_process=True` (what `local up` and the demo use) runs the emulator in a child
    process with a core of its own; by default it serves from this process, where tests can
    reach moto's state. `dynamodb_endpoint_url` keeps the ledger on a DynamoDB of its own
    (dynalite: benchmarks that tell the ledger's cost from moto's).
    """

    def __init__(
        self,
        *,
        library: Path,
        emulator_port: int = 0,
        api_port: int = 0,
        stack_name: str | None = None,
        email: str = DEMO_EMAIL,
        password: str | None = None,
        run_agent: bool = True,
        poll_seconds: int = 1,
        on_outcome: Callable[[Outcome], None] | None = None,
        emulator_process: bool = False,
        dynamodb_endpoint_url: str | None = None,
    ) -> None:
        self._on_outcome = on_outcome
        self._dynamodb_endpoint_url = dynamodb_endpoint_url
        self.library = library
        self.email = email
        self.password = password or f"Demo-{secrets.token_urlsafe(9)}1!"
        self._emulator_port = emulator_port
        self._api_port = api_port
        # moto keeps its state per process, not per server: two stacks in one process (the
        # demo, tests) would share queues under one name, so each gets a name of its own.
        self._stack_name = stack_name or f"mobile-backup-local-{secrets.token_hex(3)}"
        self._run_agent = run_agent
        self._emulator_process = emulator_process
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._emulator: Any = None
        self._api: Any = None
        self._settings: Settings | None = None
        self._agent: Any = None
        self.user_sub: str | None = None

    @property
    def emulator_pid(self) -> int | None:
        """The emulator's process id when it runs in a process of its own, else None."""
        return self._emulator.pid if self._emulator is not None else None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the local stack is not started")
        return self._settings

    def start(self, on_step: Callable[[str], None] | None = None) -> LocalStack:
        """Start every part; `on_step` is told each step as it begins (they take seconds)."""
        from mobile_backup.local._asgi import ApiAsgiApp, ApiServer
        from mobile_backup.local._emulator import EmulatorServer
        from mobile_backup.local._provision import create_user, provision

        step = on_step or (lambda _what: None)
        try:
            step("starting the AWS emulator (S3, SQS, DynamoDB, Cognito)")
            self._emulator = EmulatorServer(
                port=self._emulator_port, own_process=self._emulator_process
            )
            self._emulator.start()
            step("creating the stack's resources from the template")
            resources = provision(
                endpoint_url=self._emulator.endpoint_url,
                stack_name=self._stack_name,
                dynamodb_endpoint_url=self._dynamodb_endpoint_url,
            )
            step("adding the demo member")
            self.user_sub = create_user(resources, email=self.email, password=self.password)
            step("starting the HTTP API")
            base = local_settings(resources, api_url=None, library=self.library)
            self._api = ApiServer(ApiAsgiApp.for_settings(base), port=self._api_port)
            self._api.start()
            self._settings = base.model_copy(update={"api_url": self._api.url})
            step("starting the ingest and the PC agent")
            self._start_ingest()
            if self._run_agent:
                self._start_agent()
        except BaseException:
            self.stop()
            raise
        return self

    def _thread(self, name: str, target: Any) -> None:
        t = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _start_ingest(self) -> None:
        from mobile_backup.local._poller import IngestPoller

        poller = IngestPoller(settings=self.settings, wait_seconds=self._poll_seconds)
        self._thread("ingest-poller", poller.run)

    def _start_agent(self) -> None:
        from mobile_backup.agent import Agent

        agent = Agent.from_settings(
            self.settings,
            library=self.library,
            host=_hostname(),
            wait_seconds=self._poll_seconds,
            on_outcome=self._on_outcome,
        )
        self._agent = agent
        self._thread("agent", agent.run)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()
        if self._agent is not None:
            self._agent.close()  # frees the library's lock and transfer threads
            self._agent = None
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
