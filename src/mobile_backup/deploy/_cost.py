"""What the stack costs a month, itemised by service, from a usage profile.

The prices are list prices in USD, typed in by hand from AWS's public pricing pages (see
`PRICES_AS_OF` and `PRICE_SOURCE`); they are not fetched, so check the AWS Pricing
Calculator before relying on a figure. Every estimate is shown twice: at list price, and as
billed after the always-free allowances (100 GB/month of transfer out, 1 M SQS requests,
Lambda's 400,000 GB-s, 10 alarms, ...) — those are per account, so another workload in the
same account may already use them.

The model, in one paragraph: every uploaded byte is stored until the PC has collected it
and then `RetentionDays` more (Intelligent-Tiering, so copies older than 30 days without
access cost less), is downloaded exactly once to the PC (data transfer out: the dominant
cost once a household passes the free 100 GB a month), and costs a handful of requests on
the way (presign batches, PUT/parts, tag, GET; SQS send/receive/delete; ledger writes).
Lambda's SQS poller and the PC agent long-poll around the clock: ~0.8 M requests a month
even when nothing is uploaded, inside the SQS free tier.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mobile_backup.core import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    InvalidInputError,
    PartPlan,
)
from mobile_backup.deploy._prices import (
    FREE_ALARMS,
    FREE_COGNITO_MAU,
    FREE_DASHBOARDS,
    FREE_DDB_STORAGE_GB,
    FREE_LAMBDA_GB_SECONDS,
    FREE_LAMBDA_MILLION,
    FREE_LOGS_GB,
    FREE_SQS_MILLION,
    FREE_TRANSFER_OUT_GB,
    FREE_XRAY_TRACES,
    PRICES,
    Prices,
)

if TYPE_CHECKING:
    from mobile_backup.core.wire import FileView

__all__ = [
    "SEED_ESTIMATE",
    "CostLine",
    "Estimate",
    "Usage",
    "estimate",
    "usage_from_records",
]

# The project brief's promise, printed beside every estimate.
SEED_ESTIMATE = (3.0, 12.0)

# AWS bills storage and transfer per "GB" of 2^30 bytes; dividing by 10^9 instead overstates
# those lines by 7%, which errs on the safe side and keeps the arithmetic readable.
GB = 1_000_000_000
MB = 1_000_000
SECONDS_PER_MONTH = 30 * 24 * 3600
# The template's MemorySize of each function, in GB (a test compares them).
API_MEMORY_GB = 0.5
INGEST_MEMORY_GB = 0.25
LONG_POLL_SECONDS = 20
LAMBDA_SQS_POLLERS = 5  # Lambda's SQS event source starts with five long-polling connections


@dataclass(frozen=True)
class Usage:
    """A household's month. Sizes in MB (10^6 bytes)."""

    photos_per_month: float = 1000
    videos_per_month: float = 20
    photo_mb: float = 3.0
    video_mb: float = 150.0
    users: int = 4
    retention_days: float = 30  # the template's RetentionDays: kept after the PC has it
    pc_delay_days: float = 1.0  # how long a file waits for the PC to collect it
    agent_online_fraction: float = 1.0  # share of the month the agent is long-polling
    files_per_presign: float = 10  # files per POST /v1/uploads (phones batch; up to 100)
    # The upload client's own defaults (core/_parts.py), so the request count is the real one.
    multipart_part_mb: float = DEFAULT_PART_SIZE / MB
    multipart_threshold_mb: float = DEFAULT_MULTIPART_THRESHOLD / MB
    snapstart: bool = False  # the template's SnapStart parameter
    source: str = "usage profile"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise InvalidInputError(f"{f.name} cannot be negative ({value})")
        if self.files_per_presign < 1 or self.multipart_part_mb <= 0:
            raise InvalidInputError("files_per_presign must be ≥ 1 and multipart_part_mb > 0")
        if self.agent_online_fraction > 1:
            raise InvalidInputError("agent_online_fraction is a share of the month (0-1)")

    @property
    def files(self) -> float:
        return self.photos_per_month + self.videos_per_month

    @property
    def gb_uploaded(self) -> float:
        return (self.photos_per_month * self.photo_mb + self.videos_per_month * self.video_mb) / (
            GB / MB
        )

    @property
    def video_parts(self) -> int:
        """Parts per video (1 = a single PUT), cut as the client cuts them."""
        if self.video_mb < self.multipart_threshold_mb:
            return 1
        preferred = min(max(round(self.multipart_part_mb * MB), MIN_PART_SIZE), MAX_PART_SIZE)
        return PartPlan.choose(round(self.video_mb * MB), preferred=preferred).count


