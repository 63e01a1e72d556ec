"""A download message validates itself: neither the ingest nor the agent can use a bad one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from mobile_backup.core import DownloadMessage, object_key

SUB = "3f6a2c1e-8b4d-4e1f-9a7c-2d5e6f708192"
SHA = "a" * 64


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "bucket": "media",
        "key": object_key(SUB, SHA),
        "user_sub": SUB,
        "sha256": SHA,
        "size": 10,
        "filename": "IMG_0001.jpg",
        "content_type": "image/jpeg",
        "uploaded_at": datetime(2026, 11, 29, tzinfo=UTC),
    }
    return base | changes


def test_a_well_formed_message_round_trips() -> None:
    message = DownloadMessage(**fields())
    assert DownloadMessage.from_json(message.to_json()) == message


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"key": object_key(SUB, "b" * 64)}, "is not"),  # another content's key
        ({"key": f"media/{SUB}/../{SHA}"}, "is not"),
        ({"sha256": "A" * 64, "key": f"media/{SUB}/{'A' * 64}"}, "SHA-256"),
        ({"user_sub": "../other", "key": f"media/../other/{SHA}"}, "user id"),
        ({"size": -1}, "greater than or equal to 0"),
        ({"v": 2}, "Input should be 1"),
        ({"bucket": ""}, "at least 1 character"),
    ],
)
def test_a_bad_message_cannot_be_built_or_read(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        DownloadMessage(**fields(**changes))
    body = DownloadMessage.model_construct(**fields(**changes)).model_dump_json()
    with pytest.raises(ValidationError, match=says):
        DownloadMessage.from_json(body)
