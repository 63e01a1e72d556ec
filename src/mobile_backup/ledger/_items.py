"""The ledger's items and their records: keys, cursors and the item ↔ `FileRecord` codec.

Shared by the ledger's reads and writes (`_ledger.py`); nothing here calls DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from mobile_backup.core import FileRecord, InvalidInputError, Receipt
from mobile_backup.ledger._pcs import MAIN_PC

RECEIPT_PREFIX = "receipt@"
MISSING_PREFIX = "missing@"
FILE_PREFIX = "FILE#"
MEMBERS_PK = "MEMBERS"
MEMBER_PREFIX = "MEMBER#"
FOLDER_PREFIX = "FOLDER#"
FOLDER_SK = "FOLDER"
AWAITING_PK_VALUE = "UPLOADED"
MAX_PAGE = 1000


def user_pk(user_sub: str) -> str:
    return f"USER#{user_sub}"


def file_sk(sha256: str) -> str:
    return f"{FILE_PREFIX}{sha256}"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def s_(value: str) -> dict[str, Any]:
    return {"S": value}


def encode_cursor(key: dict[str, Any]) -> str:
    flat = {k: v["S"] for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(flat, sort_keys=True).encode()).decode()


TABLE_KEYS = frozenset({"pk", "sk"})
INDEX_KEYS = TABLE_KEYS | {"gsi1pk", "gsi1sk"}
TAKEN_KEYS = TABLE_KEYS | {"gsi2pk", "gsi2sk"}
CHANGED_KEYS = TABLE_KEYS | {"gsi3pk", "gsi3sk"}


def taken_key(when: datetime, sha256: str) -> str:
    """The capture-time index's sort key: UTC, fixed width, so text order is time order."""
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}#{sha256}"


def decode_cursor(cursor: str, *, expect_pk: str | None, keys: frozenset[str]) -> dict[str, Any]:
    """The start key a cursor carries; exactly `keys`, all strings, or `invalid_cursor`.

    DynamoDB refuses a start key without the full key schema (a ValidationException, which
    would otherwise surface as a 503), so a cursor is checked before it is used.
    """
    try:
        flat = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError(
            "the cursor is not one this API issued", code="invalid_cursor"
        ) from exc
    if (
        not isinstance(flat, dict)
        or set(flat) != keys
        or not all(isinstance(v, str) for v in flat.values())
    ):
        raise InvalidInputError("the cursor is not one this API issued", code="invalid_cursor")
    if expect_pk is not None and (
        flat.get("pk") != expect_pk
        or flat.get("gsi2pk", expect_pk) != expect_pk
        or flat.get("gsi3pk", expect_pk) != expect_pk
    ):
        # A cursor from another user's listing must not open that user's partition.
        raise InvalidInputError("the cursor is not one this API issued", code="invalid_cursor")
    return {k: s_(v) for k, v in flat.items()}


def member_key(user_sub: str) -> dict[str, Any]:
    return {"pk": s_(MEMBERS_PK), "sk": s_(f"{MEMBER_PREFIX}{user_sub}")}


def receipt_from(r: dict[str, Any]) -> Receipt:
    return Receipt.model_validate({k: v["S"] for k, v in r.items() if "S" in v})


def record_from_item(item: dict[str, Any]) -> FileRecord:
    def s(name: str) -> str | None:
        v = item.get(name)
        return v["S"] if v and "S" in v else None

    receipt = receipt_from(item["receipt"]["M"]) if "receipt" in item else None
    receipts = {
        name.removeprefix(RECEIPT_PREFIX): receipt_from(value["M"])
        for name, value in item.items()
        if name.startswith(RECEIPT_PREFIX) and "M" in value
    }
    if receipt is not None and not receipts:  # written before PCs had names
        receipts[receipt.pc or MAIN_PC] = receipt
    missing_on = {
        name.removeprefix(MISSING_PREFIX): value["S"]
        for name, value in item.items()
        if name.startswith(MISSING_PREFIX) and "S" in value
    }
    return FileRecord.model_validate(
        {
            "user_sub": item["pk"]["S"].removeprefix("USER#"),
            "sha256": item["sk"]["S"].removeprefix(FILE_PREFIX),
            "filename": s("filename"),
            "size": int(item["size"]["N"]),
            "content_type": s("content_type"),
            "taken_at": s("taken_at"),
            "taken_at_source": s("taken_src"),
            "device": s("device"),
            "owner_name": s("owner_name"),
            "status": s("status"),
            "created_at": s("created_at"),
            "uploaded_at": s("uploaded_at"),
            "announced_at": s("announced_at"),
            "downloaded_at": s("downloaded_at"),
            "failed_reason": s("failed_reason"),
            "receipt": receipt,
            "receipts": receipts,
            "missing_on": missing_on,
            # Entries of uploads started by older clients hold a CRC64NVME under its name.
            "full_checksum": s("full_crc") or s("crc64nvme"),
            "checksum_algorithm": s("crc_algo") or ("CRC64NVME" if s("crc64nvme") else None),
        }
    )


def receipt_map(receipt: Receipt) -> dict[str, Any]:
    item = {
        "host": s_(receipt.host),
        "path": s_(receipt.path),
        "sha256": s_(receipt.sha256),
        "at": s_(receipt.at.isoformat()),
    }
    if receipt.captured_at is not None:
        item["captured_at"] = s_(receipt.captured_at.isoformat())
    if receipt.capture_source:
        item["capture_source"] = s_(receipt.capture_source)
    if receipt.pc:
        item["pc"] = s_(receipt.pc)
    return item
