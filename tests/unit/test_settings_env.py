"""How `load_settings` reads the environment (without pydantic-settings) and what
`Settings.explicit` ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_backup.core import Settings, load_settings, write_profile


def test_environment_values_are_parsed_to_their_field_types(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOBILE_BACKUP_LOCAL", "true")
    monkeypatch.setenv("MOBILE_BACKUP_PRESIGN_EXPIRY_SECONDS", "120")
    monkeypatch.setenv("MOBILE_BACKUP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MOBILE_BACKUP_AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MOBILE_BACKUP_AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")
    s = load_settings()
    assert s.local is True
    assert s.presign_expiry_seconds == 120
    assert s.state_dir == tmp_path
    assert s.aws_secret_access_key is not None
    assert s.aws_secret_access_key.get_secret_value() == "testing"
    assert s.aws_endpoint_url == "http://127.0.0.1:5000"  # validators still run


def test_variable_names_match_case_insensitively_and_unknown_ones_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("mobile_backup_region", "ap-south-1")
    monkeypatch.setenv("MOBILE_BACKUP_NOT_A_SETTING", "x")
    assert load_settings().region == "ap-south-1"


def test_the_profile_variable_selects_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile("work", {"region": "eu-west-3"})
    monkeypatch.setenv("MOBILE_BACKUP_PROFILE", "work")
    s = load_settings()
    assert (s.profile, s.region) == ("work", "eu-west-3")
    # An explicit profile beats the variable.
    assert load_settings("default").region == "us-east-1"


def test_explicit_settings_read_neither_environment_nor_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_profile("default", {"region": "eu-west-1"})
    monkeypatch.setenv("MOBILE_BACKUP_TABLE", "from-env")
    s = Settings.explicit(bucket="b")
    assert (s.region, s.table, s.bucket) == ("us-east-1", None, "b")
    assert load_settings().table == "from-env"
    assert load_settings().region == "eu-west-1"