@dataclass(frozen=True)
class CostLine:
    """One priced item."""

    service: str
    item: str
    quantity: float
    unit: str
    list_usd: float
    billed_usd: float
    note: str = ""


@dataclass(frozen=True)
class Estimate:
    """An itemised monthly estimate."""

    usage: Usage
    prices: Prices
    lines: list[CostLine] = field(default_factory=list)

    @property
    def list_total(self) -> float:
        return sum(line.list_usd for line in self.lines)

    @property
    def billed_total(self) -> float:
        return sum(line.billed_usd for line in self.lines)

    def by_service(self) -> dict[str, tuple[float, float]]:
        """Service → (list, billed), in the order the lines were added."""
        totals: dict[str, tuple[float, float]] = {}
        for line in self.lines:
            listed, billed = totals.get(line.service, (0.0, 0.0))
            totals[line.service] = (listed + line.list_usd, billed + line.billed_usd)
        return totals


THUMB_BYTES = 10_000
FULL_PASSES_PER_MONTH = 30 / 7


def _tier_days(days: float) -> tuple[float, float, float]:
    """Days an object spends in Intelligent-Tiering's frequent, infrequent, archive tiers.

    Objects move to infrequent after 30 days without access and to archive instant after
    90; nothing reads a copy once the PC has it, so the clock runs from upload.
    """
    frequent = min(days, 30.0)
    infrequent = min(max(days - 30.0, 0.0), 60.0)
    archive = max(days - 90.0, 0.0)
    return frequent, infrequent, archive


