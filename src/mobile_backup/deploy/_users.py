"""Household members: Cognito users that only the owner adds (the pool has no self sign-up)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_backup.aws import AwsNotFoundError, AwsRefusedError
from mobile_backup.core import InvalidInputError
from mobile_backup.deploy._errors import translate

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_cognito_idp.type_defs import AttributeTypeTypeDef

__all__ = ["Member", "add_member", "list_members", "reinvite_member", "remove_member"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """A user of the pool: their e-mail, their `sub` (their folder) and their state."""

    email: str
    sub: str
    status: str
    created: str | None = None
    """When the member was added (ISO 8601), where known."""


def add_member(
    idp: CognitoIdentityProviderClient,
    *,
    user_pool_id: str,
    email: str,
    password: str | None = None,
    temporary_password: str | None = None,
) -> Member:
    """Create a user.

    Without `password` Cognito e-mails a temporary one, to be changed at first sign-in;
    with `temporary_password` that one is set instead and nothing is e-mailed (the owner
    hands it over; the member still chooses their own at first sign-in). With `password`,
    the user is created silently with it as a permanent password. An existing e-mail is
    refused.
    """
    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise InvalidInputError(f"{email!r} is not an e-mail address")
    attributes: list[AttributeTypeTypeDef] = [
        {"Name": "email", "Value": email},
        {"Name": "email_verified", "Value": "true"},
    ]
    try:
        with translate(f"add {email}"):
            if temporary_password is not None:
                created = idp.admin_create_user(
                    UserPoolId=user_pool_id,
                    Username=email,
                    UserAttributes=attributes,
                    TemporaryPassword=temporary_password,
                    MessageAction="SUPPRESS",
                )
            elif password is None:
                created = idp.admin_create_user(
                    UserPoolId=user_pool_id,
                    Username=email,
                    UserAttributes=attributes,
                    DesiredDeliveryMediums=["EMAIL"],
                )
            else:
                created = idp.admin_create_user(
                    UserPoolId=user_pool_id,
                    Username=email,
                    UserAttributes=attributes,
                    MessageAction="SUPPRESS",
                )
                try:
                    idp.admin_set_user_password(
                        UserPoolId=user_pool_id, Username=email, Password=password, Permanent=True
                    )
                except Exception:
                    # A refused password must not leave a half-made member behind.
                    idp.admin_delete_user(UserPoolId=user_pool_id, Username=email)
                    raise
    except AwsRefusedError as exc:
        said = exc.aws_message or str(exc)
        if exc.aws_code == "UsernameExistsException":
            raise InvalidInputError(f"{email} is already a member", code="user_exists") from exc
        if exc.aws_code == "InvalidPasswordException":
            raise InvalidInputError(said, code="invalid_password") from exc
        raise InvalidInputError(said) from exc
    with translate(f"read the new member {email}"):
        user = idp.admin_get_user(UserPoolId=user_pool_id, Username=email)
    attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    logger.info("added %s to %s", email, user_pool_id)
    return Member(
        email=email,
        sub=attrs.get("sub", created["User"].get("Username", "")),
        status=str(user.get("UserStatus", "UNKNOWN")),
    )


def _member(user: Any) -> Member:
    attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", user.get("UserAttributes", []))}
    created = user.get("UserCreateDate")
    return Member(
        email=attrs.get("email", str(user.get("Username", ""))),
        sub=attrs.get("sub", ""),
        status=str(user.get("UserStatus", "UNKNOWN")),
        created=created.isoformat() if created is not None else None,
    )


def list_members(idp: CognitoIdentityProviderClient, *, user_pool_id: str) -> list[Member]:
    """Every member of the pool, sorted by e-mail."""
    members: list[Member] = []
    with translate("list the members"):
        for page in idp.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
            members.extend(_member(user) for user in page.get("Users", []))
    return sorted(members, key=lambda m: m.email.lower())


def remove_member(idp: CognitoIdentityProviderClient, *, user_pool_id: str, email: str) -> None:
    """Delete a member's sign-in. Their files stay: in the library, and in the ledger."""
    try:
        with translate(f"remove {email}"):
            idp.admin_delete_user(UserPoolId=user_pool_id, Username=email.strip())
    except AwsNotFoundError as exc:
        raise InvalidInputError(f"{email} is not a member", code="no_such_member") from exc
    logger.info("removed %s from %s", email, user_pool_id)


def reinvite_member(
    idp: CognitoIdentityProviderClient,
    *,
    user_pool_id: str,
    email: str,
    temporary_password: str | None = None,
) -> Member:
    """Invite a member again. One who never signed in gets a new temporary password: the
    given one (nothing e-mailed: the owner hands it over), or one Cognito e-mails them. One
    who has signed in keeps their own password (only the invite link is sent again)."""
    email = email.strip()
    try:
        with translate(f"read the member {email}"):
            user = idp.admin_get_user(UserPoolId=user_pool_id, Username=email)
    except AwsNotFoundError as exc:
        raise InvalidInputError(f"{email} is not a member", code="no_such_member") from exc
    member = _member(user)
    if member.status != "FORCE_CHANGE_PASSWORD":
        return member
    with translate(f"invite {email} again"):
        if temporary_password is not None:
            idp.admin_set_user_password(
                UserPoolId=user_pool_id,
                Username=email,
                Password=temporary_password,
                Permanent=False,
            )
        else:
            idp.admin_create_user(
                UserPoolId=user_pool_id,
                Username=email,
                MessageAction="RESEND",
                DesiredDeliveryMediums=["EMAIL"],
            )
    logger.info("invited %s to %s again", email, user_pool_id)
    return member
