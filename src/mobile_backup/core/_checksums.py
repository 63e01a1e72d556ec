"""SHA-256 helpers: streaming, constant memory, hex and base64 forms."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import BinaryIO

from mobile_backup.core._errors import InvalidInputError

CHUNK_SIZE = 1024 * 1024


def sha256_stream(stream: BinaryIO, *, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Hash a binary stream to the end; return (hex digest, bytes read)."""
    digest = hashlib.sha256()
    total = 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def sha256_file(path: Path, *, chunk_size: int = CHUNK_SIZE) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    with path.open("rb") as fh:
        return sha256_stream(fh, chunk_size=chunk_size)[0]


def hex_to_b64(sha256_hex: str) -> str:
    """Hex digest → the base64 form S3 uses in `x-amz-checksum-sha256`."""
    try:
        raw = bytes.fromhex(sha256_hex)
    except ValueError as exc:
        raise InvalidInputError(f"not a hex digest: {sha256_hex!r}") from exc
    return base64.b64encode(raw).decode("ascii")


def b64_to_hex(sha256_b64: str) -> str:
    """The base64 form S3 returns → hex digest."""
    try:
        return base64.b64decode(sha256_b64, validate=True).hex()
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"not a base64 digest: {sha256_b64!r}") from exc
