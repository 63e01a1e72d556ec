"""What the agent's integration tests share: a `Cloud` that plays the phone and the ingest
(ledger entry, object, download message) against the emulator, and a look at the library."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_backup.agent import Agent, AgentConfig, Outcome
from mobile_backup.core import (
    CaptureSource,
    DownloadMessage,
    FileMeta,
    Settings,
    object_key,
    utcnow,
)
from mobile_backup.ledger import Ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
OTHER_SUB = "9d0e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"
TAKEN = datetime(2024, 7, 14, 9, 20, 5, tzinfo=UTC)
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Cloud:
    settings: Settings
    s3: S3Client
    sqs: SQSClient
    ledger: Ledger

    @property
    def queue(self) -> str:
        return self.settings.require("downloads_queue_url")

    def upload(
        self,
        data: bytes,
        *,
        filename: str,
        taken_at: datetime | None = TAKEN,
        user_sub: str = SUB,
        stored: bytes | None = None,
        taken_at_source: CaptureSource | None = None,
        owner_name: str | None = None,
        content_type: str = "image/jpeg",
    ) -> DownloadMessage:
        """What the phone and the ingest do: ledger entry, object, download message.

        `stored` puts other bytes in the bucket than the ones the message promises.
        """
        sha = hashlib.sha256(data).hexdigest()
        meta = FileMeta(
            sha,
            len(data),
            filename,
            content_type,
            taken_at=taken_at,
            taken_at_source=taken_at_source,
        )
        self.ledger.reserve(user_sub, meta, now=utcnow(), owner_name=owner_name)
        key = object_key(user_sub, sha)
        self.s3.put_object(
            Bucket=self.settings.require("bucket"),
            Key=key,
            Body=data if stored is None else stored,
        )
        record = self.ledger.mark_uploaded(user_sub, sha, size=len(data), now=utcnow())
        assert record.uploaded_at is not None
        # What the ingest sends for this entry.
        return DownloadMessage.for_record(record, bucket=self.settings.require("bucket"))

    def send(self, body: str, times: int = 1) -> None:
        for _ in range(times):
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=body)

    def counts(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages on the downloads queue (or another)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        )


def agent_for(
    cloud: Cloud,
    library: Path,
    *,
    host: str = "test-pc",
    clock: Callable[[], datetime] = lambda: AT,
    config: AgentConfig | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Agent:
    """An agent on the cloud's queue and ledger, filing into `library`, never waiting.

    Its clients are the agent's own (labelled `agent` for the IAM test), not the test's."""
    s3, sqs, ledger = _agent_clients(cloud.settings)
    return Agent(
        settings=cloud.settings,
        s3=s3,
        sqs=sqs,
        ledger=ledger,
        library=library,
        host=host,
        clock=clock,
        wait_seconds=0,
        config=config,
        on_outcome=on_outcome,
    )


def _agent_clients(settings: Settings) -> tuple[S3Client, SQSClient, Ledger]:
    """One set per emulator and table (building clients is slow; they are thread-safe)."""
    return _clients(settings.require("aws_endpoint_url"), settings.require("table"), settings)


@functools.lru_cache(maxsize=32)
def _clients(endpoint: str, table: str, settings: Settings) -> tuple[S3Client, SQSClient, Ledger]:
    from mobile_backup.aws import dynamodb_client, s3_client, sqs_client

    return (
        s3_client(settings, component="agent"),
        sqs_client(settings, component="agent"),
        Ledger(dynamodb_client(settings, component="agent"), table),
    )


def files_under(root: Path) -> dict[str, bytes]:
    """The library as a user sees it: every file outside the agent's hidden dir."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".mobile-backup"
    }


@contextmanager
def s3_refuses_tags(s3: S3Client) -> Iterator[list[float]]:
    """While open, S3 answers every PutObjectTagging of `s3` (a real client of the agent's)
    with a 403 AccessDenied, through botocore as a refusal would come; yields the times
    (monotonic) of the tags asked for."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    asked: list[float] = []

    class _Denied:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"

    def refuse(request: Any, **_: Any) -> Any:  # botocore uses the answer it returns
        asked.append(time.monotonic())
        return AWSResponse(request.url, 403, HTTPHeaders(), _Denied())

    event = "before-send.s3.PutObjectTagging"
    s3.meta.events.register_first(event, refuse)
    try:
        yield asked
    finally:
        s3.meta.events.unregister(event, refuse)