def estimate(usage: Usage, region: str = "us-east-1") -> Estimate:
    """The monthly bill of a household with `usage`, in steady state."""
    prices = PRICES.get(region)
    if prices is None:
        known = ", ".join(sorted(PRICES))
        raise InvalidInputError(f"no price table for {region} (known: {known})")
    p, u = prices, usage
    lines: list[CostLine] = []

    def add(
        service: str,
        item: str,
        quantity: float,
        unit: str,
        list_usd: float,
        billed_usd: float | None = None,
        note: str = "",
    ) -> None:
        billed = list_usd if billed_usd is None else billed_usd
        lines.append(CostLine(service, item, quantity, unit, list_usd, max(billed, 0.0), note))

    # S3 storage: each month's uploads stay pc_delay + retention days.
    days = u.pc_delay_days + u.retention_days
    frequent, infrequent, archive = _tier_days(days)
    gb = u.gb_uploaded
    add(
        "S3 storage",
        "Intelligent-Tiering, frequent",
        gb * frequent / 30,
        "GB-month",
        gb * frequent / 30 * p.it_frequent_gb_month,
    )
    if infrequent:
        add(
            "S3 storage",
            "Intelligent-Tiering, infrequent (30+ days)",
            gb * infrequent / 30,
            "GB-month",
            gb * infrequent / 30 * p.it_infrequent_gb_month,
        )
    if archive:
        add(
            "S3 storage",
            "Intelligent-Tiering, archive instant (90+ days)",
            gb * archive / 30,
            "GB-month",
            gb * archive / 30 * p.it_archive_instant_gb_month,
        )
    # The app's thumbnails stay (the gallery after free-up): ~10 KB a photo, a year's worth.
    # Objects under 128 KB are never moved to a cheaper tier of Intelligent-Tiering.
    thumbs_gb = u.photos_per_month * 12 * THUMB_BYTES / GB
    add(
        "S3 storage",
        "thumbnails (kept; a year's photos)",
        thumbs_gb,
        "GB-month",
        thumbs_gb * p.it_frequent_gb_month,
    )
    objects = u.files * days / 30
    add(
        "S3 storage",
        "Intelligent-Tiering monitoring",
        objects,
        "objects",
        objects / 1000 * p.it_monitoring_per_1k_objects,
    )
    add(
        "S3 storage",
        "object tags (state=downloaded)",
        objects,
        "tags",
        objects / 10_000 * p.s3_tags_per_10k_month,
    )

    # S3 requests: PUT-class (PUT, parts, create/complete, tagging), GET, lifecycle.
    parts = u.video_parts
    video_puts = parts + (2 if parts > 1 else 0)
    # A photo: its PUT, its tag and its thumbnail's PUT.
    puts = u.photos_per_month * 3 + u.videos_per_month * (video_puts + 1)
    gets = u.photos_per_month + u.videos_per_month * parts
    add("S3 requests", "PUT, parts, tagging", puts, "requests", puts / 1000 * p.s3_put_per_1k)
    add("S3 requests", "GET by the PC agent", gets, "requests", gets / 1000 * p.s3_get_per_1k)
    add(
        "S3 requests",
        "lifecycle transitions to Intelligent-Tiering",
        u.files,
        "requests",
        u.files / 1000 * p.s3_transition_per_1k,
    )

    # Data transfer out: every byte goes to the PC once. Uploads (data in) are free.
    add(
        "Data transfer out",
        "S3 → your PC (internet)",
        gb,
        "GB",
        gb * p.transfer_out_gb,
        max(gb - FREE_TRANSFER_OUT_GB, 0.0) * p.transfer_out_gb,
        note=f"first {FREE_TRANSFER_OUT_GB:.0f} GB/month free per account",
    )

    # API Gateway: presign batches, multipart completions, status/list calls.
    api_requests = (
        u.files / u.files_per_presign
        + (u.videos_per_month if parts > 1 else 0)
        + u.users * 30  # a status / file list a day per member
    )
    add(
        "API Gateway",
        "HTTP API requests",
        api_requests,
        "requests",
        api_requests / 1e6 * p.http_api_per_million,
        note="free tier only in an account's first 12 months",
    )

    # Lambda: API invocations + one ingest invocation per S3 event.
    api_gb_s = api_requests * 0.060 * API_MEMORY_GB  # ~60 ms
    ingest_gb_s = u.files * 0.080 * INGEST_MEMORY_GB  # ~80 ms
    invocations = api_requests + u.files
    gb_s = api_gb_s + ingest_gb_s
    add(
        "Lambda",
        "invocations",
        invocations,
        "requests",
        invocations / 1e6 * p.lambda_per_million,
        max(invocations / 1e6 - FREE_LAMBDA_MILLION, 0) * p.lambda_per_million,
    )
    add(
        "Lambda",
        "compute (arm64)",
        gb_s,
        "GB-s",
        gb_s * p.lambda_arm_gb_second,
        max(gb_s - FREE_LAMBDA_GB_SECONDS, 0) * p.lambda_arm_gb_second,
    )
    if u.snapstart:
        cached = (API_MEMORY_GB + INGEST_MEMORY_GB) * SECONDS_PER_MONTH
        add(
            "Lambda",
            "SnapStart snapshots kept",
            cached,
            "GB-s",
            cached * p.lambda_snapstart_cache_gb_second,
            note="both functions' published versions, all month",
        )
        restored = api_requests * API_MEMORY_GB + u.files * INGEST_MEMORY_GB
        add(
            "Lambda",
            "SnapStart restores",
            restored,
            "GB",
            restored * p.lambda_snapstart_restore_gb,
            note="at most one per invocation (an upper bound)",
        )

    # SQS: per file (events: S3 send, delete; downloads: send, receive, delete) + idle polls.
    polls = SECONDS_PER_MONTH / LONG_POLL_SECONDS
    idle = polls * LAMBDA_SQS_POLLERS + polls * u.agent_online_fraction
    per_file = u.files * 5
    sqs_million = (idle + per_file) / 1e6
    add(
        "SQS",
        "requests (incl. long polls around the clock)",
        idle + per_file,
        "requests",
        sqs_million * p.sqs_per_million,
        max(sqs_million - FREE_SQS_MILLION, 0) * p.sqs_per_million,
        note=f"{idle / 1e6:.2f} M are idle long polls",
    )

    # DynamoDB on demand: ~15 write units per file (4 state changes of the item; the sparse
    # awaiting index on 2 of them, the capture-time index on 2, the change index on all 4;
    # the member's counts moved by the upload, the reservations counted once per presign
    # batch and the agent's receipts once per batch of ten, ledger/_counts.py) and ~3 read
    # units; items stay (the ledger is the record), ~2 KB each in the table and in each of
    # the two indexes that project the whole item.
    writes, reads = u.files * 15, u.files * 3 + api_requests
    add("DynamoDB", "write request units", writes, "WRU", writes / 1e6 * p.ddb_write_per_million)
    add("DynamoDB", "read request units", reads, "RRU", reads / 1e6 * p.ddb_read_per_million)
    # The PC's reconcile: incremental passes read only what changed (a few entries), a full
    # pass a week reads every entry (a year's files; eventually consistent, 2 KB each).
    entries = u.files * 12
    full_reads = entries * FULL_PASSES_PER_MONTH * 2000 / 4096 * 0.5
    add(
        "DynamoDB",
        "read request units, the PC's weekly full reconcile",
        full_reads,
        "RRU",
        full_reads / 1e6 * p.ddb_read_per_million,
        note=f"{entries:,.0f} entries a pass; the 6-hourly passes read only what changed",
    )
    ledger_gb = u.files * 12 * 6000 / GB  # after a year: the item and two full indexes
    add(
        "DynamoDB",
        "storage (ledger after a year)",
        ledger_gb,
        "GB",
        ledger_gb * p.ddb_storage_gb_month,
        max(ledger_gb - FREE_DDB_STORAGE_GB, 0) * p.ddb_storage_gb_month,
    )
    add("DynamoDB", "point-in-time recovery", ledger_gb, "GB", ledger_gb * p.ddb_pitr_gb_month)

    # Cognito: household members are monthly active users.
    add(
        "Cognito",
        "monthly active users",
        u.users,
        "MAU",
        u.users * p.cognito_mau,
        max(u.users - FREE_COGNITO_MAU, 0) * p.cognito_mau,
        note=f"{FREE_COGNITO_MAU:,} MAU free",
    )

    # CloudWatch: the template's alarms (one metric each), 1 dashboard, logs.
    alarms = template_count("AWS::CloudWatch::Alarm")
    add(
        "CloudWatch",
        "alarms",
        alarms,
        "alarm metrics",
        alarms * p.cloudwatch_alarm_metric,
        max(alarms - FREE_ALARMS, 0) * p.cloudwatch_alarm_metric,
        note=f"{FREE_ALARMS} alarms free per account",
    )
    add(
        "CloudWatch",
        "dashboard",
        1,
        "dashboards",
        p.cloudwatch_dashboard,
        0.0 if FREE_DASHBOARDS >= 1 else p.cloudwatch_dashboard,
        note=f"{FREE_DASHBOARDS} dashboards free per account",
    )
    keys = template_count("AWS::KMS::Key")
    add(
        "KMS",
        "customer managed key (the alarm topic's)",
        keys,
        "keys",
        keys * p.kms_key_month,
        note="encrypts the alarm notifications at rest",
    )
    logs_gb = (api_requests * 1500 + u.files * 1500) / GB  # access log + function logs
    add(
        "CloudWatch",
        "logs ingested (30-day retention)",
        logs_gb,
        "GB",
        logs_gb * (p.logs_ingest_gb + p.logs_storage_gb_month),
        max(logs_gb - FREE_LOGS_GB, 0) * (p.logs_ingest_gb + p.logs_storage_gb_month),
    )
    add(
        "X-Ray",
        "traces (active tracing)",
        invocations,
        "traces",
        invocations / 1e6 * p.xray_per_million_traces,
        max(invocations - FREE_XRAY_TRACES, 0) / 1e6 * p.xray_per_million_traces,
    )
    return Estimate(usage=u, prices=p, lines=lines)


