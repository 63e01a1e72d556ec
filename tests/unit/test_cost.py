"""The cost estimate: arithmetic checked by hand, free tiers, tiers, the ledger, the CLI."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from mobile_backup.cli import app
from mobile_backup.core import FileStatus, InvalidInputError
from mobile_backup.core.wire import FileView
from mobile_backup.deploy import (
    PRICE_SOURCE,
    PRICES,
    PRICES_AS_OF,
    SEED_ESTIMATE,
    Prices,
    Usage,
    estimate,
    prices_age_warning,
    usage_from_records,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def line(result: object, service: str, item_start: str) -> float:
    (found,) = [
        entry
        for entry in result.lines  # type: ignore[attr-defined]
        if entry.service == service and entry.item.startswith(item_start)
    ]
    return float(found.list_usd)


def test_the_price_table_is_dated_and_complete() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}", PRICES_AS_OF)
    assert "not fetched live" in PRICE_SOURCE
    assert {"us-east-1", "eu-west-1", "eu-central-1"} <= set(PRICES)
    for region, prices in PRICES.items():
        assert prices.region == region
        for f in fields(Prices):
            if f.name != "region":
                assert getattr(prices, f.name) > 0, (region, f.name)
    assert SEED_ESTIMATE == (3.0, 12.0)


def test_photos_only_by_hand() -> None:
    usage = Usage(
        photos_per_month=1000,
        videos_per_month=0,
        photo_mb=3.0,
        retention_days=29,
        pc_delay_days=1,
        users=1,
    )
    result = estimate(usage, "us-east-1")
    # 3 GB stay 30 days: one GB-month each, all in the frequent tier.
    assert line(result, "S3 storage", "Intelligent-Tiering, frequent") == pytest.approx(3 * 0.023)
    # Each photo: a PUT, a tagging PUT and its thumbnail's PUT; one GET; one lifecycle
    # transition. Its thumbnail (10 KB) stays: a year of them, 12,000, in the frequent tier.
    assert line(result, "S3 requests", "PUT") == pytest.approx(3000 / 1000 * 0.005)
    assert line(result, "S3 storage", "thumbnails") == pytest.approx(12_000 * 10_000 / 1e9 * 0.023)
    # A weekly full reconcile reads the year's 12,000 entries (2 KB each, eventually
    # consistent: a quarter of a read unit each), 30/7 times a month.
    assert line(result, "DynamoDB", "read request units, the PC's") == pytest.approx(
        12_000 * 30 / 7 * 2000 / 4096 * 0.5 / 1e6 * 0.125
    )
    assert line(result, "S3 requests", "GET") == pytest.approx(1000 / 1000 * 0.0004)
    assert line(result, "S3 requests", "lifecycle") == pytest.approx(1000 / 1000 * 0.01)
    assert line(result, "Data transfer out", "S3") == pytest.approx(3 * 0.09)
    assert not [e for e in result.lines if "infrequent" in e.item or "archive" in e.item]
    assert result.list_total == pytest.approx(sum(e.list_usd for e in result.lines))
    assert result.billed_total <= result.list_total


def test_transfer_out_to_the_pc_is_the_dominant_cost_past_the_free_100_gb() -> None:
    heavy = Usage(photos_per_month=20_000, videos_per_month=500, photo_mb=4, video_mb=300)
    assert heavy.gb_uploaded == pytest.approx(230)
    result = estimate(heavy, "us-east-1")
    by_service = result.by_service()
    transfer_list, transfer_billed = by_service["Data transfer out"]
    assert transfer_list == pytest.approx(230 * 0.09)
    assert transfer_billed == pytest.approx((230 - 100) * 0.09)
    assert transfer_list == max(listed for listed, _ in by_service.values())
    assert transfer_billed == max(billed for _, billed in by_service.values())


def test_under_100_gb_a_month_the_transfer_is_free() -> None:
    result = estimate(Usage(), "us-east-1")
    assert result.by_service()["Data transfer out"][1] == 0.0
    # The default household lands inside the seed's range at list price, and far below it
    # once the account's always-free allowances apply.
    low, high = SEED_ESTIMATE
    assert low <= result.list_total <= high
    assert result.billed_total < low


def test_long_retention_moves_copies_to_cheaper_tiers() -> None:
    short = estimate(Usage(retention_days=10), "us-east-1")
    long = estimate(Usage(retention_days=179), "us-east-1")  # 180 days in the cloud
    assert [e.item for e in long.lines if e.service == "S3 storage"][:3] == [
        "Intelligent-Tiering, frequent",
        "Intelligent-Tiering, infrequent (30+ days)",
        "Intelligent-Tiering, archive instant (90+ days)",
    ]
    gb = Usage().gb_uploaded
    assert line(long, "S3 storage", "Intelligent-Tiering, infrequent") == pytest.approx(
        gb * 60 / 30 * 0.0125
    )
    assert line(long, "S3 storage", "Intelligent-Tiering, archive") == pytest.approx(
        gb * 90 / 30 * 0.004
    )
    assert long.list_total > short.list_total


def test_big_videos_go_in_parts() -> None:
    usage = Usage(photos_per_month=0, videos_per_month=10, video_mb=160, multipart_part_mb=16)
    assert usage.video_parts == 10
    result = estimate(usage, "us-east-1")
    # 10 parts + create + complete + one tagging per video.
    assert line(result, "S3 requests", "PUT") == pytest.approx(10 * 13 / 1000 * 0.005)
    assert Usage(video_mb=50).video_parts == 6  # 8 MiB parts from 16 MiB up, as the client
    assert Usage(video_mb=10).video_parts == 1


def test_idle_long_polls_are_counted_and_free() -> None:
    idle = estimate(Usage(photos_per_month=0, videos_per_month=0), "us-east-1")
    (sqs,) = [e for e in idle.lines if e.service == "SQS"]
    # Lambda's 5 pollers and the agent, one 20-second long poll each, all month.
    assert sqs.quantity == pytest.approx(6 * 30 * 24 * 3600 / 20)
    assert sqs.billed_usd == 0.0
    assert sqs.list_usd > 0


def test_regions_differ_and_unknown_regions_are_refused() -> None:
    assert estimate(Usage(), "eu-central-1").list_total > estimate(Usage(), "us-east-1").list_total
    with pytest.raises(InvalidInputError, match="no price table for mars-1"):
        estimate(Usage(), "mars-1")


@pytest.mark.parametrize(
    "bad",
    [
        {"photos_per_month": -1},
        {"files_per_presign": 0},
        {"agent_online_fraction": 1.5},
    ],
)
def test_impossible_usage_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        Usage(**bad)  # type: ignore[arg-type]


def record(days_ago: float, size: int, content_type: str) -> FileView:
    return FileView(
        sha256="0" * 64,
        filename="x",
        size=size,
        content_type=content_type,
        status=FileStatus.DOWNLOADED,
        created_at=NOW - timedelta(days=days_ago),
    )


def test_usage_from_the_ledger_counts_the_last_30_days() -> None:
    records = [
        record(1, 2_000_000, "image/jpeg"),
        record(2, 4_000_000, "image/heic"),
        record(3, 100_000_000, "video/mp4"),
        record(45, 999_000_000, "video/mp4"),  # too old
    ]
    usage = usage_from_records(records, now=NOW, base=Usage(users=2, retention_days=7))
    assert (usage.photos_per_month, usage.videos_per_month) == (2, 1)
    assert (usage.photo_mb, usage.video_mb) == (3.0, 100.0)
    assert (usage.users, usage.retention_days) == (2, 7)
    assert usage.source == "ledger, last 30 days"
    with pytest.raises(InvalidInputError, match="no uploads"):
        usage_from_records(records[3:], now=NOW)


def test_cost_command_prints_the_itemised_estimate_beside_the_seed() -> None:
    result = CliRunner().invoke(app, ["cost", "--photos", "2000", "--region", "eu-west-1"])
    assert result.exit_code == 0, result.output
    for text in ("Data transfer out", "S3 storage", "DynamoDB", "Cognito", "CloudWatch"):
        assert text in result.output
    assert "$3 to $12 a month" in result.output
    assert f"List prices as of {PRICES_AS_OF}, eu-west-1" in result.output


def test_cost_command_json_is_the_same_estimate() -> None:
    result = CliRunner().invoke(app, ["cost", "--json", "--videos", "0", "--photos", "1000"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = estimate(Usage(videos_per_month=0, photos_per_month=1000), "us-east-1")
    assert data["list_total"] == pytest.approx(expected.list_total)
    assert data["billed_total"] == pytest.approx(expected.billed_total)
    assert data["prices_as_of"] == PRICES_AS_OF
    assert set(data["by_service"]) == set(expected.by_service())


def test_the_estimate_assumes_the_upload_commands_real_defaults() -> None:
    """Part size and threshold come from what `upload` really does, not a copy of them."""
    import inspect

    from mobile_backup.commands.upload import MIB, upload

    defaults = inspect.signature(upload).parameters
    assert Usage().multipart_part_mb * 1e6 == defaults["part_size"].default * MIB
    assert Usage().multipart_threshold_mb * 1e6 == defaults["multipart_threshold"].default * MIB


def test_an_old_price_table_is_flagged() -> None:
    as_of = datetime.strptime(PRICES_AS_OF, "%Y-%m").replace(tzinfo=UTC)
    assert prices_age_warning(as_of + timedelta(days=300)) is None
    warning = prices_age_warning(as_of + timedelta(days=400))
    assert warning is not None
    assert f"from {PRICES_AS_OF}, 13 months ago" in warning


def test_the_cost_summary_agrees_in_number() -> None:
    result = CliRunner().invoke(
        app, ["cost", "--photos", "1", "--videos", "1", "--members", "1", "--retention-days", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "1 photo (mean" in result.output
    assert "1 video (mean" in result.output
    assert "1 member;" in result.output
    assert "kept 1 day after" in result.output
    many = CliRunner().invoke(app, ["cost", "--retention-days", "30"])
    text = " ".join(many.output.split())  # Rich wraps at the terminal's width
    assert "1,000 photos" in text
    assert "4 members" in text
    assert "kept 30 days" in text


def test_snapstart_is_priced_by_the_functions_memory_in_the_template() -> None:
    from mobile_backup.deploy._cost import API_MEMORY_GB, INGEST_MEMORY_GB
    from mobile_backup.infra import load_template

    resources = load_template()["Resources"]
    assert resources["ApiFunction"]["Properties"]["MemorySize"] == API_MEMORY_GB * 1024
    assert resources["IngestFunction"]["Properties"]["MemorySize"] == INGEST_MEMORY_GB * 1024
    plain, snap = estimate(Usage()), estimate(Usage(snapstart=True))
    kept = line(snap, "Lambda", "SnapStart snapshots")
    # 0.75 GB kept for a 30-day month at $0.0000015046 per GB-second.
    assert kept == pytest.approx(0.75 * 30 * 24 * 3600 * 0.0000015046)
    assert 2.5 < kept < 3.5  # what deploy --snapstart's help and the template say
    assert snap.billed_total > plain.billed_total + kept - 0.01
    assert not [e for e in plain.lines if e.item.startswith("SnapStart")]
    result = CliRunner().invoke(app, ["cost", "--snapstart", "--json"])
    assert result.exit_code == 0, result.output
    assert "SnapStart snapshots kept" in result.output
