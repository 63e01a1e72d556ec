"""Invites: one link that points a new member's app (or CLI) at the household's deployment.

An invite carries only what is public about a deployment (its name, the API's URL, the
region, the user pool and app client ids; the emulator's loopback address on the local
stack) and the member's e-mail, never a password, token or key. It travels as a link:

    https://API/v1/join#TOKEN        a page that says what to do with it (the fragment
                                     never reaches the server)
    mobilebackup://join?i=TOKEN      opens the phone app at "Join"

TOKEN is the invite as base64url JSON, then a dot and a check (the first 8 characters of
the base64url SHA-256 of that JSON): a link cut short or changed is refused in one sentence
instead of pointing the app somewhere else. The check is not a signature: an invite is as
trustworthy as the person who sent it, which is why an API that is not HTTPS (and not this
computer: the local stack) is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mobile_backup.core import EMULATOR_KEY, InvalidInputError, Settings

VERSION = 1
APP_SCHEME = "mobilebackup"
JOIN_PATH = "/v1/join"
_CHECK = 8
_NAME = re.compile(r"[^a-z0-9-]+")
_POOL = re.compile(r"([a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]{1,55}")
_CLIENT = re.compile(r"[\w+]{1,128}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_DAMAGED = (
    "this invite is damaged (cut short or changed on the way): ask the household's owner to "
    "send it again"
)


class InvalidInviteError(InvalidInputError):
    code = "invalid_invite"


@dataclass(frozen=True, slots=True)
class Invite:
    """A deployment's public settings and the member invited to it."""

    name: str
    """The deployment's name (its stack's), shown to the member and naming their profile."""
    api_url: str
    region: str
    user_pool_id: str
    client_id: str
    email: str | None = None
    endpoint: str | None = None
    """The emulator's address: only for the local stack, always on this computer."""

    @classmethod
    def for_deployment(cls, settings: Settings, *, email: str | None, name: str) -> Invite:
        invite = cls(
            name=name,
            api_url=settings.require("api_url"),
            region=settings.region,
            user_pool_id=settings.require("user_pool_id"),
            client_id=settings.require("client_id"),
            email=email,
            endpoint=settings.aws_endpoint_url if settings.local else None,
        )
        _check(invite)
        return invite

    @property
    def token(self) -> str:
        body = json.dumps(
            {"v": VERSION, **{k: v for k, v in asdict(self).items() if v is not None}},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        return f"{_b64(body)}.{_b64(hashlib.sha256(body).digest())[:_CHECK]}"

    @property
    def link(self) -> str:
        """The link to send: a page of the deployment's own API that says what to do."""
        return f"{self.api_url}{JOIN_PATH}#{self.token}"

    @property
    def app_link(self) -> str:
        """The link that opens the phone app at "Join" (its deep link)."""
        return f"{APP_SCHEME}://join?i={self.token}"

    @property
    def profile_name(self) -> str:
        """The profile the member's devices keep this deployment under."""
        return _NAME.sub("-", self.name.lower()).strip("-")[:40] or "household"

    def profile_values(self) -> dict[str, object]:
        """What a device writes into its profile to use this deployment."""
        values: dict[str, object] = {
            "household": self.name,
            "region": self.region,
            "api_url": self.api_url,
            "user_pool_id": self.user_pool_id,
            "client_id": self.client_id,
        }
        if self.endpoint is not None:
            values.update(
                local=True, aws_endpoint_url=self.endpoint, aws_access_key_id=EMULATOR_KEY
            )
        return values

    def settings(self, *, profile: str | None = None, **extra: Any) -> Settings:
        values = {"profile": profile or self.profile_name, **self.profile_values(), **extra}
        if self.endpoint is not None:
            values["aws_secret_access_key"] = EMULATOR_KEY  # the emulator's, not a secret
        return Settings.explicit(**values)


def read_invite(text: str) -> Invite:
    """The invite in a link as sent (either form), or in its token alone; one readable
    InvalidInviteError for anything else."""
    token = _token_of(text.strip())
    body_b64, dot, check = token.rpartition(".")
    if not dot or not body_b64:
        raise InvalidInviteError(_DAMAGED)
    try:
        body = base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInviteError(_DAMAGED) from None
    if _b64(hashlib.sha256(body).digest())[:_CHECK] != check:
        raise InvalidInviteError(_DAMAGED)
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidInviteError(_DAMAGED) from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidInviteError(
            "this invite is from another version of Mobile Backup: update the app, then open "
            "it again"
        )
    fields = {k: data.get(k) for k in Invite.__dataclass_fields__}
    if not all(isinstance(v, str) or v is None for v in fields.values()):
        raise InvalidInviteError(_DAMAGED)
    try:
        invite = Invite(**fields)  # type: ignore[arg-type]  # checked just above
    except TypeError:
        raise InvalidInviteError(_DAMAGED) from None
    _check(invite)
    return invite


def _token_of(text: str) -> str:
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.fragment:
        fragment = parts.fragment
        return fragment[2:] if fragment.startswith("i=") else fragment
    found = parse_qs(parts.query).get("i")
    if found:
        return found[0]
    raise InvalidInviteError(
        "this link is not an invite (it carries none): ask the household's owner for theirs"
    )


def _check(invite: Invite) -> None:
    """Refuse an invite whose settings could not be a deployment's, or that would send a
    password over plain HTTP to anything but this computer."""
    for required in ("name", "api_url", "region", "user_pool_id", "client_id"):
        if not getattr(invite, required):
            raise InvalidInviteError(_DAMAGED)
    api = urlsplit(invite.api_url)
    if api.scheme not in ("https", "http") or not api.hostname:
        raise InvalidInviteError(_DAMAGED)
    if api.scheme != "https" and not _loopback(api.hostname):
        raise InvalidInviteError(
            f"this invite's API is not HTTPS ({invite.api_url}): refused, because a password "
            "would travel in the clear (only the local stack on this computer may use HTTP)"
        )
    if invite.endpoint is not None:
        host = urlsplit(invite.endpoint).hostname
        if host is None or not _loopback(host) or not _loopback(api.hostname):
            raise InvalidInviteError(
                "this invite is for a local stack on another computer: it only works on the "
                "computer that runs it"
            )
    pool = _POOL.fullmatch(invite.user_pool_id)
    if pool is None or pool.group(1) != invite.region or not _CLIENT.fullmatch(invite.client_id):
        raise InvalidInviteError(_DAMAGED)
    if invite.email is not None and not _EMAIL.fullmatch(invite.email):
        raise InvalidInviteError(_DAMAGED)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def join_profile(invite: Invite, *, wanted: str | None = None) -> str:
    """Write the invite's deployment into the config file as a profile; its name.

    `wanted` if given; otherwise `default` on a device with no profile yet (so every command
    works without --profile), else the invite's name (with a number added if a profile of
    that name is another deployment's). A profile already holding this deployment is reused.
    """
    from mobile_backup.core import read_profiles, write_profile

    profiles = read_profiles()
    values = invite.profile_values()
    if wanted is None:
        same = [
            name
            for name, held in profiles.items()
            if held.get("api_url") == invite.api_url
            and held.get("user_pool_id") == invite.user_pool_id
        ]
        if same:
            wanted = "default" if "default" in same else same[0]
        elif not profiles:
            wanted = "default"
        else:
            wanted = invite.profile_name
            n = 2
            while wanted in profiles:
                wanted, n = f"{invite.profile_name}-{n}", n + 1
    held = profiles.get(wanted, {})
    write_profile(wanted, {**held, **values})
    return wanted
