"""The request models: what the API accepts, and the messages it gives for what it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from mobile_backup.core import FileRecord, FileStatus, Receipt
from mobile_backup.core.wire import (
    MAX_FILES_PER_REQUEST,
    MAX_SINGLE_PUT_SIZE,
    FileView,
    UploadFile,
    UploadRequest,
)

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def entry(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sha256": SHA,
        "size": 4,
        "filename": "IMG_0001.JPG",
        "content_type": "image/jpeg",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def errors_of(payload: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        UploadRequest.model_validate(payload)
    return [dict(e) for e in caught.value.errors()]


def test_a_minimal_entry_is_accepted() -> None:
    request = UploadRequest.model_validate({"files": [entry()]})
    item = request.files[0]
    assert (item.sha256, item.size, item.taken_at, item.device) == (SHA, 4, None, None)


def test_the_largest_single_put_is_accepted_and_one_byte_more_is_not() -> None:
    assert UploadFile.model_validate(entry(size=MAX_SINGLE_PUT_SIZE)).size == 5 * 1024**3
    (error,) = errors_of({"files": [entry(size=MAX_SINGLE_PUT_SIZE + 1)]})
    assert error["loc"] == ("files", 0, "size")
    assert "5 GiB" in error["msg"]
    assert "multipart" in error["msg"]


@pytest.mark.parametrize("size", [-1, "4", 4.0, True, None])
def test_size_must_be_a_non_negative_json_integer(size: Any) -> None:
    errors = errors_of({"files": [entry(size=size)]})  # None: the field is left out
    assert [e["loc"] for e in errors] == [("files", 0, "size")]


def test_an_empty_file_is_allowed() -> None:
    assert UploadFile.model_validate(entry(size=0)).size == 0


@pytest.mark.parametrize(
    "sha256",
    [SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, "", f" {SHA[1:]}"],
)
def test_sha256_must_be_64_lower_case_hex(sha256: str) -> None:
    (error,) = errors_of({"files": [entry(sha256=sha256)]})
    assert error["loc"] == ("files", 0, "sha256")


@pytest.mark.parametrize(
    ("filename", "ok"),
    [("a", True), ("x" * 255, True), ("", False), ("x" * 256, False), ("a\x00b.jpg", False)],
)
def test_filename_length_and_nul(filename: str, ok: bool) -> None:
    payload = {"files": [entry(filename=filename)]}
    if ok:
        assert UploadRequest.model_validate(payload).files[0].filename == filename
    else:
        assert errors_of(payload)[0]["loc"] == ("files", 0, "filename")


def test_a_filename_is_data_not_a_path() -> None:
    # Separators and dots are the agent's to sanitise; the API stores what the phone sent.
    name = "../../etc/passwd"
    assert UploadFile.model_validate(entry(filename=name)).filename == name


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/jpeg", "image/jpeg"),
        ("Video/QuickTime", "video/quicktime"),
        ("application/vnd.apple.photos+json", "application/vnd.apple.photos+json"),
        ("image/jpeg; charset=x", None),
        ("image", None),
        ("image/jpeg\r\nX-Injected: 1", None),
        ("/jpeg", None),
    ],
)
def test_content_type_is_type_slash_subtype(content_type: str, expected: str | None) -> None:
    payload = {"files": [entry(content_type=content_type)]}
    if expected is not None:
        assert UploadRequest.model_validate(payload).files[0].content_type == expected
    else:
        assert errors_of(payload)[0]["loc"] == ("files", 0, "content_type")


def test_taken_at_without_offset_is_read_as_utc_and_offsets_are_kept() -> None:
    naive = UploadFile.model_validate(entry(taken_at="2024-05-01T10:30:00"))
    assert naive.taken_at == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    aware = UploadFile.model_validate(entry(taken_at="2024-05-01T10:30:00+02:00"))
    assert aware.taken_at is not None
    assert aware.taken_at.utcoffset() == timedelta(hours=2)
    assert aware.taken_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_device_is_limited_to_100_characters() -> None:
    assert UploadFile.model_validate(entry(device="d" * 100)).device == "d" * 100
    assert errors_of({"files": [entry(device="d" * 101)]})[0]["loc"] == ("files", 0, "device")


@pytest.mark.parametrize("count", [0, MAX_FILES_PER_REQUEST + 1])
def test_between_1_and_100_files(count: int) -> None:
    files = [entry(sha256=f"{i:064x}") for i in range(count)]
    (error,) = errors_of({"files": files})
    assert error["loc"] == ("files",)


def test_100_files_are_accepted() -> None:
    files = [entry(sha256=f"{i:064x}") for i in range(MAX_FILES_PER_REQUEST)]
    assert len(UploadRequest.model_validate({"files": files}).files) == 100


def test_unknown_fields_are_rejected_so_typos_surface() -> None:
    errors = errors_of({"files": [{**entry(), "content-type": "image/png"}]})
    assert [e["type"] for e in errors] == ["extra_forbidden"]


def test_the_same_digest_twice_must_agree_on_size() -> None:
    assert len(UploadRequest.model_validate({"files": [entry(), entry()]}).files) == 2
    (error,) = errors_of({"files": [entry(), entry(filename="b.jpg"), entry(size=5)]})
    assert "files[2]" in error["msg"]
    assert "files[0]" in error["msg"]


def test_file_view_carries_the_receipt_and_not_the_owner() -> None:
    at = datetime(2024, 5, 2, tzinfo=UTC)
    record = FileRecord(
        user_sub="owner",
        sha256=SHA,
        filename="a.jpg",
        size=4,
        content_type="image/jpeg",
        status=FileStatus.DOWNLOADED,
        created_at=at,
        downloaded_at=at,
        owner_name="anna",
        receipt=Receipt(
            host="pc",
            path="anna/2024/05/a.jpg",
            sha256=SHA,
            at=at,
            captured_at=datetime(2024, 5, 1, 9, 30),
            capture_source="exif",
            pc="main",
        ),
    )
    view = FileView.from_record(record).model_dump(mode="json")
    assert view["receipt"] == {
        "host": "pc",
        "path": "anna/2024/05/a.jpg",
        "sha256": SHA,
        "at": "2024-05-02T00:00:00Z",
        "captured_at": "2024-05-01T09:30:00",
        "capture_source": "exif",
        "pc": "main",
    }
    assert view["owner_name"] == "anna"
    assert "user_sub" not in view
