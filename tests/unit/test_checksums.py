from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from mobile_backup.core import InvalidInputError, b64_to_hex, hex_to_b64, sha256_file, sha256_stream


def test_stream_and_file_hash_agree_with_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # spans several chunks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk_size=4096) == expected
    assert sha256_stream(io.BytesIO(data)) == (expected, len(data))


def test_hex_and_base64_forms_round_trip() -> None:
    digest = hashlib.sha256(b"hello world").hexdigest()
    b64 = hex_to_b64(digest)
    assert b64 == "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
    assert b64_to_hex(b64) == digest


@pytest.mark.parametrize("bad", ["zz", "abc"])
def test_bad_hex_is_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        hex_to_b64(bad)


def test_bad_base64_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        b64_to_hex("not base64!")
