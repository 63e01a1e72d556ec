"""AWS list prices, typed in by hand from the public pricing pages, and the always-free
allowances; dated, with a warning once the table is more than a year old."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PRICES_AS_OF = "2025-06"
# A table older than this gets a warning beside every estimate.
PRICES_MAX_AGE_DAYS = 365
PRICE_SOURCE = (
    "AWS public list prices (aws.amazon.com/<service>/pricing), typed in by hand; us-east-1 "
    "checked most carefully, other regions approximate; not fetched live"
)


def prices_age_warning(now: datetime) -> str | None:
    """A sentence when the typed-in price table is more than a year old, else None."""
    as_of = datetime.strptime(PRICES_AS_OF, "%Y-%m").replace(tzinfo=now.tzinfo)
    if now - as_of <= timedelta(days=PRICES_MAX_AGE_DAYS):
        return None
    months = (now.year - as_of.year) * 12 + now.month - as_of.month
    return (
        f"the price table is from {PRICES_AS_OF}, {months} months ago: AWS prices change, so "
        "check the figures with the AWS Pricing Calculator (calculator.aws)"
    )


@dataclass(frozen=True)
class Prices:
    """List prices of one region, USD."""

    region: str
    it_frequent_gb_month: float
    it_infrequent_gb_month: float
    it_archive_instant_gb_month: float
    it_monitoring_per_1k_objects: float
    s3_put_per_1k: float
    s3_get_per_1k: float
    s3_transition_per_1k: float
    s3_tags_per_10k_month: float
    transfer_out_gb: float
    sqs_per_million: float
    ddb_write_per_million: float
    ddb_read_per_million: float
    ddb_storage_gb_month: float
    ddb_pitr_gb_month: float
    lambda_arm_gb_second: float
    lambda_per_million: float
    lambda_snapstart_cache_gb_second: float
    lambda_snapstart_restore_gb: float
    http_api_per_million: float
    cognito_mau: float
    cloudwatch_alarm_metric: float
    cloudwatch_dashboard: float
    kms_key_month: float
    logs_ingest_gb: float
    logs_storage_gb_month: float
    xray_per_million_traces: float


# Always-free allowances per account and month (not the 12-month new-account free tier).
FREE_TRANSFER_OUT_GB = 100.0
FREE_SQS_MILLION = 1.0
FREE_LAMBDA_GB_SECONDS = 400_000.0
FREE_LAMBDA_MILLION = 1.0
FREE_DDB_STORAGE_GB = 25.0
FREE_COGNITO_MAU = 10_000
FREE_ALARMS = 10
FREE_DASHBOARDS = 3
FREE_LOGS_GB = 5.0
FREE_XRAY_TRACES = 100_000

_US = {
    "it_frequent_gb_month": 0.023,
    "it_infrequent_gb_month": 0.0125,
    "it_archive_instant_gb_month": 0.004,
    "it_monitoring_per_1k_objects": 0.0025,
    "s3_put_per_1k": 0.005,
    "s3_get_per_1k": 0.0004,
    "s3_transition_per_1k": 0.01,
    "s3_tags_per_10k_month": 0.01,
    "transfer_out_gb": 0.09,
    "sqs_per_million": 0.40,
    # After DynamoDB's November 2024 on-demand price cut.
    "ddb_write_per_million": 0.625,
    "ddb_read_per_million": 0.125,
    "ddb_storage_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "lambda_arm_gb_second": 0.0000133334,
    "lambda_per_million": 0.20,
    # SnapStart (the template's SnapStart=on): the cached snapshot of each published version
    # while it is active, and each restore, by the function's memory.
    "lambda_snapstart_cache_gb_second": 0.0000015046,
    "lambda_snapstart_restore_gb": 0.0001397998,
    "http_api_per_million": 1.00,
    "cognito_mau": 0.0055,
    "cloudwatch_alarm_metric": 0.10,
    "cloudwatch_dashboard": 3.00,
    # A customer managed key (the alarm topic's), prorated hourly; its few requests are free.
    "kms_key_month": 1.00,
    "logs_ingest_gb": 0.50,
    "logs_storage_gb_month": 0.03,
    "xray_per_million_traces": 5.00,
}

PRICES: dict[str, Prices] = {
    "us-east-1": Prices(region="us-east-1", **_US),
    "us-west-2": Prices(region="us-west-2", **_US),
    "eu-west-1": Prices(
        region="eu-west-1",
        **{
            **_US,
            "ddb_write_per_million": 0.7068,
            "ddb_read_per_million": 0.1415,
            "ddb_storage_gb_month": 0.283,
            "ddb_pitr_gb_month": 0.2264,
            "http_api_per_million": 1.11,
        },
    ),
    "eu-central-1": Prices(
        region="eu-central-1",
        **{
            **_US,
            "it_frequent_gb_month": 0.0245,
            "it_infrequent_gb_month": 0.0135,
            "it_archive_instant_gb_month": 0.005,
            "s3_put_per_1k": 0.0054,
            "s3_get_per_1k": 0.00043,
            "ddb_write_per_million": 0.7625,
            "ddb_read_per_million": 0.1525,
            "ddb_storage_gb_month": 0.306,
            "ddb_pitr_gb_month": 0.2448,
            "http_api_per_million": 1.20,
            "logs_ingest_gb": 0.63,
            "logs_storage_gb_month": 0.0324,
        },
    ),
}
