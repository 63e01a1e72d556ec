from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobile_backup.core import (
    InvalidKeyError,
    ObjectKey,
    decode_event_key,
    object_key,
    parse_object_key,
)

SUB = "3f1c2d4e-8b7a-4c1e-9f00-1a2b3c4d5e6f"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_key_scheme_is_media_user_sha() -> None:
    assert object_key(SUB, SHA) == f"media/{SUB}/{SHA}"


def test_parse_round_trips() -> None:
    parsed = parse_object_key(object_key(SUB, SHA))
    assert parsed == ObjectKey(user_sub=SUB, sha256=SHA)
    assert str(parsed) == f"media/{SUB}/{SHA}"


@pytest.mark.parametrize(
    "key",
    [
        f"other/{SUB}/{SHA}",
        f"media/{SUB}",
        f"media/{SUB}/{SHA}/extra",
        f"media/{SUB}/{SHA.upper()}",
        f"media/{SUB}/{SHA[:-1]}",
        f"media/../{SHA}",
        f"media//{SHA}",
        f"media/a b/{SHA}",
    ],
)
def test_parse_rejects_keys_outside_the_scheme(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        parse_object_key(key)


@pytest.mark.parametrize("sub", ["", "../x", "a/b", "a b", "é"])
def test_object_key_refuses_bad_user_parts(sub: str) -> None:
    with pytest.raises(InvalidKeyError):
        object_key(sub, SHA)


def test_object_key_refuses_non_hex_digest() -> None:
    with pytest.raises(InvalidKeyError):
        object_key(SUB, "z" * 64)


def test_event_keys_are_url_decoded_with_plus_as_space() -> None:
    assert decode_event_key("uploads/My+Holiday+Photo.jpg") == "uploads/My Holiday Photo.jpg"
    assert decode_event_key("media%2Fabc%2Fdef") == "media/abc/def"
    assert decode_event_key("a%2Bb") == "a+b"


@given(st.uuids(), st.binary(min_size=32, max_size=32))
def test_every_valid_key_round_trips(sub: object, digest: bytes) -> None:
    key = object_key(str(sub), digest.hex())
    assert str(parse_object_key(key)) == key
