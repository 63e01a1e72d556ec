"""`fast_timestamp` gives what botocore's own parser gives, for every form it may meet."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from botocore.utils import parse_timestamp

from mobile_backup.aws import dynamodb_client, s3_client
from mobile_backup.aws._parsing import fast_timestamp
from mobile_backup.core import EMULATOR_KEY, Settings


def _http_dates() -> list[str]:
    """HTTP dates as S3 writes them, over every month and weekday of many years."""
    rng = random.Random(34)
    start = datetime(1999, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(seconds=rng.randrange(40 * 365 * 86400)) for _ in range(400)]
    return [format_datetime(m.replace(microsecond=0), usegmt=True) for m in moments]


OTHER_FORMS: list[Any] = [
    "2026-12-04T23:10:00.000Z",
    "2026-12-04T23:10:00+01:00",
    "2026-12-04T23:10:00.123456Z",
    "1733353800",
    1733353800.5,
    "Fri, 04 Dec 2026 23:10:00 +0100",
]


@pytest.mark.parametrize("value", _http_dates())
def test_an_http_date_parses_to_botocores_datetime(value: str) -> None:
    ours, theirs = fast_timestamp(value), parse_timestamp(value)
    assert ours == theirs
    assert type(ours.tzinfo) is type(theirs.tzinfo)
    assert ours.utcoffset() == theirs.utcoffset()


@pytest.mark.parametrize("value", OTHER_FORMS)
def test_every_other_form_is_botocores_own_reading(value: Any) -> None:
    ours, theirs = fast_timestamp(value), parse_timestamp(value)
    assert (ours, repr(ours.tzinfo)) == (theirs, repr(theirs.tzinfo))


def test_a_date_that_is_not_one_fails_as_botocore_fails() -> None:
    for value in ("Fri, 99 Dec 2026 23:10:00 GMT", "yesterday GMT"):
        with pytest.raises(ValueError, match="Invalid timestamp") as theirs:
            parse_timestamp(value)
        with pytest.raises(ValueError, match="Invalid timestamp") as ours:
            fast_timestamp(value)
        assert str(ours.value) == str(theirs.value)


def test_the_products_clients_parse_with_it() -> None:
    settings = Settings.explicit(
        profile="timestamps", local=True, region="eu-west-1",
        aws_endpoint_url="http://127.0.0.1:9", aws_access_key_id=EMULATOR_KEY,
        aws_secret_access_key=EMULATOR_KEY,
    )  # fmt: skip
    clients: tuple[Any, ...] = (
        s3_client(settings, component="test"),
        dynamodb_client(settings, component="test"),
    )
    for client in clients:
        # botocore parses each answer with a parser its endpoint's factory makes.
        factory = client._endpoint._response_parser_factory
        parser = factory.create_parser(client.meta.service_model.protocol)
        assert parser._timestamp_parser is fast_timestamp
