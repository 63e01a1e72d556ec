"""Invites (issue 29): one link carrying a deployment's public settings and the member's
e-mail, nothing secret; anything damaged, foreign or unsafe is refused in one sentence."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobile_backup.client._invite import InvalidInviteError, Invite, read_invite
from mobile_backup.core import Settings

POOL = "eu-west-1_AbC123xyz"


def aws_settings() -> Settings:
    return Settings.explicit(
        profile="home",
        region="eu-west-1",
        api_url="https://abc123.execute-api.eu-west-1.amazonaws.com",
        user_pool_id=POOL,
        client_id="4l1kcl1ent1d",
        bucket="mb-media-123",
        table="mb-ledger",
        aws_profile="owner-admin",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )


def decoded(invite: Invite) -> dict[str, object]:
    body = invite.token.rsplit(".", 1)[0]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


def test_an_invite_carries_the_public_settings_and_the_email_and_nothing_else() -> None:
    settings = aws_settings()
    invite = Invite.for_deployment(settings, email="bea@example.com", name="Smith Family")
    data = decoded(invite)
    assert data == {
        "v": 1,
        "name": "Smith Family",
        "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com",
        "region": "eu-west-1",
        "user_pool_id": POOL,
        "client_id": "4l1kcl1ent1d",
        "email": "bea@example.com",
    }
    secret = settings.aws_secret_access_key
    assert secret is not None
    for text in (invite.link, invite.app_link):
        assert secret.get_secret_value() not in text
        assert "AKIA" not in text
        assert "mb-media" not in text
        assert "owner-admin" not in text
    assert invite.link.startswith(f"{settings.api_url}/v1/join#")
    assert invite.app_link.startswith("mobilebackup://join?i=")
    assert invite.profile_name == "smith-family"


@pytest.mark.parametrize("form", ["link", "app_link", "token"])
def test_every_form_of_the_link_reads_back_the_same_invite(form: str) -> None:
    invite = Invite.for_deployment(aws_settings(), email="bea@example.com", name="home")
    assert read_invite("  " + getattr(invite, form) + "\n") == invite
    back = read_invite(invite.link).settings()
    assert (back.profile, back.api_url, back.user_pool_id) == ("home", invite.api_url, POOL)
    assert back.aws_secret_access_key is None
    assert not back.local


def test_an_invite_cut_short_or_changed_is_refused_in_one_sentence() -> None:
    link = Invite.for_deployment(aws_settings(), email="bea@example.com", name="home").link
    i = link.index("#") + 12
    changed = link[:i] + ("A" if link[i] != "A" else "B") + link[i + 1 :]
    for damaged in (link[:-3], changed, link + "x", "hello"):
        with pytest.raises(InvalidInviteError) as refused:
            read_invite(damaged)
        assert "damaged" in str(refused.value)
        assert "\n" not in str(refused.value)
    for foreign in ("https://example.com/some/page", link.split("#")[0] + "#"):
        with pytest.raises(InvalidInviteError, match="not an invite"):
            read_invite(foreign)


def forged(**fields: object) -> str:
    """A well-formed token of `fields` (as an invite's sender could make one)."""
    body = json.dumps({"v": 1, **fields}).encode()
    check = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()[:8]
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + check


BASE = {"name": "home", "region": "eu-west-1", "user_pool_id": POOL, "client_id": "c1"}


def test_an_api_that_is_not_https_is_refused_unless_it_is_this_computer() -> None:
    with pytest.raises(InvalidInviteError, match="not HTTPS"):
        read_invite(forged(**BASE, api_url="http://api.example.com"))
    local = read_invite(
        forged(**BASE, api_url="http://127.0.0.1:8080", endpoint="http://127.0.0.1:5000")
    )
    assert local.settings().local
    with pytest.raises(InvalidInviteError, match="another computer"):
        read_invite(forged(**BASE, api_url="http://127.0.0.1:80", endpoint="http://10.0.0.2:5"))


def test_an_invite_of_another_version_or_impossible_settings_is_refused() -> None:
    with pytest.raises(InvalidInviteError, match="another version"):
        read_invite(forged(**{**BASE, "api_url": "https://a.example.com"}, v=2))
    for bad in (
        {**BASE, "api_url": "https://a.example.com", "user_pool_id": "us-east-1_X"},  # region
        {**BASE, "api_url": "ftp://a.example.com"},
        {**BASE, "api_url": "https://a.example.com", "email": "not an email"},
        {**BASE, "api_url": "https://a.example.com", "client_id": 7},
        {**BASE},  # no API
    ):
        with pytest.raises(InvalidInviteError):
            read_invite(forged(**bad))


@given(st.text(max_size=300))
def test_any_text_is_an_invite_or_one_clear_refusal(text: str) -> None:
    try:
        read_invite(text)
    except InvalidInviteError as exc:
        said = str(exc)
    else:
        return
    assert said
    assert "\n" not in said
