from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mobile_backup.core import (
    ConfigError,
    config_file_path,
    load_settings,
    read_profiles,
    write_profile,
)


def test_profile_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile(
        "home", {"api_url": "https://api.example/", "region": "eu-west-1", "local": False}
    )
    s = load_settings("home")
    assert s.api_url == "https://api.example"  # trailing slash stripped
    assert s.region == "eu-west-1"
    monkeypatch.setenv("MOBILE_BACKUP_REGION", "eu-central-1")
    assert load_settings("home").region == "eu-central-1"
    # An explicit argument beats the environment.
    assert load_settings("home", region="us-west-2").region == "us-west-2"


def test_profile_file_is_private_and_keeps_other_profiles() -> None:
    write_profile("a", {"api_url": "http://a"})
    path = write_profile("b", {"api_url": "http://b"})
    assert set(read_profiles()) == {"a", "b"}
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_profile_is_one_clear_error() -> None:
    write_profile("home", {"api_url": "http://a"})
    with pytest.raises(ConfigError, match=r"no profile named 'work'.*known: home"):
        load_settings("work")


def test_default_profile_may_be_absent() -> None:
    assert load_settings().profile == "default"


def test_invalid_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILE_BACKUP_PRESIGN_EXPIRY_SECONDS", "5")
    with pytest.raises(ConfigError, match="presign_expiry_seconds"):
        load_settings()


def test_broken_config_file_is_a_config_error() -> None:
    path = config_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[profiles\nnot toml", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings("x")


def test_placeholder_secret_refused_outside_the_local_stack() -> None:
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(aws_access_key_id="testing", aws_secret_access_key="testing")
    s = load_settings(local=True, aws_access_key_id="testing", aws_secret_access_key="testing")
    assert s.local


def test_missing_setting_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"'api_url'.*MOBILE_BACKUP_API_URL"):
        load_settings().require("api_url")


def test_strings_with_quotes_survive_the_round_trip(tmp_path: Path) -> None:
    write_profile("q", {"library": 'C:\\Photos\\"Family"'})
    assert read_profiles()["q"]["library"] == 'C:\\Photos\\"Family"'


def test_writing_a_profile_keeps_the_users_comments_and_other_profiles(tmp_path: Path) -> None:
    from mobile_backup.core import read_profiles, write_profile

    path = tmp_path / "config.toml"
    mine = (
        "# my deployments, my notes\n"
        "\n"
        "[profiles.home]  # the family account\n"
        'api_url = "https://api.example.com"   # do not change\n'
        "region = 'eu-west-1'\n"
    )
    path.write_text(mine, encoding="utf-8")
    values = {"api_url": "http://127.0.0.1:9", "local": True, "library": tmp_path}
    write_profile("local", values, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(mine)  # every byte the user wrote, in place
    profiles = read_profiles(path)
    assert profiles["home"] == {"api_url": "https://api.example.com", "region": "eu-west-1"}
    assert profiles["local"] == {"api_url": "http://127.0.0.1:9", "local": True,
                                 "library": str(tmp_path)}  # fmt: skip
    write_profile("local", {"api_url": "http://127.0.0.1:10"}, path)  # replaced, not merged
    assert read_profiles(path)["local"] == {"api_url": "http://127.0.0.1:10"}
    assert path.read_text(encoding="utf-8").startswith(mine)
    assert path.stat().st_mode & 0o777 == 0o600


def test_install_hints_say_the_pipx_way_in_a_pipx_install() -> None:
    """Issue 31, item 15: a missing part is added as this copy was installed."""
    from mobile_backup.core import install_hint

    pipx = "/home/ann/.local/share/pipx/venvs/mobile-backup"
    assert install_hint("flet-web==1.0.*", prefix=pipx) == (
        "pipx inject mobile-backup 'flet-web==1.0.*'"
    )
    assert install_hint("flet-web==1.0.*", prefix="/work/.venv") == "pip install 'flet-web==1.0.*'"