@functools.cache
def template_count(resource_type: str) -> int:
    """How many resources of a type the shipped template creates (by default)."""
    from mobile_backup.infra import load_template

    resources = load_template()["Resources"]
    return sum(
        1 for r in resources.values() if r.get("Type") == resource_type and "Condition" not in r
    )


def usage_from_records(
    records: Iterable[FileView],
    *,
    now: datetime,
    days: int = 30,
    base: Usage | None = None,
) -> Usage:
    """A usage profile from the ledger: what arrived in the last `days` days, per month.

    Only the counts and sizes come from the records; everything else (retention, members,
    batching) from `base`.
    """
    base = base or Usage()
    since = now - timedelta(days=days)
    photos: list[int] = []
    videos: list[int] = []
    for record in records:
        if record.created_at < since:
            continue
        (videos if record.content_type.startswith("video/") else photos).append(record.size)
    if not photos and not videos:
        raise InvalidInputError(f"no uploads in the last {days} days to estimate from")
    scale = 30 / days
    return replace(
        base,
        photos_per_month=len(photos) * scale,
        videos_per_month=len(videos) * scale,
        photo_mb=(sum(photos) / len(photos) / MB) if photos else base.photo_mb,
        video_mb=(sum(videos) / len(videos) / MB) if videos else base.video_mb,
        source=f"ledger, last {days} days",
    )
